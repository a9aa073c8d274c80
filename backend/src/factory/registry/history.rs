//! The reserve history: a bounded ring of fixed-size snapshots of the reserve's books, in a
//! stable memory of its own, for the admins' chart.
//!
//! A snapshot is written when the reserve changed since the newest one, and at most one per
//! interval (`reserve_history_interval_seconds`): a change within the interval of the newest
//! snapshot (intervals aligned to the epoch) overwrites it, so the newest snapshot always shows
//! the current figures. Once the ring is full the oldest snapshot is overwritten. A write is
//! one fixed-size entry and a fixed-size header: its cost does not depend on how many users
//! were served or how many snapshots are kept.
//!
//! Layout: a 32-byte header (magic `RSH1`, layout version, capacity, entry size, count, next
//! slot), then `capacity` entries of [`ENTRY_BYTES`] bytes (little-endian `at`, `reserve`,
//! `liquid_balance`, `total_topped_up`, `total_consumed`, `total_returned`).

use candid::CandidType;
use ic_stable_structures::Memory as StableMemory;
use serde::{Deserialize, Serialize};

use super::Factory;

/// Snapshots kept: two weeks of one every ten minutes (the default interval).
pub const HISTORY_CAPACITY: u32 = 2_048;
/// Bytes of one stored snapshot.
pub const ENTRY_BYTES: u64 = 8 + 5 * 16;
const HEADER_BYTES: u64 = 32;
const MAGIC: [u8; 4] = *b"RSH1";
const LAYOUT_VERSION: u32 = 1;
const WASM_PAGE: u64 = 65_536;
/// Most snapshots one page of [`ReserveHistory::page`] returns.
pub const MAX_PAGE: usize = 500;

/// The reserve's books at one time: one entry of the reserve history.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReserveSnapshot {
    /// When the snapshot was taken (the latest change within its interval), ns since the epoch.
    pub at: u64,
    pub reserve: u128,
    /// The canister's liquid balance (above its freezing reserve) then.
    pub liquid_balance: u128,
    pub total_topped_up: u128,
    pub total_consumed: u128,
    pub total_returned: u128,
}

/// A page of the reserve history, oldest first.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ReserveHistoryPage {
    pub snapshots: Vec<ReserveSnapshot>,
    /// Pass as `since` for the next page (the last snapshot's time); `None` when this page
    /// reaches the newest snapshot.
    pub next: Option<u64>,
    /// Snapshots kept at most (older ones are overwritten).
    pub capacity: u32,
    /// At most one snapshot per this many seconds.
    pub interval_seconds: u64,
}

