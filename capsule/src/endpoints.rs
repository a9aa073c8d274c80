//! The capsule API's canister endpoints, written once and expanded in each canister.
//!
//! A canister provides three functions and invokes the macro at its crate root:
//! - `read(f)`: runs `f(&CapsuleStore)`,
//! - `write(f)`: runs `f(&mut CapsuleStore)`,
//! - `ctx()`: the caller and the time as a [`crate::Ctx`].
//!
//! ```text
//! capsule::capsule_endpoints!(read = state::read, write = state::write, ctx = state::ctx);
//! ```
//!
//! Every endpoint is thin: it builds the context and calls one store method. Bulk bytes travel
//! as candid `blob` (`serde_bytes::ByteBuf`).
//!
//! Every endpoint that can fail replies with a named result type, named after what its `Ok`
//! carries (`CapsuleInfoResult`, `MemoryPageResult`, ...): `variant { Ok : T; Err : E }` on the
//! wire, exactly as a Rust `Result<T, E>`, so clients may decode into either. Candid names
//! structurally equal types once (the shortest Rust name wins), so there is one named type
//! per shape, shared by the endpoints that reply with it. The store's methods return plain
//! `Result`s; the named types exist for the interface ([`candid_result!`]).

/// Defines a named candid result type for an endpoint's reply: an enum `Ok(T)` / `Err(E)`
/// that candid encodes as `variant { Ok : T; Err : E }`, the wire form of `Result<T, E>`, with
/// conversions both ways. Endpoints return the named type (it names the reply in the `.did`
/// file instead of candid's `Result_N`); the logic behind them returns the plain `Result`.
///
/// ```text
/// capsule::candid_result! {
///     /// Reply of `create_capsule`, `get_capsule` and `update_capsule`.
///     CapsuleInfoResult(CapsuleInfo, Error)
/// }
/// ```
#[macro_export]
macro_rules! candid_result {
    ($($(#[$attr:meta])* $name:ident($ok:ty, $err:ty))*) => {$(
        $(#[$attr])*
        #[derive(::candid::CandidType, ::serde::Deserialize, Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            Ok($ok),
            Err($err),
        }

        impl ::core::convert::From<::core::result::Result<$ok, $err>> for $name {
            fn from(r: ::core::result::Result<$ok, $err>) -> Self {
                match r {
                    ::core::result::Result::Ok(v) => $name::Ok(v),
                    ::core::result::Result::Err(e) => $name::Err(e),
                }
            }
        }

        impl ::core::convert::From<$name> for ::core::result::Result<$ok, $err> {
            fn from(r: $name) -> Self {
                match r {
                    $name::Ok(v) => ::core::result::Result::Ok(v),
                    $name::Err(e) => ::core::result::Result::Err(e),
                }
            }
        }
    )*};
}

use crate::restore::RestoreUpload;
use crate::{BlobDescriptor, CapsuleInfo, Connection, ConnectionPage, Error, Memory, MemoryPage};
use serde_bytes::ByteBuf;

candid_result! {
    /// Reply of `create_capsule`, `get_capsule` and `update_capsule`.
    CapsuleInfoResult(CapsuleInfo, Error)
    /// Reply of `add_memory`, `get_memory` and `update_memory`.
    MemoryResult(Memory, Error)
    /// Reply of `list_memories`.
    MemoryPageResult(MemoryPage, Error)
    /// Reply of `begin_blob_upload`: the upload's id.
    UploadIdResult(u64, Error)
    /// Reply carrying bytes: a chunk (`get_blob_chunk`), a byte range (`read_blob_range`) or a
    /// 32-byte hash (`put_blob_chunk`: the chunk's hash at its index; `capsule_root`).
    BytesResult(ByteBuf, Error)
    /// Reply of `finish_blob_upload`, `get_blob` and `restore_blob_finish`.
    BlobDescriptorResult(BlobDescriptor, Error)
    /// Reply of `add_connection` and `update_connection`.
    ConnectionResult(Connection, Error)
    /// Reply of `list_connections`.
    ConnectionPageResult(ConnectionPage, Error)
    /// Reply with nothing to return: `delete_memory`, `abort_blob_upload`,
    /// `remove_connection`, `restore_capsule`, `restore_blob_chunk`, `restore_records`.
    EmptyResult((), Error)
    /// Reply of `restore_blob_begin` (both canisters serve the archive restore).
    RestoreUploadResult(RestoreUpload, Error)
}

/// A 32-byte hash as the `Ok` of a [`BytesResult`] (candid `blob` either way).
pub fn hash_bytes(h: crate::Hash32) -> ByteBuf {
    ByteBuf::from(h.into_array().to_vec())
}

/// The names candid gives result types nobody named (`Result`, `Result_1`, ...) that appear in
/// the candid text `did`: the interface tests require none.
pub fn unnamed_results(did: &str) -> Vec<&str> {
    did.lines()
        .filter_map(|l| l.strip_prefix("type ")?.split_whitespace().next())
        .filter(|name| {
            name.strip_prefix("Result")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
        })
        .collect()
}

/// Types are named by absolute `::capsule::` paths (not `$crate`) because `ic_cdk::export_candid!`
/// re-parses them as text; the canister must depend on this crate under the name `capsule`.
///
/// Expands to the capsule API's `#[ic_cdk::update]` / `#[ic_cdk::query]` functions.
#[macro_export]
macro_rules! capsule_endpoints {
    (read = $read:path, write = $write:path, ctx = $ctx:path) => {
        #[::ic_cdk::update]
        fn create_capsule(
            input: ::capsule::CapsuleInput,
        ) -> ::capsule::endpoints::CapsuleInfoResult {
            $write(|s| s.create_capsule(&$ctx(), input)).into()
        }

        #[::ic_cdk::query]
        fn get_capsule() -> ::capsule::endpoints::CapsuleInfoResult {
            $read(|s| s.get_capsule(&$ctx())).into()
        }

        #[::ic_cdk::update]
        fn update_capsule(
            update: ::capsule::CapsuleUpdate,
        ) -> ::capsule::endpoints::CapsuleInfoResult {
            $write(|s| s.update_capsule(&$ctx(), update)).into()
        }

        #[::ic_cdk::update]
        fn add_memory(input: ::capsule::MemoryInput) -> ::capsule::endpoints::MemoryResult {
            $write(|s| s.add_memory(&$ctx(), input)).into()
        }

        #[::ic_cdk::query]
        fn get_memory(id: u64) -> ::capsule::endpoints::MemoryResult {
            $read(|s| s.get_memory(&$ctx(), id)).into()
        }

        #[::ic_cdk::query]
        fn list_memories(
            req: ::capsule::MemoryPageRequest,
        ) -> ::capsule::endpoints::MemoryPageResult {
            $read(|s| s.list_memories(&$ctx(), req)).into()
        }

        #[::ic_cdk::update]
        fn update_memory(
            id: u64,
            update: ::capsule::MemoryUpdate,
        ) -> ::capsule::endpoints::MemoryResult {
            $write(|s| s.update_memory(&$ctx(), id, update)).into()
        }

        #[::ic_cdk::update]
        fn delete_memory(id: u64) -> ::capsule::endpoints::EmptyResult {
            $write(|s| s.delete_memory(&$ctx(), id)).into()
        }

        #[::ic_cdk::update]
        fn begin_blob_upload(
            req: ::capsule::BlobUploadRequest,
        ) -> ::capsule::endpoints::UploadIdResult {
            $write(|s| s.begin_blob_upload(&$ctx(), req)).into()
        }

        #[::ic_cdk::update]
        fn put_blob_chunk(
            upload: u64,
            index: u64,
            bytes: ::serde_bytes::ByteBuf,
        ) -> ::capsule::endpoints::BytesResult {
            $write(|s| s.put_blob_chunk(&$ctx(), upload, index, &bytes))
                .map(::capsule::endpoints::hash_bytes)
                .into()
        }

        #[::ic_cdk::update]
        fn finish_blob_upload(upload: u64) -> ::capsule::endpoints::BlobDescriptorResult {
            $write(|s| s.finish_blob_upload(&$ctx(), upload)).into()
        }

        #[::ic_cdk::update]
        fn abort_blob_upload(upload: u64) -> ::capsule::endpoints::EmptyResult {
            $write(|s| s.abort_blob_upload(&$ctx(), upload)).into()
        }

        #[::ic_cdk::query]
        fn get_blob(hash: ::capsule::Hash32) -> ::capsule::endpoints::BlobDescriptorResult {
            $read(|s| s.get_blob(&$ctx(), &hash)).into()
        }

        #[::ic_cdk::query]
        fn get_blob_chunk(
            hash: ::capsule::Hash32,
            index: u64,
        ) -> ::capsule::endpoints::BytesResult {
            $read(|s| s.get_blob_chunk(&$ctx(), &hash, index)).into()
        }

        #[::ic_cdk::query]
        fn read_blob_range(
            hash: ::capsule::Hash32,
            offset: u64,
            len: u64,
        ) -> ::capsule::endpoints::BytesResult {
            $read(|s| s.read_blob_range(&$ctx(), &hash, offset, len)).into()
        }

        #[::ic_cdk::update]
        fn add_connection(
            input: ::capsule::ConnectionInput,
        ) -> ::capsule::endpoints::ConnectionResult {
            $write(|s| s.add_connection(&$ctx(), input)).into()
        }

        #[::ic_cdk::query]
        fn list_connections(
            req: ::capsule::ConnectionPageRequest,
        ) -> ::capsule::endpoints::ConnectionPageResult {
            $read(|s| s.list_connections(&$ctx(), req)).into()
        }

        #[::ic_cdk::update]
        fn update_connection(
            peer: ::candid::Principal,
            update: ::capsule::ConnectionUpdate,
        ) -> ::capsule::endpoints::ConnectionResult {
            $write(|s| s.update_connection(&$ctx(), peer, update)).into()
        }

        #[::ic_cdk::update]
        fn remove_connection(peer: ::candid::Principal) -> ::capsule::endpoints::EmptyResult {
            $write(|s| s.remove_connection(&$ctx(), peer)).into()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::{Decode, Encode, Principal};

    #[test]
    fn a_named_result_is_a_result_on_the_wire_both_ways() {
        let err = Error::NotOwner {
            owner: Principal::anonymous(),
        };
        let named = Encode!(&EmptyResult::Err(err.clone())).unwrap();
        assert_eq!(
            Decode!(&named, Result<(), Error>).unwrap(),
            Err(err.clone())
        );
        let plain = Encode!(&Result::<(), Error>::Ok(())).unwrap();
        assert_eq!(Decode!(&plain, EmptyResult).unwrap(), EmptyResult::Ok(()));
        let bytes = Encode!(&BytesResult::Ok(ByteBuf::from(vec![1, 2, 3]))).unwrap();
        assert_eq!(
            Decode!(&bytes, Result<ByteBuf, Error>).unwrap(),
            Ok(ByteBuf::from(vec![1, 2, 3]))
        );
        let hash = crate::Hash32::new([9; 32]);
        assert_eq!(hash_bytes(hash).as_slice(), &[9; 32]);
    }

    #[test]
    fn the_conversions_keep_the_value() {
        let r: Result<u64, Error> = UploadIdResult::from(Ok::<u64, Error>(7)).into();
        assert_eq!(r, Ok(7));
        let r: Result<u64, Error> =
            UploadIdResult::from(Err::<u64, Error>(Error::Anonymous)).into();
        assert_eq!(r, Err(Error::Anonymous));
    }

    #[test]
    fn unnamed_results_finds_only_the_names_candid_makes_up() {
        let did = "type CapsuleInfoResult = variant { Ok : CapsuleInfo; Err : Error };\n\
                   type Result = variant { Ok; Err : Error };\n\
                   type Result_1 = variant { Ok : nat64; Err : Error };\n\
                   type ResultsPage = record { items : vec nat64 };\n\
                   service : { f : () -> (Result_1) }";
        assert_eq!(unnamed_results(did), vec!["Result", "Result_1"]);
        assert_eq!(
            unnamed_results("type EmptyResult = variant { Ok; Err : Error };"),
            Vec::<&str>::new()
        );
    }
}
