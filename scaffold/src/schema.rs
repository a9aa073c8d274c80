//! The version of a canister's stable layout, recorded on install and checked on upgrade: a
//! build refuses (traps, so the IC keeps the previous module and its data) to open a layout
//! newer than the one it writes, and records its own otherwise. Each canister has its own
//! version and keeps it where its layout says (the backend in a [`SchemaCell`] of its own, a
//! personal canister in its configuration record); both check it with [`check`].
//!
//! A canister with the capsule store writes layout 2: the store's records, staged manifest
//! leaves and headers (and, in a personal canister, the importer's state and open blobs) in the
//! packed encoding (`capsule::storable::Packed`); records of layout 1 (candid) are read as they
//! are and rewritten packed when they change, so opening a layout-1 state needs no migration
//! pass. A build of layout 1 refuses to open a layout-2 state.
//!
//! Layout 3 stores manifest leaves (the exporter's manifests, the importer's staged pages) as
//! their canonical bytes, in framed runs (`capsule::manifest_store::RUN_FRAMED`), and memories
//! in buckets of consecutive ids (`capsule::store::memory_table`, a memory of its own); runs,
//! single leaves and per-memory entries of layouts 1 and 2 are read as they are, and a memory
//! moves to its bucket when it is written. A build of layout 2 refuses to open a layout-3
//! state (it could not read what layout 3 writes).
//!
//! Layout 4 stores each memory in its bucket as its canonical manifest leaf encoding (bucket
//! format `capsule::store::memory_table::BUCKET_V2`, the bytes a manifest hashes) instead of
//! packed; buckets of layout 3 are read as they are and rewritten in the new format when one of
//! their memories is written. The importer's state drops the version field of its own that
//! nothing read (format byte `STATE_V3` in `migration::import::stored`; `STATE_V2` is still
//! read). A build of layout 3 refuses to open a layout-4 state.

use ic_stable_structures::{Memory, StableCell};

/// Stable memory written by a newer build than this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "stable memory has schema {stored}, newer than this build's {this}: install a newer module"
)]
pub struct SchemaTooNew {
    /// The version found in stable memory.
    pub stored: u32,
    /// This build's version.
    pub this: u32,
}

/// Whether a build of layout `this` may open stable memory of layout `stored` (older or equal
/// layouts open; a fresh canister has `stored` 0).
pub fn check(stored: u32, this: u32) -> Result<(), SchemaTooNew> {
    if stored > this {
        return Err(SchemaTooNew { stored, this });
    }
    Ok(())
}

/// A layout version kept alone in a memory of its own: a `u32` cell, 0 until first recorded.
pub struct SchemaCell<M: Memory>(StableCell<u32, M>);

impl<M: Memory> SchemaCell<M> {
    /// Opens the cell in `memory` (a fresh memory reads 0).
    pub fn init(memory: M) -> Self {
        SchemaCell(StableCell::init(memory, 0))
    }

    /// The version stored.
    pub fn get(&self) -> u32 {
        *self.0.get()
    }

    /// Checks the stored version against `this` and records `this`; a newer stored version is
    /// refused and left as it is.
    pub fn open(&mut self, this: u32) -> Result<(), SchemaTooNew> {
        check(self.get(), this)?;
        self.0.set(this);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    #[test]
    fn an_older_or_equal_layout_opens_and_a_newer_one_is_refused() {
        assert_eq!(check(0, 2), Ok(()));
        assert_eq!(check(2, 2), Ok(()));
        let refused = check(3, 2).unwrap_err();
        assert_eq!(refused, SchemaTooNew { stored: 3, this: 2 });
        assert_eq!(
            refused.to_string(),
            "stable memory has schema 3, newer than this build's 2: install a newer module"
        );
    }

    #[test]
    fn the_cell_records_this_version_and_keeps_a_newer_one() {
        let memory = VectorMemory::default();
        let mut cell = SchemaCell::init(memory.clone());
        assert_eq!(cell.get(), 0);
        cell.open(1).unwrap();
        // The bytes are a plain `StableCell<u32>`: what earlier builds wrote reads the same.
        assert_eq!(*StableCell::<u32, _>::init(memory.clone(), 0).get(), 1);
        let mut cell = SchemaCell::init(memory.clone());
        cell.open(2).unwrap();
        assert_eq!(
            SchemaCell::init(memory.clone()).open(1),
            Err(SchemaTooNew { stored: 2, this: 1 })
        );
        assert_eq!(SchemaCell::init(memory).get(), 2);
    }
}
