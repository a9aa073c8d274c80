//! The state directory: the emulator's saved state, icemu's names, and a lock.
//!
//! ```text
//! DIR/lock         held (flock) by the one icemu process using DIR
//! DIR/serve.json   while `icemu serve` runs on DIR: its URL and admin token (see `ServeInfo`)
//! DIR/icemu.json   canister names → ids (and the .did remembered for each), identities used
//! DIR/state.json   the emulator's index, DIR/modules, DIR/chunks, DIR/canisters: see
//!                  `emulator::snapshot`
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use candid::Principal;
use emulator::Emulator;
use serde::{Deserialize, Serialize};

/// A named canister.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Named {
    /// Its id.
    pub id: Principal,
    /// The `.did` file remembered at deploy time (absolute path), if any.
    #[serde(default)]
    pub did: Option<PathBuf>,
    /// Named by icemu, not by a deploy: a canister created by a canister, named
    /// `<module name>-<owner>` (see `meta::derive_names`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub derived: bool,
}

/// icemu's own bookkeeping beside the emulator's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Names {
    /// Canister names.
    #[serde(default)]
    pub canisters: BTreeMap<String, Named>,
    /// Identity names used so far (principals are derived from names, see [`identity`]).
    #[serde(default)]
    pub identities: BTreeMap<String, Principal>,
}

/// The Ed25519 key of identity `name`: its secret key is SHA-256 of `"icemu identity\0"`
/// followed by the name, so every process, machine and agent (the frontend derives the same
/// key) signs as the same principal. These keys are public knowledge: for the emulator only.
pub fn identity_key(name: &str) -> ed25519_dalek::SigningKey {
    use sha2::Digest;
    let seed: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"icemu identity\0")
        .chain_update(name.as_bytes())
        .finalize()
        .into();
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// The principal of an identity name: `anonymous` is the anonymous principal, a principal's
/// text stands for itself, any other name is the self-authenticating principal of its key
/// ([`identity_key`]), the principal an agent signing with that key is.
pub fn identity(name: &str) -> Principal {
    if name == "anonymous" {
        return Principal::anonymous();
    }
    if name.contains('-')
        && let Ok(p) = Principal::from_text(name)
    {
        return p;
    }
    let mut der = crate::http::keys::ED25519_DER_PREFIX.to_vec();
    der.extend_from_slice(identity_key(name).verifying_key().as_bytes());
    Principal::self_authenticating(der)
}

/// Where `icemu serve` listens for a state directory it holds: `DIR/serve.json`, written (mode
/// 0600) once the server is bound and removed when it stops. Other icemu processes on DIR find
/// it while the lock is held and forward their command to `POST /api/v1/admin` with the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeInfo {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The port.
    pub port: u16,
    /// The server's process id.
    pub pid: u32,
    /// Secret for the admin endpoint (header `x-icemu-token`).
    pub token: String,
}

/// `DIR/serve.json`.
pub fn serve_info_path(dir: &Path) -> PathBuf {
    dir.join("serve.json")
}

