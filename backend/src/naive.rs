//! Benchmark only (cargo feature `bench-naive`, never in the production wasm): the naive copy
//! of a capsule, the baseline the migration benchmark compares the pipeline with.
//!
//! This is the copy a developer would write first: the backend pushes the owner's capsule to
//! a canister that serves the public capsule API, one awaited call at a time —
//! `create_capsule`, then for every blob `begin_blob_upload`, one `put_blob_chunk` per 256 KiB
//! chunk and `finish_blob_upload`, then `add_memory` per memory and `add_connection` per
//! connection. Nothing is batched, nothing runs in parallel, nothing is verified beyond what
//! the capsule API checks itself (the upload's expected hash).
//!
//! The target is a personal canister installed *without* a migration whose owner is this
//! backend (its capsule API accepts only its owner, and the backend is the caller here).
//! Memories are read page by page with the capsule store's own API, as the owner would see
//! them; blobs are copied before the first memory that references them.
//!
//! ```text
//! bench_naive_copy : (owner : principal, target : principal)
//!     -> (variant { Ok : NaiveReport; Err : text })      // controllers only
//! ```

use std::collections::BTreeSet;

use candid::{CandidType, Principal};
use capsule::{
    BlobDescriptor, BlobUploadRequest, CapsuleInfo, CapsuleInput, Connection, ConnectionInput,
    ConnectionPageRequest, Ctx, Error, Hash32, Memory, MemoryInput, MemoryPageRequest,
};
use ic_cdk::call::Call;
use serde::Deserialize;
use serde_bytes::ByteBuf;

use crate::state;

/// Page size used to read the owner's memories and connections (the store's largest page).
const PAGE: u32 = 100;

/// What the naive copy moved, counted by the backend.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct NaiveReport {
    pub memories: u64,
    pub connections: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Calls made to the target, each awaited before the next.
    pub calls: u64,
}

/// Copies `owner`'s capsule to `target` through the capsule API, one call at a time.
#[ic_cdk::update]
async fn bench_naive_copy(
    owner: candid::Principal,
    target: candid::Principal,
) -> Result<crate::naive::NaiveReport, String> {
    if !ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()) {
        return Err("bench_naive_copy: controllers only".into());
    }
    copy(owner, target).await
}

/// The owner's view of the shared store: reads go through the capsule API's own checks.
fn owner_ctx(owner: Principal) -> Ctx {
    Ctx {
        caller: owner,
        now: ic_cdk::api::time(),
    }
}

/// One awaited call to the target's capsule API; its `Err` and transport errors become text.
async fn call<A, T>(
    report: &mut NaiveReport,
    target: Principal,
    method: &str,
    args: &A,
) -> Result<T, String>
where
    A: candid::utils::ArgumentEncoder,
    T: CandidType + for<'de> Deserialize<'de>,
{
    report.calls += 1;
    // The personal canister is the owner's until the handoff: never wait on it unboundedly.
    let reply = Call::bounded_wait(target, method)
        .with_args(args)
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    let result: Result<T, Error> = reply.candid().map_err(|e| format!("{method}: {e}"))?;
    result.map_err(|e| format!("{method}: {e:?}"))
}

async fn copy(owner: Principal, target: Principal) -> Result<NaiveReport, String> {
    let mut report = NaiveReport::default();
    let rec = state::read(|s| s.record_of(owner)).map_err(|e| format!("{e:?}"))?;
    let input = CapsuleInput {
        name: rec.name,
        bio: rec.bio,
        settings: Some(rec.settings),
    };
    let _: CapsuleInfo = call(&mut report, target, "create_capsule", &(input,)).await?;

    let mut copied: BTreeSet<[u8; 32]> = BTreeSet::new();
    let mut after = None;
    loop {
        let req = MemoryPageRequest {
            start_after: after,
            limit: PAGE,
        };
        let page = state::read(|s| s.list_memories(&owner_ctx(owner), req))
            .map_err(|e| format!("{e:?}"))?;
        for memory in page.items {
            for b in &memory.blobs {
                if copied.insert(b.hash.into_array()) {
                    copy_blob(&mut report, owner, target, b.hash).await?;
                }
            }
            let input = MemoryInput {
                title: memory.title,
                description: memory.description,
                tags: memory.tags,
                kind: memory.kind,
                blobs: memory.blobs,
                encryption: memory.encryption,
            };
            let _: Memory = call(&mut report, target, "add_memory", &(input,)).await?;
            report.memories += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }

    let mut after = None;
    loop {
        let req = ConnectionPageRequest {
            start_after: after,
            limit: PAGE,
        };
        let page = state::read(|s| s.list_connections(&owner_ctx(owner), req))
            .map_err(|e| format!("{e:?}"))?;
        for c in page.items {
            let input = ConnectionInput {
                peer: c.peer,
                relationship: c.relationship,
                status: c.status,
            };
            let _: Connection = call(&mut report, target, "add_connection", &(input,)).await?;
            report.connections += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// Uploads one blob: begin, every chunk in order (one call each), finish.
async fn copy_blob(
    report: &mut NaiveReport,
    owner: Principal,
    target: Principal,
    hash: Hash32,
) -> Result<(), String> {
    let desc: BlobDescriptor =
        state::read(|s| s.get_blob(&owner_ctx(owner), &hash)).map_err(|e| format!("{e:?}"))?;
    let req = BlobUploadRequest {
        size: desc.size,
        expected_hash: Some(hash),
    };
    let upload: u64 = call(report, target, "begin_blob_upload", &(req,)).await?;
    for index in 0..desc.chunk_hashes.len() as u64 {
        let bytes: ByteBuf = state::read(|s| s.get_blob_chunk(&owner_ctx(owner), &hash, index))
            .map_err(|e| format!("{e:?}"))?;
        let _: Hash32 = call(report, target, "put_blob_chunk", &(upload, index, bytes)).await?;
    }
    let _: BlobDescriptor = call(report, target, "finish_blob_upload", &(upload,)).await?;
    report.blobs += 1;
    report.blob_bytes += desc.size;
    Ok(())
}
