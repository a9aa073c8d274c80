//! The module's API version and the upgrade rule.
//!
//! A version is (major, minor): a minor release keeps the stable layout readable and the API
//! compatible; a major one does not. `post_upgrade` compares the version stored by the module
//! that ran before with this build's and accepts only the same major with a minor at least
//! the stored one; otherwise it traps, the IC rolls the upgrade back and the old module keeps
//! running with its data. The version is stored after every install and accepted upgrade.
//! A canister whose stored configuration predates the field ran `(capsule API version, 0)`.
//!
//! Build variants for tests (cargo features): `api-minor-next` (one minor ahead) and
//! `api-major-next` (one major ahead).

pub use capsule::after_handoff::ApiVersion;

/// This build's version.
pub const THIS: ApiVersion = ApiVersion {
    major: capsule::API_VERSION
        + if cfg!(feature = "api-major-next") {
            1
        } else {
            0
        },
    minor: if cfg!(feature = "api-minor-next") {
        1
    } else {
        0
    },
};

/// The version a canister ran before the version was stored.
pub const UNRECORDED: ApiVersion = ApiVersion {
    major: capsule::API_VERSION,
    minor: 0,
};

/// Why an upgrade is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Downgrade {
        stored: ApiVersion,
        this: ApiVersion,
    },
    MajorChange {
        stored: ApiVersion,
        this: ApiVersion,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Downgrade { stored, this } => write!(
                f,
                "upgrade refused: this module is API version {this}, older than the {stored} that ran here (a downgrade could misread newer data); the previous module keeps running"
            ),
            Refused::MajorChange { stored, this } => write!(
                f,
                "upgrade refused: this module is API version {this}, the data here was written by {stored}: a major version change needs a migration, not an upgrade; the previous module keeps running"
            ),
        }
    }
}

/// Whether a canister that ran `stored` may run `this` after an upgrade.
pub fn check(stored: Option<ApiVersion>, this: ApiVersion) -> Result<(), Refused> {
    let stored = stored.unwrap_or(UNRECORDED);
    if stored.major != this.major {
        return Err(Refused::MajorChange { stored, this });
    }
    if this.minor < stored.minor {
        return Err(Refused::Downgrade { stored, this });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn v(major: u32, minor: u32) -> ApiVersion {
        ApiVersion { major, minor }
    }

    #[test]
    fn same_major_and_a_minor_at_least_the_stored_one_is_accepted() {
        assert_eq!(check(Some(v(1, 0)), v(1, 0)), Ok(()));
        assert_eq!(check(Some(v(1, 0)), v(1, 1)), Ok(()));
        assert_eq!(check(Some(v(1, 3)), v(1, 7)), Ok(()));
        // A canister from before the stored version ran (API_VERSION, 0).
        assert_eq!(check(None, v(capsule::API_VERSION, 0)), Ok(()));
    }

    #[test]
    fn a_downgrade_or_a_major_jump_is_refused_with_both_versions() {
        let down = check(Some(v(1, 2)), v(1, 1)).unwrap_err();
        assert_eq!(
            down,
            Refused::Downgrade {
                stored: v(1, 2),
                this: v(1, 1)
            }
        );
        assert!(down.to_string().contains("1.1") && down.to_string().contains("1.2"));
        let up = check(Some(v(1, 0)), v(2, 0)).unwrap_err();
        assert!(matches!(up, Refused::MajorChange { .. }));
        assert!(up.to_string().contains("major"));
        assert!(matches!(
            check(Some(v(2, 5)), v(1, 9)),
            Err(Refused::MajorChange { .. })
        ));
    }
}
