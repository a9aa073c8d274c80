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
        ) -> ::std::result::Result<::capsule::CapsuleInfo, ::capsule::Error> {
            $write(|s| s.create_capsule(&$ctx(), input))
        }

        #[::ic_cdk::query]
        fn get_capsule() -> ::std::result::Result<::capsule::CapsuleInfo, ::capsule::Error> {
            $read(|s| s.get_capsule(&$ctx()))
        }

        #[::ic_cdk::update]
        fn update_capsule(
            update: ::capsule::CapsuleUpdate,
        ) -> ::std::result::Result<::capsule::CapsuleInfo, ::capsule::Error> {
            $write(|s| s.update_capsule(&$ctx(), update))
        }

        #[::ic_cdk::update]
        fn add_memory(
            input: ::capsule::MemoryInput,
        ) -> ::std::result::Result<::capsule::Memory, ::capsule::Error> {
            $write(|s| s.add_memory(&$ctx(), input))
        }

        #[::ic_cdk::query]
        fn get_memory(id: u64) -> ::std::result::Result<::capsule::Memory, ::capsule::Error> {
            $read(|s| s.get_memory(&$ctx(), id))
        }

        #[::ic_cdk::query]
        fn list_memories(
            req: ::capsule::MemoryPageRequest,
        ) -> ::std::result::Result<::capsule::MemoryPage, ::capsule::Error> {
            $read(|s| s.list_memories(&$ctx(), req))
        }

        #[::ic_cdk::update]
        fn update_memory(
            id: u64,
            update: ::capsule::MemoryUpdate,
        ) -> ::std::result::Result<::capsule::Memory, ::capsule::Error> {
            $write(|s| s.update_memory(&$ctx(), id, update))
        }

        #[::ic_cdk::update]
        fn delete_memory(id: u64) -> ::std::result::Result<(), ::capsule::Error> {
            $write(|s| s.delete_memory(&$ctx(), id))
        }

        #[::ic_cdk::update]
        fn begin_blob_upload(
            req: ::capsule::BlobUploadRequest,
        ) -> ::std::result::Result<u64, ::capsule::Error> {
            $write(|s| s.begin_blob_upload(&$ctx(), req))
        }

        #[::ic_cdk::update]
        fn put_blob_chunk(
            upload: u64,
            index: u64,
            bytes: ::serde_bytes::ByteBuf,
        ) -> ::std::result::Result<::capsule::Hash32, ::capsule::Error> {
            $write(|s| s.put_blob_chunk(&$ctx(), upload, index, &bytes))
        }

        #[::ic_cdk::update]
        fn finish_blob_upload(
            upload: u64,
        ) -> ::std::result::Result<::capsule::BlobDescriptor, ::capsule::Error> {
            $write(|s| s.finish_blob_upload(&$ctx(), upload))
        }

        #[::ic_cdk::update]
        fn abort_blob_upload(upload: u64) -> ::std::result::Result<(), ::capsule::Error> {
            $write(|s| s.abort_blob_upload(&$ctx(), upload))
        }

        #[::ic_cdk::query]
        fn get_blob(
            hash: ::capsule::Hash32,
        ) -> ::std::result::Result<::capsule::BlobDescriptor, ::capsule::Error> {
            $read(|s| s.get_blob(&$ctx(), &hash))
        }

        #[::ic_cdk::query]
        fn get_blob_chunk(
            hash: ::capsule::Hash32,
            index: u64,
        ) -> ::std::result::Result<::serde_bytes::ByteBuf, ::capsule::Error> {
            $read(|s| s.get_blob_chunk(&$ctx(), &hash, index))
        }

        #[::ic_cdk::query]
        fn read_blob_range(
            hash: ::capsule::Hash32,
            offset: u64,
            len: u64,
        ) -> ::std::result::Result<::serde_bytes::ByteBuf, ::capsule::Error> {
            $read(|s| s.read_blob_range(&$ctx(), &hash, offset, len))
        }

        #[::ic_cdk::update]
        fn add_connection(
            input: ::capsule::ConnectionInput,
        ) -> ::std::result::Result<::capsule::Connection, ::capsule::Error> {
            $write(|s| s.add_connection(&$ctx(), input))
        }

        #[::ic_cdk::query]
        fn list_connections(
            req: ::capsule::ConnectionPageRequest,
        ) -> ::std::result::Result<::capsule::ConnectionPage, ::capsule::Error> {
            $read(|s| s.list_connections(&$ctx(), req))
        }

        #[::ic_cdk::update]
        fn update_connection(
            peer: ::candid::Principal,
            update: ::capsule::ConnectionUpdate,
        ) -> ::std::result::Result<::capsule::Connection, ::capsule::Error> {
            $write(|s| s.update_connection(&$ctx(), peer, update))
        }

        #[::ic_cdk::update]
        fn remove_connection(
            peer: ::candid::Principal,
        ) -> ::std::result::Result<(), ::capsule::Error> {
            $write(|s| s.remove_connection(&$ctx(), peer))
        }
    };
}
