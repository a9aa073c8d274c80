//! The factory endpoints' named result types (see [`capsule::candid_result!`]), named after
//! what their `Ok` carries: `variant { Ok : T; Err : E }` on the wire, decodable as
//! `Result<T, E>`. One type per shape: candid names structurally equal types once.

use candid::{Nat, Principal};
use manifests::{ManifestPageReply, RawPageReply};
use migration::protocol::{ChunkBatch, ExportError};
use serde_bytes::ByteBuf;

use super::{
    CreationPage, CreationRecord, FactoryConfig, FactoryError, FactoryStats, ReserveHistoryPage,
    ReserveStatus,
};

capsule::candid_result! {
    /// Reply of `create_personal_canister`, `get_creation_status`, `purge_shared_capsule`,
    /// `admin_get_creation` and `admin_sponsor_top_up`: a creation's record.
    CreationRecordResult(CreationRecord, FactoryError)
    /// Reply of `personal_module_chunk`: the chunk's bytes.
    ModuleChunkResult(ByteBuf, FactoryError)
    /// Reply of `export_manifest_page` (the import of personal canisters built before raw
    /// pages).
    ExportManifestPageResult(ManifestPageReply, ExportError)
    /// Reply of `export_raw_manifest_page` (the personal canister's import).
    ExportRawManifestPageResult(RawPageReply, ExportError)
    /// Reply of `export_chunks` (the personal canister's import).
    ChunkBatchResult(ChunkBatch, ExportError)
    /// Reply of `report_import_progress` and `report_import_done`.
    ImportReportResult((), ExportError)
    /// Reply of `deposit_returned_cycles` and `admin_cleanup_creation`: the cycles credited to
    /// the reserve.
    CyclesResult(Nat, FactoryError)
    /// Reply of `admin_get_config`, `admin_set_config` and `admin_set_creation_enabled`: the
    /// configuration in force.
    FactoryConfigResult(FactoryConfig, FactoryError)
    /// Reply of `admin_list_admins` and `admin_set_admin`: the admins.
    AdminsResult(Vec<Principal>, FactoryError)
    /// Reply of `admin_get_stats`.
    FactoryStatsResult(FactoryStats, FactoryError)
    /// Reply of `admin_list_creations`.
    CreationPageResult(CreationPage, FactoryError)
    /// Reply of `admin_get_manifest_page`.
    AdminManifestPageResult(ManifestPageReply, FactoryError)
    /// Reply of `admin_get_reserve` and `admin_top_up_reserve`: the reserve now.
    ReserveStatusResult(ReserveStatus, FactoryError)
    /// Reply of `admin_get_reserve_history`.
    ReserveHistoryPageResult(ReserveHistoryPage, FactoryError)
}
