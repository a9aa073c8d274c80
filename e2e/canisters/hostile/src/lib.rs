//! `hostile`: what a hostile owner installs over their personal canister while the factory still
//! depends on it (the owner is a controller until the handoff). It answers the calls the
//! backend makes to a personal canister, badly, as its mode says:
//!
//! - `import_status` (query): by mode
//!   - `"wrong_type"`: a well-formed candid reply of another type (`text`);
//!   - `"garbage"`: raw bytes that are not candid at all (`msg_reply` of junk);
//!   - `"bomb"`: a candid decoding bomb: a record whose first field is a `vec null` of 2^32 - 1
//!     elements, 12 bytes on the wire that a decoder without a quota walks element by element;
//!   - `"lying"` (the default): a status that stays in phase `Chunks` forever ("still importing");
//!   - `"trap"`: traps.
//! - `return_cycles(principal) -> variant { Ok : nat; Err : text }`: claims `Ok = 10^30` having
//!   sent nothing (and prints `hostile return_cycles called`, so a test can see whether it ran).
//! - `api_version : () -> (nat32) query`: 1, the capsule API's version.
//! - `set_mode(text)` (update, anyone) and `mode() -> (text) query`.
//!
//! Init and upgrade take an optional mode: `(opt text)`.

use std::cell::RefCell;

use candid::{CandidType, Nat, Principal};
use serde::Deserialize;

thread_local! {
    static MODE: RefCell<String> = RefCell::new(String::from("lying"));
}

fn set(mode: Option<String>) {
    if let Some(m) = mode {
        MODE.with(|x| *x.borrow_mut() = m);
    }
}

#[ic_cdk::init]
fn init(mode: Option<String>) {
    set(mode);
}

#[ic_cdk::post_upgrade]
fn post_upgrade(mode: Option<String>) {
    set(mode);
}

#[ic_cdk::update]
fn set_mode(mode: String) {
    set(Some(mode));
}

#[ic_cdk::query]
fn mode() -> String {
    MODE.with(|m| m.borrow().clone())
}

#[ic_cdk::query]
fn api_version() -> u32 {
    1
}

/// The same shape as `migration::protocol::Progress`.
#[derive(CandidType, Deserialize, Default)]
struct Progress {
    bytes_done: u64,
    bytes_total: u64,
    chunks_done: u64,
    chunks_total: u64,
    memories_done: u64,
    memories_total: u64,
    connections_done: u64,
    connections_total: u64,
}

/// The same shape as `migration::protocol::ImportPhase`.
#[allow(dead_code)]
#[derive(CandidType, Deserialize)]
enum ImportPhase {
    Idle,
    Manifest,
    Chunks,
    Records,
    Verifying,
    Reporting,
    Done,
    Failed,
}

/// The same shape as `migration::protocol::ImportStatus`.
#[derive(CandidType, Deserialize)]
struct ImportStatus {
    migration_id: Option<u64>,
    phase: ImportPhase,
    progress: Progress,
    error: Option<String>,
    root: Option<serde_bytes::ByteBuf>,
    api_version: u32,
}

/// `DIDL`, types `{0: record {0: 1}; 1: vec null}`, one argument of type 0 whose vector holds
/// 2^32 - 1 nulls (zero bytes each).
fn bomb() -> Vec<u8> {
    let mut b = b"DIDL".to_vec();
    b.extend_from_slice(&[2, 0x6c, 1, 0, 1, 0x6d, 0x7f, 1, 0]);
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    b
}

#[ic_cdk::query(manual_reply = true)]
fn import_status() {
    let mode = mode();
    match mode.as_str() {
        "wrong_type" => ic_cdk::api::msg_reply(
            candid::encode_one("I am certainly importing, trust me").unwrap(),
        ),
        "garbage" => ic_cdk::api::msg_reply(b"\xde\xad\xbe\xef this is not candid \x00\xff"),
        "bomb" => ic_cdk::api::msg_reply(bomb()),
        "trap" => ic_cdk::trap("hostile: import_status traps"),
        _ => {
            let status = ImportStatus {
                migration_id: None,
                phase: ImportPhase::Chunks,
                progress: Progress {
                    bytes_done: 1,
                    bytes_total: 2,
                    ..Progress::default()
                },
                error: None,
                root: None,
                api_version: 1,
            };
            ic_cdk::api::msg_reply(candid::encode_one(status).unwrap())
        }
    }
}

/// Claims to have returned 10^30 cycles; sends nothing.
#[ic_cdk::update]
fn return_cycles(_to: Principal) -> Result<Nat, String> {
    ic_cdk::println!("hostile return_cycles called");
    Ok(Nat::from(10u128.pow(30)))
}
