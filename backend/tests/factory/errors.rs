//! Typed call failures and import failures: how each is classified, retried, and recorded.

use candid::{CandidType, Deserialize};
use migration::protocol::{ImportError, ImportErrorKind, ImportPhase, RejectCode};

use super::*;

fn stopped() -> CallError {
    CallError::rejected(5, "Canister xyz is stopped".into())
}

#[test]
fn rejects_are_typed_by_their_code_and_a_stopped_callee_is_told_apart() {
    assert_eq!(
        stopped(),
        CallError::CalleeStopped {
            message: "Canister xyz is stopped".into()
        }
    );
    assert!(matches!(
        CallError::rejected(5, "Canister xyz is stopping".into()),
        CallError::CalleeStopped { .. }
    ));
    assert_eq!(
        CallError::rejected(5, "trapped".into()),
        CallError::Rejected {
            code: RejectCode::CanisterError,
            message: "trapped".into()
        }
    );
    assert_eq!(
        CallError::rejected(9, "new".into()),
        CallError::UnrecognizedReject {
            code: 9,
            message: "new".into()
        }
    );
    let retried = [
        CallError::rejected(2, "busy".into()),
        CallError::rejected(6, "timeout".into()),
        stopped(),
        CallError::NotEnqueued,
    ];
    assert!(retried.iter().all(CallError::is_retryable));
    let final_ = [
        CallError::rejected(1, "fatal".into()),
        CallError::rejected(3, "no such canister".into()),
        CallError::rejected(4, "not authorized".into()),
        CallError::rejected(5, "trapped".into()),
        CallError::rejected(9, "new".into()),
        CallError::InsufficientLiquidCycles {
            available: 1,
            required: 2,
        },
        CallError::UndecodableReply { reason: "x".into() },
    ];
    assert!(final_.iter().all(|e| !e.is_retryable()));
}

#[test]
fn each_call_error_fails_a_creation_with_its_own_variant() {
    let step = "install_code";
    assert_eq!(
        CallError::rejected(4, "no".into()).into_factory_error(step),
        FactoryError::CallFailed {
            step: step.into(),
            code: 4,
            message: "no".into(),
            reject: Some(RejectCode::CanisterReject),
        }
    );
    assert_eq!(
        stopped().into_factory_error(step),
        FactoryError::CallFailed {
            step: step.into(),
            code: 5,
            message: "Canister xyz is stopped".into(),
            reject: Some(RejectCode::CanisterError),
        }
    );
    assert_eq!(
        CallError::rejected(9, "new".into()).into_factory_error(step),
        FactoryError::CallFailed {
            step: step.into(),
            code: 9,
            message: "new".into(),
            reject: None,
        }
    );
    assert_eq!(
        CallError::NotEnqueued.into_factory_error(step),
        FactoryError::CallNotEnqueued { step: step.into() }
    );
    assert_eq!(
        CallError::InsufficientLiquidCycles {
            available: 1,
            required: 2
        }
        .into_factory_error(step),
        FactoryError::CallUnaffordable {
            step: step.into(),
            available: 1,
            required: 2,
        }
    );
    assert_eq!(
        CallError::UndecodableReply { reason: "x".into() }.into_factory_error(step),
        FactoryError::ReplyUndecodable {
            step: step.into(),
            reason: "x".into(),
        }
    );
}

#[test]
fn a_create_canister_reply_that_does_not_decode_fails_at_once_and_refunds() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    let reserve = f.reserve();
    let garbage = CallError::UndecodableReply {
        reason: "not a CreateCanisterResult".into(),
    };
    create_fails(&mut f, &mut c, id, garbage, 2, 3);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(
        rec.error,
        Some(FactoryError::ReplyUndecodable {
            step: "create_canister".into(),
            reason: "not a CreateCanisterResult".into(),
        })
    );
    assert_eq!(f.reserve(), reserve);
}

