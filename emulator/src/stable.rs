//! Stable memory: sparse 4 KiB pages with a per-message journal of first writes.
//!
//! A message that writes N pages copies N pages into the journal; rollback restores those pages,
//! commit drops the journal. Holding a GiB costs nothing per message.

use std::collections::HashMap;

/// Tracking granularity (the replica's OS page).
pub const PAGE: usize = 4096;
/// Wasm page size (the unit of `stable64_size` / `stable64_grow`).
pub const WASM_PAGE: u64 = 65536;

type Page = Box<[u8; PAGE]>;

/// A canister's stable memory with rollback.
#[derive(Default, Clone)]
pub struct StableMemory {
    pages: HashMap<u64, Page>,
    size: u64,
    /// First-write images of this message: `None` = page did not exist.
    journal: HashMap<u64, Option<Page>>,
    size_before: u64,
    /// Pages written since the last [`mark_saved`](Self::mark_saved).
    unsaved: std::collections::BTreeSet<u64>,
    /// Whether a saved copy exists (else everything is unsaved).
    saved_base: bool,
}

impl StableMemory {
    /// Size in wasm pages.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Grows by `n` wasm pages up to `max_pages`; returns the old size or `None`.
    pub fn grow(&mut self, n: u64, max_pages: u64) -> Option<u64> {
        let old = self.size;
        let new = old.checked_add(n)?;
        if new > max_pages {
            return None;
        }
        self.size = new;
        Some(old)
    }

    fn in_bounds(&self, offset: u64, len: u64) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.size * WASM_PAGE)
    }

    /// Reads `buf.len()` bytes at `offset`; `false` when out of bounds.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        if !self.in_bounds(offset, buf.len() as u64) {
            return false;
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (page, within) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let n = (PAGE - within).min(buf.len() - done);
            match self.pages.get(&page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        true
    }

    /// Writes `data` at `offset`; returns the number of pages this message dirtied for the
    /// first time, or `None` when out of bounds.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Option<u64> {
        if !self.in_bounds(offset, data.len() as u64) {
            return None;
        }
        let mut newly = 0;
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let (page, within) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let n = (PAGE - within).min(data.len() - done);
            if !self.journal.contains_key(&page) {
                newly += 1;
                if self.saved_base {
                    self.unsaved.insert(page);
                }
                let old = self.pages.get(&page).cloned();
                self.journal.insert(page, old);
            }
            let p = self
                .pages
                .entry(page)
                .or_insert_with(|| Box::new([0u8; PAGE]));
            p[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Some(newly)
    }

    /// Pages dirtied by the current message.
    pub fn dirty_pages(&self) -> u64 {
        self.journal.len() as u64
    }

    /// Starts a message.
    pub fn begin(&mut self) {
        self.journal.clear();
        self.size_before = self.size;
    }

    /// Keeps the current message's writes.
    pub fn commit(&mut self) {
        self.journal.clear();
        self.size_before = self.size;
    }

    /// Undoes the current message's writes and growth.
    pub fn rollback(&mut self) {
        for (page, old) in self.journal.drain() {
            match old {
                Some(p) => {
                    self.pages.insert(page, p);
                }
                None => {
                    self.pages.remove(&page);
                }
            }
        }
        self.size = self.size_before;
    }

    /// The whole stable memory as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; (self.size * WASM_PAGE) as usize];
        for (page, p) in &self.pages {
            let start = *page as usize * PAGE;
            if start < out.len() {
                let end = (start + PAGE).min(out.len());
                out[start..end].copy_from_slice(&p[..end - start]);
            }
        }
        out
    }

    /// Pages (4 KiB) written since the last save, or `None` when everything must be written.
    pub fn unsaved_pages(&self) -> Option<Vec<u64>> {
        self.saved_base
            .then(|| self.unsaved.iter().copied().collect())
    }

    /// Records that the contents have been saved.
    pub fn mark_saved(&mut self) {
        self.unsaved.clear();
        self.saved_base = true;
    }

    /// The stored (possibly non-zero) pages, in index order.
    pub fn stored_pages(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.pages.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// One 4 KiB page (zeros if never written).
    pub fn page(&self, index: u64) -> [u8; PAGE] {
        self.pages.get(&index).map(|p| **p).unwrap_or([0u8; PAGE])
    }

    /// Rebuilds a saved stable memory: `size` wasm pages and the given 4 KiB pages. It counts
    /// as saved.
    pub fn restore(size: u64, pages: impl IntoIterator<Item = (u64, [u8; PAGE])>) -> Self {
        let mut s = Self {
            size,
            size_before: size,
            saved_base: true,
            ..Default::default()
        };
        for (i, p) in pages {
            if p.iter().any(|b| *b != 0) {
                s.pages.insert(i, Box::new(p));
            } else {
                s.pages.remove(&i);
            }
        }
        s
    }

    /// Replaces the contents (growing to fit `bytes`).
    pub fn set_bytes(&mut self, bytes: &[u8]) {
        self.saved_base = false;
        self.unsaved.clear();
        self.pages.clear();
        self.journal.clear();
        self.size = (bytes.len() as u64).div_ceil(WASM_PAGE);
        for (i, chunk) in bytes.chunks(PAGE).enumerate() {
            if chunk.iter().any(|b| *b != 0) {
                let mut p = Box::new([0u8; PAGE]);
                p[..chunk.len()].copy_from_slice(chunk);
                self.pages.insert(i as u64, p);
            }
        }
        self.size_before = self.size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_pages_and_size() {
        let mut s = StableMemory::default();
        s.begin();
        s.grow(1, 100).unwrap();
        s.write(10, b"hello").unwrap();
        s.commit();
        s.begin();
        s.grow(2, 100).unwrap();
        assert_eq!(s.write(10, b"HELLO").unwrap(), 1);
        assert_eq!(s.write(70000, b"x").unwrap(), 1);
        s.rollback();
        let mut buf = [0u8; 5];
        assert!(s.read(10, &mut buf));
        assert_eq!(&buf, b"hello");
        assert_eq!(s.size(), 1);
        assert!(!s.read(65535, &mut [0u8; 2]));
    }

    #[test]
    fn a_gib_of_stable_memory_journals_only_what_a_message_touches() {
        let mut s = StableMemory::default();
        s.begin();
        s.grow(16 * 1024, 1 << 20).unwrap(); // 1 GiB
        s.write((1 << 30) - 8, b"tail!!!!").unwrap();
        s.commit();
        s.begin();
        s.write(0, &[1u8; 3 * PAGE]).unwrap();
        assert_eq!(s.dirty_pages(), 3);
        s.rollback();
        let mut b = [9u8; 8];
        assert!(s.read(0, &mut b));
        assert_eq!(b, [0u8; 8]);
        assert!(s.read((1 << 30) - 8, &mut b));
        assert_eq!(&b, b"tail!!!!");
        assert_eq!(s.pages.len(), 1, "sparse: one page stored for a GiB");
    }
}
