//! The test that a canister's committed `.did` file is exactly the interface its code exports
//! (`ic_cdk::export_candid!`'s `__export_service()`). With `UPDATE_DID` set in the environment
//! it first writes the code's interface to the file:
//! `UPDATE_DID=1 cargo test -p <canister> committed_did`.

use std::path::Path;

use candid_parser::utils::{CandidSource, service_equal};

/// Why the candid text `committed` is not the service `generated`, if it is not.
pub fn compare(generated: &str, committed: &str) -> Result<(), String> {
    service_equal(CandidSource::Text(generated), CandidSource::Text(committed))
        .map_err(|e| e.to_string())
}

/// Panics, naming the difference and how to accept it, unless the file at `path` holds the
/// interface `generated` (after writing it there when `UPDATE_DID` is set).
pub fn assert_committed(generated: &str, path: &Path) {
    if std::env::var_os("UPDATE_DID").is_some() {
        std::fs::write(path, generated).expect("write the .did file");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if let Err(e) = compare(generated, &committed) {
        panic!(
            "{} differs from the code's interface ({e}).\nRun `UPDATE_DID=1 cargo test -p <canister> committed_did` to accept it. The code exports:\n{generated}",
            path.display()
        );
    }
}

/// Panics, naming them, if the interface `generated` has result types candid named
/// (`Result`, `Result_1`, ...) instead of a named `candid_result!` type.
pub fn assert_results_named(generated: &str) {
    assert_eq!(
        capsule::endpoints::unnamed_results(generated),
        Vec::<&str>::new(),
        "reply types without a name of their own: give them one with capsule::candid_result!"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_service_passes_and_a_different_one_is_named() {
        let code = "service : { get : () -> (nat64) query }";
        assert_eq!(
            compare(code, "service : {\n  get : () -> (nat64) query;\n}"),
            Ok(())
        );
        assert!(compare(code, "service : { get : () -> (nat32) query }").is_err());
        assert!(compare(code, "").is_err());
    }
}