impl ReserveSnapshot {
    fn encode(&self) -> [u8; ENTRY_BYTES as usize] {
        let mut out = [0u8; ENTRY_BYTES as usize];
        out[..8].copy_from_slice(&self.at.to_le_bytes());
        let figures = [
            self.reserve,
            self.liquid_balance,
            self.total_topped_up,
            self.total_consumed,
            self.total_returned,
        ];
        for (i, v) in figures.iter().enumerate() {
            out[8 + 16 * i..24 + 16 * i].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn decode(b: &[u8; ENTRY_BYTES as usize]) -> Self {
        let u128_at = |i: usize| {
            u128::from_le_bytes(b[8 + 16 * i..24 + 16 * i].try_into().expect("16 bytes"))
        };
        ReserveSnapshot {
            at: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            reserve: u128_at(0),
            liquid_balance: u128_at(1),
            total_topped_up: u128_at(2),
            total_consumed: u128_at(3),
            total_returned: u128_at(4),
        }
    }
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// A new snapshot (the oldest overwritten when the ring was full).
    Appended,
    /// The newest snapshot, in the same interval, now holds the new figures.
    Replaced,
}

/// The ring of reserve snapshots over one stable memory.
pub struct ReserveHistory<M: StableMemory> {
    memory: M,
    capacity: u32,
    len: u32,
    /// The slot the next appended snapshot goes to.
    next: u32,
    /// The newest snapshot, kept in the heap so that "did the reserve change" reads nothing.
    newest: Option<ReserveSnapshot>,
}

impl<M: StableMemory> ReserveHistory<M> {
    /// Opens the history in `memory`, laying it out with [`HISTORY_CAPACITY`] slots when the
    /// memory is empty. Panics on a memory that holds something else (a `MemoryId` reused).
    pub fn init(memory: M) -> Self {
        Self::init_with_capacity(memory, HISTORY_CAPACITY)
    }

    /// [`init`](Self::init) with another capacity (for a fresh memory; a laid-out memory keeps
    /// its own).
    pub fn init_with_capacity(memory: M, capacity: u32) -> Self {
        assert!(capacity > 0, "a reserve history needs at least one slot");
        if memory.size() == 0 {
            let mut h = ReserveHistory {
                memory,
                capacity,
                len: 0,
                next: 0,
                newest: None,
            };
            h.ensure_size(HEADER_BYTES);
            h.write_header();
            return h;
        }
        let mut header = [0u8; HEADER_BYTES as usize];
        memory.read(0, &mut header);
        let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
        assert!(
            header[..4] == MAGIC && word(4) == LAYOUT_VERSION && u64::from(word(12)) == ENTRY_BYTES,
            "the reserve history's memory holds something else (magic {:?}, version {})",
            &header[..4],
            word(4)
        );
        let mut h = ReserveHistory {
            memory,
            capacity: word(8),
            len: word(16),
            next: word(20),
            newest: None,
        };
        h.newest = h.len.checked_sub(1).map(|i| h.get(i));
        h
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn newest(&self) -> Option<ReserveSnapshot> {
        self.newest
    }

    /// Writes `snap`: over the newest snapshot when both fall in the same interval of
    /// `interval_ns` (or `snap` is not newer), as a new snapshot otherwise.
    pub fn record(&mut self, snap: ReserveSnapshot, interval_ns: u64) -> Written {
        let interval = interval_ns.max(1);
        let same_interval = self
            .newest
            .is_some_and(|n| snap.at <= n.at || snap.at / interval == n.at / interval);
        let written = if same_interval {
            let slot = (self.next + self.capacity - 1) % self.capacity;
            self.write_slot(slot, &snap);
            Written::Replaced
        } else {
            self.write_slot(self.next, &snap);
            self.next = (self.next + 1) % self.capacity;
            self.len = (self.len + 1).min(self.capacity);
            self.write_header();
            Written::Appended
        };
        self.newest = Some(snap);
        written
    }

    /// The `i`-th snapshot kept, oldest first (`i < len`).
    pub fn get(&self, i: u32) -> ReserveSnapshot {
        assert!(i < self.len, "snapshot {i} of {}", self.len);
        let slot = (self.next + self.capacity - self.len + i) % self.capacity;
        let mut b = [0u8; ENTRY_BYTES as usize];
        self.memory.read(Self::offset(slot), &mut b);
        ReserveSnapshot::decode(&b)
    }

    /// Every snapshot kept, oldest first.
    pub fn all(&self) -> Vec<ReserveSnapshot> {
        (0..self.len).map(|i| self.get(i)).collect()
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) snapshots taken after `since` (all when `None`),
    /// oldest first. Finds the first one by binary search: snapshots are in time order.
    pub fn page(
        &self,
        since: Option<u64>,
        limit: usize,
        interval_seconds: u64,
    ) -> ReserveHistoryPage {
        let limit = limit.clamp(1, MAX_PAGE);
        let start = match since {
            None => 0,
            Some(t) => {
                let (mut lo, mut hi) = (0u32, self.len);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.get(mid).at <= t {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        };
        let end = (start as usize + limit).min(self.len as usize) as u32;
        let snapshots: Vec<ReserveSnapshot> = (start..end).map(|i| self.get(i)).collect();
        let next = if end < self.len {
            snapshots.last().map(|s| s.at)
        } else {
            None
        };
        ReserveHistoryPage {
            snapshots,
            next,
            capacity: self.capacity,
            interval_seconds,
        }
    }

    /// Records the factory's reserve at `now` if it differs from the newest snapshot (or
    /// there is none). `liquid` is asked only then. Returns what was written.
    pub fn observe<F: StableMemory>(
        &mut self,
        factory: &Factory<F>,
        liquid: impl FnOnce() -> u128,
        now: u64,
    ) -> Option<Written> {
        let reserve = factory.reserve();
        if self.newest.is_some_and(|n| n.reserve == reserve) {
            return None;
        }
        let snap = factory.reserve_snapshot(liquid(), now);
        let interval_ns = factory
            .config()
            .reserve_history_interval_seconds()
            .saturating_mul(1_000_000_000);
        Some(self.record(snap, interval_ns))
    }

    fn offset(slot: u32) -> u64 {
        HEADER_BYTES + u64::from(slot) * ENTRY_BYTES
    }

    fn write_slot(&mut self, slot: u32, snap: &ReserveSnapshot) {
        let at = Self::offset(slot);
        self.ensure_size(at + ENTRY_BYTES);
        self.memory.write(at, &snap.encode());
    }

    fn write_header(&mut self) {
        let mut h = [0u8; HEADER_BYTES as usize];
        h[..4].copy_from_slice(&MAGIC);
        for (i, v) in [
            LAYOUT_VERSION,
            self.capacity,
            ENTRY_BYTES as u32,
            self.len,
            self.next,
        ]
        .iter()
        .enumerate()
        {
            h[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        self.memory.write(0, &h);
    }

    fn ensure_size(&mut self, bytes: u64) {
        let have = self.memory.size() * WASM_PAGE;
        if bytes > have {
            let pages = (bytes - have).div_ceil(WASM_PAGE);
            assert!(
                self.memory.grow(pages) >= 0,
                "stable memory is full: the reserve history cannot grow"
            );
        }
    }
}
