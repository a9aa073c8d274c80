//! Builds workspace canisters for `wasm32-unknown-unknown` (release), once per process.
//!
//! Tests call [`build_canister`]; the first call runs `cargo build` (a no-op when up to date,
//! cargo's own lock serialises concurrent test binaries), later calls return the cached bytes.
//! Canisters land in `<target dir>/emulator-canisters[-<variant>]`, apart from host builds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::EmulatorError;

/// How to build one canister.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BuildSpec {
    /// Cargo package name.
    pub package: String,
    /// Cargo features.
    pub features: Vec<String>,
    /// `RUSTFLAGS` for the wasm build (e.g. `-C target-feature=+simd128`).
    pub rustflags: Option<String>,
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds `package` with default features and flags; returns the wasm bytes.
pub fn build_canister(package: &str) -> Result<Arc<Vec<u8>>, EmulatorError> {
    build(&BuildSpec {
        package: package.into(),
        ..Default::default()
    })
}

/// Builds a canister as `spec` says; returns the wasm bytes (cached per process).
pub fn build(spec: &BuildSpec) -> Result<Arc<Vec<u8>>, EmulatorError> {
    type Slot = Arc<OnceLock<Result<Arc<Vec<u8>>, String>>>;
    static BUILT: OnceLock<Mutex<HashMap<BuildSpec, Slot>>> = OnceLock::new();
    let slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(spec.clone())
        .or_default()
        .clone();
    slot.get_or_init(|| run_cargo(spec))
        .clone()
        .map_err(|e| EmulatorError::Build(spec.package.clone(), e))
}

fn run_cargo(spec: &BuildSpec) -> Result<Arc<Vec<u8>>, String> {
    let mut dir = "emulator-canisters".to_string();
    if !spec.features.is_empty() || spec.rustflags.is_some() {
        let tag = format!("{:?}{:?}", spec.features, spec.rustflags);
        dir.push('-');
        dir.push_str(&hex::encode(&crate::engine::sha256(tag.as_bytes())[..6]));
    }
    let tdir = target_dir().join(dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            &spec.package,
        ])
        .env("CARGO_TARGET_DIR", &tdir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    if !spec.features.is_empty() {
        cmd.args(["--features", &spec.features.join(",")]);
    }
    if let Some(flags) = &spec.rustflags {
        cmd.env("RUSTFLAGS", flags);
    }
    let out = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let file = tdir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", spec.package.replace('-', "_")));
    std::fs::read(&file)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", file.display()))
}
