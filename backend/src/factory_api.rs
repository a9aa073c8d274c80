//! The factory's endpoints: thin wrappers that check the caller and call the factory.

use candid::{Nat, Principal};
use manifests::PageCursor;
use migration::protocol::{ChunkRef, ImportProgress, ImportReport};

use crate::factory::driver::now;
use crate::factory::types::*;
use crate::factory::{self, driver, export};
use crate::state;

fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

/// The reserve beside the canister's balance and liquid balance now.
fn reserve_status(f: &crate::factory::registry::Factory<crate::memory::Mem>) -> ReserveStatus {
    f.reserve_status(
        ic_cdk::api::canister_cycle_balance(),
        ic_cdk::api::canister_liquid_cycle_balance(),
        now(),
    )
}

fn require_admin() -> Result<(), FactoryError> {
    let c = caller();
    if factory::with(|f| f.is_admin(&c, ic_cdk::api::is_controller(&c))) {
        Ok(())
    } else {
        Err(FactoryError::NotAdmin)
    }
}

/// Runs `f` for an admin caller; anyone else gets `NotAdmin`.
fn as_admin<T>(f: impl FnOnce() -> Result<T, FactoryError>) -> Result<T, FactoryError> {
    require_admin()?;
    f()
}

fn require_controller() -> Result<(), FactoryError> {
    if ic_cdk::api::is_controller(&caller()) {
        Ok(())
    } else {
        Err(FactoryError::NotController)
    }
}

// ---------------------------------------------------------------- owners

/// Asks for the caller's personal canister (or retries a failed creation). Repeated calls
/// return the same record.
#[ic_cdk::update]
fn create_personal_canister(config: CreatePersonalCanisterConfig) -> CreationRecordResult {
    let rec = state::write(|caps| factory::with(|f| f.request(caller(), config, caps, now())));
    driver::kick();
    rec.into()
}

/// The caller's creation record: state, canister, byte-level progress, error, quote, cycles.
#[ic_cdk::query]
fn get_creation_status() -> CreationRecordResult {
    factory::with(|f| f.record_of(caller()))
        .ok_or(FactoryError::NoCreation)
        .into()
}

/// After `Completed`: purge the read-only shared copy now instead of after the retention.
#[ic_cdk::update]
fn purge_shared_capsule() -> CreationRecordResult {
    let rec = factory::with(|f| f.request_purge(caller()));
    driver::kick();
    rec.into()
}

/// The personal canister module this backend ships: API version, SHA-256, size and chunking.
/// Owners upgrade their canister to it (`install_code` in upgrade mode, or `upload_chunk` and
/// `install_chunked_code` with the chunks of `personal_module_chunk`).
#[ic_cdk::query]
fn personal_module() -> PersonalModule {
    PersonalModule::describe(
        factory::PERSONAL_WASM,
        factory::personal_wasm_hash(),
        PERSONAL_API_VERSION,
    )
}

/// Chunk `index` of the shipped personal module (1 MiB each; the last may be shorter).
#[ic_cdk::query]
fn personal_module_chunk(index: u32) -> ModuleChunkResult {
    PersonalModule::chunk(factory::PERSONAL_WASM, index)
        .map(|c| serde_bytes::ByteBuf::from(c.to_vec()))
        .into()
}

// ---------------------------------------------------------------- the personal canister

/// A manifest page with its leaves decoded (what personal canisters built before raw pages
/// pull; an import in flight across a backend upgrade finishes with it).
#[ic_cdk::query]
fn export_manifest_page(migration_id: u64, cursor: PageCursor) -> ExportManifestPageResult {
    factory::with(|f| export::manifest_page(f, migration_id, caller(), cursor, false)).into()
}

/// A manifest page as the leaves' canonical bytes, copied from the stored export.
#[ic_cdk::query]
fn export_raw_manifest_page(migration_id: u64, cursor: PageCursor) -> ExportRawManifestPageResult {
    factory::with(|f| export::raw_manifest_page(f, migration_id, caller(), cursor)).into()
}