/// The serve info of `dir`, if a server wrote one.
pub fn read_serve_info(dir: &Path) -> Option<ServeInfo> {
    let b = std::fs::read(serve_info_path(dir)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// A state directory opened by this process, or held by an `icemu serve` to forward to.
pub enum Opened {
    /// Locked and loaded here.
    Local(StateDir),
    /// `icemu serve` holds it.
    Served(ServeInfo),
}

/// An open state directory (locked for this process).
pub struct StateDir {
    /// The directory.
    pub dir: PathBuf,
    /// The emulator (shared with `serve`'s threads).
    pub emu: std::sync::Arc<Emulator>,
    /// Names.
    pub names: Names,
    /// Set by `serve`: background rounds run, so an update call waits for them instead of
    /// running rounds itself.
    pub served: bool,
    _lock: File,
}

impl StateDir {
    /// Opens (creating if needed) and locks `dir`, then loads the saved state or starts an
    /// empty subnet. Waits up to `$ICEMU_LOCK_TIMEOUT` seconds (default 60) for the lock.
    pub fn open(dir: &Path) -> Result<Self> {
        match Self::open_inner(dir, false)? {
            Opened::Local(s) => Ok(s),
            Opened::Served(_) => unreachable!(),
        }
    }

    /// Like [`open`](Self::open), but while another process holds the lock and has written
    /// `serve.json` (an `icemu serve`), returns its [`ServeInfo`] instead of waiting.
    pub fn open_or_served(dir: &Path) -> Result<Opened> {
        Self::open_inner(dir, true)
    }

    fn open_inner(dir: &Path, or_served: bool) -> Result<Opened> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .context("opening the lock file")?;
        let timeout = std::env::var("ICEMU_LOCK_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60u64);
        let start = Instant::now();
        let mut told = false;
        loop {
            match lock.try_lock() {
                Ok(()) => {
                    // A server killed without cleaning up leaves its serve.json behind.
                    let _ = std::fs::remove_file(serve_info_path(&dir));
                    break;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    if or_served && let Some(info) = read_serve_info(&dir) {
                        return Ok(Opened::Served(info));
                    }
                    if start.elapsed() > Duration::from_secs(timeout) {
                        bail!(
                            "state directory {} is in use by another icemu process (a long command, or an `icemu serve` that did not write serve.json)",
                            dir.display()
                        );
                    }
                    if !told {
                        eprintln!("icemu: waiting for {} (in use)", dir.display());
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e).context("locking"),
            }
        }
        let emu = if emulator::snapshot::exists(&dir) {
            Emulator::load_state(&dir)
                .with_context(|| format!("loading the state in {}", dir.display()))?
        } else {
            Emulator::new()
        };
        let names_path = dir.join("icemu.json");
        let names = match std::fs::read(&names_path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("reading {}", names_path.display()))?,
            Err(_) => Names::default(),
        };
        Ok(Opened::Local(Self {
            dir,
            emu: std::sync::Arc::new(emu),
            names,
            served: false,
            _lock: lock,
        }))
    }

    /// Saves the emulator's state (incrementally) and the names.
    pub fn save(&mut self) -> Result<emulator::SaveReport> {
        let report = self
            .emu
            .save_state(&self.dir)
            .with_context(|| format!("saving the state to {}", self.dir.display()))?;
        let path = self.dir.join("icemu.json");
        let tmp = self.dir.join("icemu.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.names)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(report)
    }

    /// The principal of identity `name`, remembered in the names.
    pub fn identity(&mut self, name: &str) -> Principal {
        let p = identity(name);
        self.names.identities.insert(name.to_string(), p);
        p
    }

    /// Resolves a canister name, a principal's text or `aaaaa-aa`.
    pub fn canister(&self, name: &str) -> Result<Principal> {
        resolve(&self.names, name)
    }

    /// The `.did` remembered for a canister.
    pub fn did_of(&self, id: Principal) -> Option<PathBuf> {
        self.names
            .canisters
            .values()
            .find(|n| n.id == id)
            .and_then(|n| n.did.clone())
    }

    /// The name of a canister, if it has one.
    pub fn name_of(&self, id: Principal) -> Option<String> {
        self.names
            .canisters
            .iter()
            .find(|(_, n)| n.id == id)
            .map(|(k, _)| k.clone())
    }
}

/// Resolves a canister name or principal text against `names`.
pub fn resolve(names: &Names, name: &str) -> Result<Principal> {
    if let Some(n) = names.canisters.get(name) {
        return Ok(n.id);
    }
    Principal::from_text(name).map_err(|_| {
        let known: Vec<&str> = names.canisters.keys().map(String::as_str).collect();
        anyhow!(
            "unknown canister `{name}`: neither a deployed name ({}) nor a principal",
            if known.is_empty() {
                "none deployed".to_string()
            } else {
                known.join(", ")
            }
        )
    })
}