#[test]
fn a_call_not_enqueued_is_retried_then_fails_with_its_own_variant() {
    let (mut f, mut c, id) = creating_with_retries(1);
    create_fails(&mut f, &mut c, id, CallError::NotEnqueued, 2, 3);
    let rec = f.record(id).unwrap();
    assert_eq!((rec.state, rec.step_retries), (CreationState::Creating, 1));
    let now = rec.next_try_at;
    create_fails(&mut f, &mut c, id, CallError::NotEnqueued, now, now);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(
        rec.error,
        Some(FactoryError::CallNotEnqueued {
            step: "create_canister".into()
        })
    );
}

#[test]
fn a_liquid_cycles_shortfall_fails_at_once() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    create(&mut f, &mut c, id, 1, 2, 3);
    let short = CallError::InsufficientLiquidCycles {
        available: 10,
        required: 20,
    };
    f.installed(id, Err(StepFailure::Call("install_code", short)), &mut c, 4);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(matches!(
        rec.error,
        Some(FactoryError::CallUnaffordable {
            available: 10,
            required: 20,
            ..
        })
    ));
}

#[test]
fn a_purge_check_that_was_not_asked_is_told_apart_from_no_answer() {
    assert_eq!(
        CallError::rejected(6, "timeout".into()).into_purge_hold(),
        PurgeHold::NoAnswer {
            code: 6,
            message: "timeout".into()
        }
    );
    assert_eq!(
        stopped().into_purge_hold(),
        PurgeHold::NoAnswer {
            code: 5,
            message: "Canister xyz is stopped".into()
        }
    );
    assert_eq!(
        CallError::rejected(9, "new".into()).into_purge_hold(),
        PurgeHold::NoAnswer {
            code: 9,
            message: "new".into()
        }
    );
    assert!(matches!(
        CallError::NotEnqueued.into_purge_hold(),
        PurgeHold::NotAsked { reason } if reason.contains("enqueued")
    ));
    assert!(matches!(
        CallError::InsufficientLiquidCycles { available: 1, required: 2 }.into_purge_hold(),
        PurgeHold::NotAsked { reason } if reason.contains("liquid cycles")
    ));
}

#[test]
fn a_failed_import_is_recorded_with_the_importers_typed_reason() {
    let (mut f, mut c, id) = importing();
    let cause = ImportError::ChunkRejected {
        blob: "ab".into(),
        index: 1,
        error: Error::ImportRejected {
            reason: "hash mismatch".into(),
        },
    };
    let mut failed = status(ImportPhase::Failed);
    failed.error = Some(cause.clone());
    f.import_checked(id, Ok(failed), &mut c, 6 * SEC);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(
        rec.error,
        Some(FactoryError::ImportFailed {
            reason: cause.to_string(),
            cause: Some(ImportErrorKind::ChunkRejected),
        })
    );

    // An importer that says it failed without saying why.
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 2);
    f.import_checked(id, Ok(status(ImportPhase::Failed)), &mut c, 6 * SEC);
    assert_eq!(
        f.record(id).unwrap().error,
        Some(FactoryError::ImportFailed {
            reason: "the personal canister reports a failed import".into(),
            cause: None,
        })
    );
}

/// `FactoryError` as records stored it before the typed call and import failures.
#[derive(CandidType, Deserialize)]
enum FactoryErrorV1 {
    CallFailed {
        step: String,
        code: u32,
        message: String,
    },
    ImportFailed {
        reason: String,
    },
}

#[test]
fn failures_stored_by_the_previous_layout_still_decode() {
    let old = candid::encode_one(FactoryErrorV1::CallFailed {
        step: "install_code".into(),
        code: 0,
        message: "candid decode failed".into(),
    })
    .unwrap();
    assert_eq!(
        candid::decode_one::<FactoryError>(&old).unwrap(),
        FactoryError::CallFailed {
            step: "install_code".into(),
            code: 0,
            message: "candid decode failed".into(),
            reject: None,
        }
    );
    let old = candid::encode_one(FactoryErrorV1::ImportFailed {
        reason: "chunk 1 of blob ab was rejected".into(),
    })
    .unwrap();
    assert_eq!(
        candid::decode_one::<FactoryError>(&old).unwrap(),
        FactoryError::ImportFailed {
            reason: "chunk 1 of blob ab was rejected".into(),
            cause: None,
        }
    );
}
