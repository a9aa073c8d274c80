//! Interface tests: the committed `.did` files are the code's interface, and the personal
//! canister's capsule API is identical to the backend's.

use std::path::{Path, PathBuf};

use candid::types::subtype::equal;
use candid_parser::utils::CandidSource;

use super::__export_service;

fn did(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

#[test]
fn committed_did_matches_the_code() {
    scaffold::did::assert_committed(&__export_service(), &did("personal/personal.did"));
}

/// Every reply type of the interface has a name of its own, none the `Result_N` candid makes up.
#[test]
fn every_result_type_is_named() {
    let generated = __export_service();
    scaffold::did::assert_results_named(&generated);
    assert!(generated.contains("get_manifest_page : (PageCursor) -> (ManifestPageResult) query;"));
}

/// Every capsule method exists on both canisters with the same type, so one client serves both.
#[test]
fn capsule_api_is_identical_to_the_backends() {
    let (mut env, personal) = CandidSource::File(&did("personal/personal.did"))
        .load()
        .unwrap();
    let (backend_env, backend) = CandidSource::File(&did("backend/backend.did"))
        .load()
        .unwrap();
    let personal = personal.expect("personal.did has a service");
    let backend = env.merge_type(backend_env, backend.expect("backend.did has a service"));
    let personal_methods = env.as_service(&personal).unwrap().to_vec();
    let backend_methods = env.as_service(&backend).unwrap().to_vec();
    let find = |methods: &[(String, candid::types::Type)], name: &str| {
        methods
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    };
    for name in capsule::CAPSULE_METHODS {
        let p =
            find(&personal_methods, name).unwrap_or_else(|| panic!("personal.did lacks {name}"));
        let b = find(&backend_methods, name).unwrap_or_else(|| panic!("backend.did lacks {name}"));
        let mut gamma = Default::default();
        if let Err(e) = equal(&mut gamma, &env, &p, &b) {
            panic!("{name} differs between the personal canister and the backend: {e}");
        }
    }
    // The personal canister adds only these methods to the capsule API.
    let extra: Vec<&str> = personal_methods
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !capsule::CAPSULE_METHODS.contains(n))
        .collect();
    assert_eq!(
        extra,
        [
            "api_version",
            "capsule_root",
            "cycles_outlook",
            "get_manifest_page",
            "import_status",
            "module_version",
            "restore_blob_begin",
            "restore_blob_chunk",
            "restore_blob_finish",
            "restore_capsule",
            "restore_records",
            "return_cycles"
        ]
    );
}
