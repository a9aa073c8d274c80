//! The state directory: the emulator's saved state, icemu's names, and a lock.
//!
//! ```text
//! DIR/lock         held (flock) by the one icemu process using DIR
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

/// The principal of an identity name: `anonymous` is the anonymous principal, a principal's
/// text stands for itself, any other name maps deterministically to a self-authenticating
/// principal (the emulator's `Emulator::identity`, the same in every process and machine).
pub fn identity(name: &str) -> Principal {
    if name == "anonymous" {
        return Principal::anonymous();
    }
    if name.contains('-')
        && let Ok(p) = Principal::from_text(name)
    {
        return p;
    }
    Emulator::identity(name)
}

/// An open state directory (locked for this process).
pub struct StateDir {
    /// The directory.
    pub dir: PathBuf,
    /// The emulator (shared with `serve`'s threads).
    pub emu: std::sync::Arc<Emulator>,
    /// Names.
    pub names: Names,
    _lock: File,
}

impl StateDir {
    /// Opens (creating if needed) and locks `dir`, then loads the saved state or starts an
    /// empty subnet. Waits up to `$ICEMU_LOCK_TIMEOUT` seconds (default 60) for the lock.
    pub fn open(dir: &Path) -> Result<Self> {
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
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() > Duration::from_secs(timeout) {
                        bail!(
                            "state directory {} is in use by another icemu process (is `icemu serve` running on it?)",
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
        Ok(Self {
            dir,
            emu: std::sync::Arc::new(emu),
            names,
            _lock: lock,
        })
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
