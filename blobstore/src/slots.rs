//! The chunk data area: a header page, then fixed [`CHUNK_SIZE`] slots in raw memory.
//!
//! Layout of the `chunk_data` memory:
//!
//! ```text
//! offset 0       header (little-endian): magic "BLOBSTOR" | schema version u32 | reserved u32 |
//!                slot count u64 | next upload id u64 | stored bytes u64 | logical bytes u64
//! offset 65536   slot 0, slot 1, ... each CHUNK_SIZE bytes (4 KiB aligned, so a full chunk
//!                dirties exactly 64 pages)
//! ```
//!
//! A chunk is written with one `Memory::write` of its bytes and read straight into the caller's
//! buffer, without copies through the heap.

use ic_stable_structures::Memory;

use crate::error::BlobError;
use crate::hash::CHUNK_SIZE;

/// Identifies the chunk data memory as this store's.
const MAGIC: [u8; 8] = *b"BLOBSTOR";

/// Schema version written by this code. Bump it, and migrate in `SlotArea::open`'s caller, when
/// a record layout changes.
///
/// - 1: chunks, blobs, sessions.
/// - 2: per-owner session totals and the expiry index (two more memories), and an expiry time
///   in each session record. `BlobStore::init` migrates a schema-1 store.
pub const SCHEMA_VERSION: u32 = 2;

const WASM_PAGE: u64 = 65_536;
/// Offset of slot 0: one wasm page for the header.
const DATA_OFFSET: u64 = WASM_PAGE;
const HEADER_LEN: usize = 48;

/// Counters kept in the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    /// Schema version of the stored records.
    pub version: u32,
    /// Slots ever allocated (the area's high-water mark).
    pub slot_count: u64,
    /// Next upload id to hand out.
    pub next_upload: u64,
    /// Bytes of all stored chunks.
    pub stored_bytes: u64,
    /// Sum over blobs of size * refs.
    pub logical_bytes: u64,
}

/// The header plus slot area over one memory.
pub(crate) struct SlotArea<M: Memory> {
    mem: M,
    header: Header,
}

impl<M: Memory> SlotArea<M> {
    /// Whether `mem` holds no store yet.
    pub fn is_fresh(mem: &M) -> bool {
        mem.size() == 0
    }

    /// Opens the area, creating the header if the memory is empty. The header keeps the
    /// schema version found (the current one for a new area) until [`SlotArea::stamp_version`]
    /// once the caller has migrated the records.
    ///
    /// Panics if the memory holds something else or a newer schema: the canister must not
    /// start over data it does not understand.
    pub fn open(mem: M) -> Self {
        if Self::is_fresh(&mem) {
            assert!(
                mem.grow(1) != -1,
                "blobstore: cannot grow the chunk data memory for its header"
            );
            let area = Self {
                mem,
                header: Header {
                    version: SCHEMA_VERSION,
                    next_upload: 1,
                    ..Header::default()
                },
            };
            area.save();
            return area;
        }
        let mut buf = [0u8; HEADER_LEN];
        mem.read(0, &mut buf);
        assert!(
            buf[..8] == MAGIC,
            "blobstore: the chunk data memory does not hold a blob store"
        );
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
        assert!(
            version <= SCHEMA_VERSION,
            "blobstore: stored schema version {version} is newer than this code's {SCHEMA_VERSION}; downgrades are not supported"
        );
        // The caller migrates older records before anything else is written, then stamps.
        Self {
            mem,
            header: Header {
                version,
                slot_count: word(16),
                next_upload: word(24),
                stored_bytes: word(32),
                logical_bytes: word(40),
            },
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Records that the stored data now follows [`SCHEMA_VERSION`].
    pub fn stamp_version(&mut self) {
        if self.header.version != SCHEMA_VERSION {
            self.update(|h| h.version = SCHEMA_VERSION);
        }
    }

    /// Changes the header and writes it to memory.
    pub fn update(&mut self, f: impl FnOnce(&mut Header)) {
        f(&mut self.header);
        self.save();
    }

    fn save(&self) {
        let h = &self.header;
        let mut buf = [0u8; HEADER_LEN];
        buf[..8].copy_from_slice(&MAGIC);
        buf[8..12].copy_from_slice(&h.version.to_le_bytes());
        buf[16..24].copy_from_slice(&h.slot_count.to_le_bytes());
        buf[24..32].copy_from_slice(&h.next_upload.to_le_bytes());
        buf[32..40].copy_from_slice(&h.stored_bytes.to_le_bytes());
        buf[40..48].copy_from_slice(&h.logical_bytes.to_le_bytes());
        self.mem.write(0, &buf);
    }

    fn slot_offset(slot: u64) -> u64 {
        DATA_OFFSET + slot * CHUNK_SIZE as u64
    }

    /// Grows the memory, if needed, so that `slot` fits. Changes nothing on failure.
    pub fn ensure_slot(&self, slot: u64) -> Result<(), BlobError> {
        let end = Self::slot_offset(slot + 1);
        let have = self.mem.size() * WASM_PAGE;
        if have >= end {
            return Ok(());
        }
        let pages = (end - have).div_ceil(WASM_PAGE);
        if self.mem.grow(pages) == -1 {
            return Err(BlobError::OutOfStableMemory { pages });
        }
        Ok(())
    }

    /// Writes a chunk's bytes (at most `CHUNK_SIZE`) into a slot that `ensure_slot` made room for.
    pub fn write(&self, slot: u64, bytes: &[u8]) {
        debug_assert!(bytes.len() <= CHUNK_SIZE);
        self.mem.write(Self::slot_offset(slot), bytes);
    }

    /// Appends `len` bytes of a slot, from `start` within it, to `out`.
    pub fn read_append(&self, slot: u64, start: usize, len: usize, out: &mut Vec<u8>) {
        debug_assert!(start + len <= CHUNK_SIZE);
        let old = out.len();
        out.reserve(len);
        // SAFETY: `reserve` makes room for `len` more bytes after `old`, so the destination is
        // valid writable heap memory that cannot overlap the stable memory being read.
        // `read_unsafe` initializes all `len` bytes (or traps), so they may join the vector.
        unsafe {
            self.mem.read_unsafe(
                Self::slot_offset(slot) + start as u64,
                out.as_mut_ptr().add(old),
                len,
            );
            out.set_len(old + len);
        }
    }
}
