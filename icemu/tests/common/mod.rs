//! Helpers: run the built `icemu` binary on a temporary state directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The backend wasm built by `scripts/build.sh` (a clear failure when missing).
pub fn backend_wasm() -> PathBuf {
    let p = repo().join("target/wasm/backend.wasm.gz");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build.sh first",
        p.display()
    );
    p
}

/// A temporary state directory, removed on drop.
pub struct Temp(pub PathBuf);

impl Temp {
    /// A fresh directory.
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "icemu-test-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `icemu --state STATE ARGS...` in the repository root.
pub fn icemu(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icemu"))
        .current_dir(repo())
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("run icemu")
}

/// Runs icemu and asserts success; returns stdout.
pub fn ok(state: &Path, args: &[&str]) -> String {
    let out = icemu(state, args);
    assert!(
        out.status.success(),
        "icemu {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A state with the backend deployed as `backend`.
pub fn with_backend(tag: &str) -> Temp {
    let t = Temp::new(tag);
    let wasm = backend_wasm();
    ok(
        &t.0,
        &[
            "deploy",
            "backend",
            wasm.to_str().unwrap(),
            "--cycles",
            "500_000_000_000_000",
        ],
    );
    t
}

/// Candid text of a blob literal.
pub fn blob_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3 + 8);
    s.push_str("blob \"");
    for b in bytes {
        s.push_str(&format!("\\{b:02x}"));
    }
    s.push('"');
    s
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
