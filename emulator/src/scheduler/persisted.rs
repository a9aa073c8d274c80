//! The files a subnet was last saved to or loaded from ([`crate::snapshot`]): kept in
//! [`Inner`](super::Inner) so that the next save writes only what changed since. Plain data;
//! the snapshot module reads and writes it, the scheduler only holds it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use candid::Principal;
use serde::{Deserialize, Serialize};

/// Where one memory's page log is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageLog {
    /// File name inside the canister's directory.
    pub file: String,
    /// Generation (bumped by every full rewrite).
    pub generation: u64,
    /// Valid bytes (records) in the file.
    pub len: u64,
}

/// Where a canister log is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// Lines saved.
    pub lines: u64,
    /// Valid bytes.
    pub len: u64,
}

/// The files one canister's state was last saved to.
#[derive(Debug, Clone, Default)]
pub(crate) struct SavedFiles {
    pub(crate) heap: Option<PageLog>,
    pub(crate) stable: Option<PageLog>,
    pub(crate) log: LogFile,
}

/// What the emulator remembers about the directory it last saved to or loaded from.
#[derive(Debug, Default)]
pub(crate) struct Persisted {
    pub(crate) dir: PathBuf,
    pub(crate) files: BTreeMap<Principal, SavedFiles>,
}
