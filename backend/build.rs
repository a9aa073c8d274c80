//! Embeds the personal canister's module (`target/wasm/personal.wasm.gz`, written by
//! `scripts/build.sh` before the backend is built) into the backend's factory.
//!
//! A wasm32 build with the factory fails when the module is missing; a native build (tests)
//! embeds an empty module, since native code never installs canisters.

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
    match std::fs::read(&src) {
        Ok(bytes) => std::fs::write(&out, bytes).unwrap(),
        Err(e) if factory && wasm32 => panic!(
            "the factory embeds the personal canister's module, but {} cannot be read ({e}): run scripts/build.sh",
            src.display()
        ),
        Err(_) => std::fs::write(&out, []).unwrap(),
    }
}