#[ic_cdk::query]
fn export_chunks(migration_id: u64, chunks: Vec<ChunkRef>) -> ChunkBatchResult {
    state::read(|caps| {
        factory::with(|f| {
            export::chunks(
                f,
                caps,
                migration_id,
                caller(),
                &chunks,
                crate::factory::faults::tamper,
            )
        })
    })
    .into()
}

#[ic_cdk::update]
fn report_import_progress(report: ImportProgress) -> ImportReportResult {
    factory::with(|f| f.report_progress(report.migration_id, caller(), report.progress, now()))
        .into()
}

#[ic_cdk::update]
fn report_import_done(report: ImportReport) -> ImportReportResult {
    let r = state::write(|caps| {
        factory::with(|f| f.report_done(report.migration_id, caller(), report.header, caps, now()))
    });
    driver::kick();
    r.into()
}

/// A personal canister under cleanup sends its cycles back here (attached to the call). The
/// backend accepts them only from a canister whose cleanup is running, and credits the reserve
/// with exactly what it accepted. Returns that amount; from anyone else nothing is accepted
/// (the IC refunds the cycles).
#[ic_cdk::update]
fn deposit_returned_cycles() -> CyclesResult {
    let from = caller();
    let Some(migration_id) = factory::with(|f| f.cleanup_expecting(from)) else {
        return CyclesResult::Err(FactoryError::InvalidArgument {
            reason: "only a personal canister under cleanup may return cycles here".into(),
        });
    };
    let accepted = ic_cdk::api::msg_cycles_accept(ic_cdk::api::msg_cycles_available());
    factory::with(|f| f.credit_returned(migration_id, accepted));
    CyclesResult::Ok(Nat::from(accepted))
}

// ---------------------------------------------------------------- admins

#[ic_cdk::update]
fn admin_set_creation_enabled(enabled: bool) -> FactoryConfigResult {
    as_admin(|| {
        Ok(factory::with(|f| {
            f.set_creation_enabled(enabled);
            f.config()
        }))
    })
    .into()
}

#[ic_cdk::query]
fn admin_get_config() -> FactoryConfigResult {
    as_admin(|| Ok(factory::with(|f| f.config()))).into()
}

#[ic_cdk::update]
fn admin_set_config(config: FactoryConfig) -> FactoryConfigResult {
    as_admin(|| {
        config.validate()?;
        let config = factory::with(|f| {
            f.set_config(config);
            f.config()
        });
        // Slots, deadlines and retention may have changed: the scheduler looks again.
        driver::kick();
        Ok(config)
    })
    .into()
}

/// Adds or removes an admin. Only controllers manage the admin list.
#[ic_cdk::update]
fn admin_set_admin(who: Principal, admin: bool) -> AdminsResult {
    require_controller()
        .and_then(|()| {
            factory::with(|f| {
                f.set_admin(who, admin)?;
                Ok(f.admins())
            })
        })
        .into()
}

#[ic_cdk::query]
fn admin_list_admins() -> AdminsResult {
    as_admin(|| Ok(factory::with(|f| f.admins()))).into()
}

#[ic_cdk::query]
fn admin_get_stats() -> FactoryStatsResult {
    as_admin(|| Ok(factory::with(|f| f.stats()))).into()
}

#[ic_cdk::query]
fn admin_list_creations(start_after: Option<u64>, limit: u32) -> CreationPageResult {
    as_admin(|| {
        Ok(factory::with(|f| {
            f.list(start_after, limit.clamp(1, 100) as usize)
        }))
    })
    .into()
}

/// One creation's whole record (the list gives summaries).
#[ic_cdk::query]
fn admin_get_creation(migration_id: u64) -> CreationRecordResult {
    as_admin(|| factory::with(|f| f.known_record(migration_id))).into()
}

/// A page of the manifest a migration exported.
#[ic_cdk::query]
fn admin_get_manifest_page(migration_id: u64, cursor: PageCursor) -> AdminManifestPageResult {
    as_admin(|| {
        factory::with(|f| export::manifest_page(f, migration_id, caller(), cursor, true)).map_err(
            |e| FactoryError::ExportFailed {
                reason: e.to_string(),
            },
        )
    })
    .into()
}

