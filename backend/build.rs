//! Embeds the personal canister's module (`target/wasm/personal.wasm.gz`, written by
//! `scripts/build.sh` before the backend is built) into the backend's factory.
//!
//! A wasm32 build with the factory fails when the module is missing; a native build (tests)
//! embeds an empty module, since native code never installs canisters. The module's SHA-256
//! (`personal.wasm.sha256`, 32 bytes) is computed here once: a query that hashed the module
//! itself would pay for it on every call (a query's state, a lazily computed hash included,
//! is discarded when it returns).

use sha2::Digest;

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("personal.wasm.gz");
    let factory = std::env::var_os("CARGO_FEATURE_PERSONAL_CANISTER").is_some();
    let wasm32 = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32");
    let src = std::env::var_os("PERSONAL_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
                .join("../target/wasm/personal.wasm.gz")
        });
    println!("cargo:rerun-if-env-changed=PERSONAL_WASM");
    println!("cargo:rerun-if-changed={}", src.display());
    let module = match std::fs::read(&src) {
        Ok(bytes) => bytes,
        Err(e) if factory && wasm32 => panic!(
            "the factory embeds the personal canister's module, but {} cannot be read ({e}): run scripts/build.sh",
            src.display()
        ),
        Err(_) => Vec::new(),
    };
    std::fs::write(
        out.with_extension("gz.sha256"),
        sha2::Sha256::digest(&module),
    )
    .unwrap();
    std::fs::write(&out, module).unwrap();
}