/// Cleans up a creation in any state but `Completed` (a running one is failed first): its
/// canister returns its cycles to the reserve, then it is stopped and deleted. Returns the
/// cycles credited (as received by `deposit_returned_cycles`).
#[ic_cdk::update]
async fn admin_cleanup_creation(migration_id: u64) -> CyclesResult {
    if let Err(e) = require_admin() {
        return CyclesResult::Err(e);
    }
    let result = driver::cleanup(migration_id).await.map(Nat::from);
    // A cleaned-up creation frees its slot for the queue.
    driver::kick();
    result.into()
}

/// Sponsors a top-up of a completed creation's personal canister with `cycles` from the
/// reserve (`deposit_cycles`), within `max_sponsored_per_user` per user; counted as consumed
/// by the creation. Returns the record (its `funding.sponsored` total).
#[ic_cdk::update]
async fn admin_sponsor_top_up(migration_id: u64, cycles: Nat) -> CreationRecordResult {
    sponsor_top_up(migration_id, cycles).await.into()
}

async fn sponsor_top_up(migration_id: u64, cycles: Nat) -> Result<CreationRecord, FactoryError> {
    require_admin()?;
    let cycles: u128 = cycles
        .0
        .try_into()
        .map_err(|_| FactoryError::InvalidArgument {
            reason: "more cycles than exist".into(),
        })?;
    driver::sponsor(migration_id, cycles).await?;
    factory::with(|f| f.known_record(migration_id))
}

/// Tops up the reserve with the cycles attached to the call, plus `from_balance` cycles of the
/// canister's balance not already reserved (bounded by what it can spend above its freezing
/// threshold and the operating cycles kept for its own running costs).
#[ic_cdk::update]
fn admin_top_up_reserve(from_balance: Option<Nat>) -> ReserveStatusResult {
    as_admin(|| {
        let wanted: u128 = from_balance.map_or(0, |n| n.0.try_into().unwrap_or(u128::MAX));
        // Moving the canister's own balance into the reserve is for controllers only: an admin
        // added to the list may fund the reserve with attached cycles, never with the canister's.
        if wanted > 0 {
            require_controller()?;
        }
        let attached = ic_cdk::api::msg_cycles_accept(ic_cdk::api::msg_cycles_available());
        let liquid = ic_cdk::api::canister_liquid_cycle_balance();
        Ok(factory::with(|f| {
            // The balance not reserved already and not kept for the backend's running costs.
            let unreserved = liquid
                .saturating_sub(f.config().operating_cycles())
                .saturating_sub(f.reserve().saturating_add(attached));
            f.top_up(attached.saturating_add(wanted.min(unreserved)));
            reserve_status(f)
        }))
    })
    .into()
}

#[ic_cdk::query]
fn admin_get_reserve() -> ReserveStatusResult {
    as_admin(|| Ok(factory::with(|f| reserve_status(f)))).into()
}

/// The reserve history, oldest first: up to `limit` snapshots taken after `since` (from the
/// oldest kept when `None`). One snapshot per interval at most; the newest holds the latest
/// change.
#[ic_cdk::query]
fn admin_get_reserve_history(since: Option<u64>, limit: u32) -> ReserveHistoryPageResult {
    as_admin(|| {
        let interval = factory::with(|f| f.config().reserve_history_interval_seconds());
        Ok(factory::with_reserve_history(|h| {
            h.page(since, limit as usize, interval)
        }))
    })
    .into()
}

/// Benchmark only (feature `bench-seed`): records `count` completed creations of made-up
/// owners numbered from `first` (see `Factory::seed_completed`). Controllers only.
#[cfg(feature = "bench-seed")]
#[ic_cdk::update]
fn bench_seed_creations(first: u64, count: u64) -> FactoryStatsResult {
    require_controller()
        .map(|()| {
            factory::with(|f| {
                f.seed_completed(first, count, now());
                f.stats()
            })
        })
        .into()
}
