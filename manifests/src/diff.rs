//! [`diff`]: what differs between two manifests, leaf by leaf, down to chunk indices.

use crate::model::{
    BlobLeaf, BlobRefLeaf, CapsuleLeaf, ConnectionLeaf, Manifest, MemoryLeaf, Section,
};
use blobstore::hash::{Hash, to_hex};
use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One field that differs, with both values rendered as short text.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub a: String,
    pub b: String,
}

/// One difference between manifest A and manifest B.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The manifest roots differ (always reported first when anything differs).
    Root {
        #[serde(with = "crate::serde_hex::hash")]
        a: Hash,
        #[serde(with = "crate::serde_hex::hash")]
        b: Hash,
    },
    /// A section root differs.
    SectionRoot {
        section: Section,
        #[serde(with = "crate::serde_hex::hash")]
        a: Hash,
        #[serde(with = "crate::serde_hex::hash")]
        b: Hash,
    },
    /// The header's encoding version differs.
    Version {
        a: u32,
        b: u32,
    },
    /// Capsule metadata fields differ (owner included).
    Capsule {
        changes: Vec<FieldChange>,
    },
    ConnectionAdded {
        peer: Principal,
    },
    ConnectionRemoved {
        peer: Principal,
    },
    ConnectionChanged {
        peer: Principal,
        changes: Vec<FieldChange>,
    },
    MemoryAdded {
        id: u64,
        title: String,
    },
    MemoryRemoved {
        id: u64,
        title: String,
    },
    /// Metadata of a memory present in both (title, tags, ..., a blob's MIME type).
    MemoryMetadataChanged {
        id: u64,
        changes: Vec<FieldChange>,
    },
    /// The blob in slot `index` of a memory present in both is another blob (or the slot was
    /// added or removed). `chunks` lists the chunk indices whose hashes differ when both
    /// blobs' leaves are known; chunks present on one side only count as differing.
    MemoryBlobChanged {
        id: u64,
        index: u64,
        a: Option<BlobRefLeaf>,
        b: Option<BlobRefLeaf>,
        chunks: Option<ChunkDiff>,
    },
    BlobAdded {
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
        size: u64,
        chunks: u64,
    },
    BlobRemoved {
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
        size: u64,
        chunks: u64,
    },
    /// A blob with the same hash but other size or chunk hashes (only in a manifest that does
    /// not verify).
    BlobChunksDiffer {
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
        size_a: u64,
        size_b: u64,
        chunks: ChunkDiff,
    },
}

/// Which chunks of two blobs differ.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkDiff {
    pub chunks_a: u64,
    pub chunks_b: u64,
    /// Indices whose chunk hash differs or exists on one side only.
    pub differing: Vec<u64>,
}

/// Compares the chunk hashes of two blobs.
pub fn chunk_diff(a: &[Hash], b: &[Hash]) -> ChunkDiff {
    let n = a.len().max(b.len());
    ChunkDiff {
        chunks_a: a.len() as u64,
        chunks_b: b.len() as u64,
        differing: (0..n)
            .filter(|&i| a.get(i) != b.get(i))
            .map(|i| i as u64)
            .collect(),
    }
}

/// Lists the differences between manifest `a` and manifest `b`; empty when they are equal.
///
/// Order: root and section roots, version, capsule, connections (by peer), memories (by id),
/// blobs (by hash). Works on any two manifests, verified or not.
pub fn diff(a: &Manifest, b: &Manifest) -> Vec<Difference> {
    let mut out = Vec::new();
    let (ha, hb) = (&a.header, &b.header);
    if ha.root != hb.root {
        out.push(Difference::Root {
            a: ha.root,
            b: hb.root,
        });
    }
    for section in Section::ALL {
        let (ra, rb) = (ha.section_root(section), hb.section_root(section));
        if ra != rb {
            out.push(Difference::SectionRoot {
                section,
                a: ra,
                b: rb,
            });
        }
    }
    if ha.version != hb.version {
        out.push(Difference::Version {
            a: ha.version,
            b: hb.version,
        });
    }
    let changes = capsule_changes(&a.capsule, &b.capsule);
    if !changes.is_empty() {
        out.push(Difference::Capsule { changes });
    }
    diff_connections(a, b, &mut out);
    diff_memories(a, b, &mut out);
    diff_blobs(a, b, &mut out);
    out
}

struct Changes(Vec<FieldChange>);

impl Changes {
    fn field<T: PartialEq + fmt::Debug>(&mut self, field: &str, a: &T, b: &T) {
        if a != b {
            self.0.push(FieldChange {
                field: field.to_string(),
                a: short(a),
                b: short(b),
            });
        }
    }
}

/// Debug text of a value, cut to 80 characters.
fn short<T: fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.chars().count() <= 80 {
        s
    } else {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    }
}

fn capsule_changes(a: &CapsuleLeaf, b: &CapsuleLeaf) -> Vec<FieldChange> {
    let mut c = Changes(Vec::new());
    if a.owner != b.owner {
        c.0.push(FieldChange {
            field: "owner".into(),
            a: a.owner.to_text(),
            b: b.owner.to_text(),
        });
    }
    c.field("name", &a.name, &b.name);
    c.field("bio", &a.bio, &b.bio);
    c.field("created_at", &a.created_at, &b.created_at);
    c.field("updated_at", &a.updated_at, &b.updated_at);
    c.field(
        "settings.public_profile",
        &a.settings.public_profile,
        &b.settings.public_profile,
    );
    c.field("settings.locale", &a.settings.locale, &b.settings.locale);
    c.0
}

/// Principal key in canonical connection order.
fn peer_key(p: &Principal) -> (usize, Vec<u8>) {
    (p.as_slice().len(), p.as_slice().to_vec())
}

fn diff_connections(a: &Manifest, b: &Manifest, out: &mut Vec<Difference>) {
    let index = |m: &Manifest| -> BTreeMap<(usize, Vec<u8>), ConnectionLeaf> {
        m.connections
            .iter()
            .map(|c| (peer_key(&c.peer), c.clone()))
            .collect()
    };
    let (ia, ib) = (index(a), index(b));
    let keys: std::collections::BTreeSet<_> = ia.keys().chain(ib.keys()).cloned().collect();
    for key in keys {
        match (ia.get(&key), ib.get(&key)) {
            (Some(x), None) => out.push(Difference::ConnectionRemoved { peer: x.peer }),
            (None, Some(y)) => out.push(Difference::ConnectionAdded { peer: y.peer }),
            (Some(x), Some(y)) => {
                let mut c = Changes(Vec::new());
                c.field("relationship", &x.relationship, &y.relationship);
                c.field("status", &x.status, &y.status);
                c.field("created_at", &x.created_at, &y.created_at);
                c.field("updated_at", &x.updated_at, &y.updated_at);
                if !c.0.is_empty() {
                    out.push(Difference::ConnectionChanged {
                        peer: x.peer,
                        changes: c.0,
                    });
                }
            }
            (None, None) => unreachable!("key comes from one of the maps"),
        }
    }
}

fn memory_changes(x: &MemoryLeaf, y: &MemoryLeaf) -> Vec<FieldChange> {
    let mut c = Changes(Vec::new());
    c.field("title", &x.title, &y.title);
    c.field("description", &x.description, &y.description);
    c.field("tags", &x.tags, &y.tags);
    c.field("kind", &x.kind, &y.kind);
    c.field("created_at", &x.created_at, &y.created_at);
    c.field("updated_at", &x.updated_at, &y.updated_at);
    c.field(
        "encryption.scheme",
        &x.encryption.as_ref().map(|e| &e.scheme),
        &y.encryption.as_ref().map(|e| &e.scheme),
    );
    let key_hex = |m: &MemoryLeaf| {
        m.encryption
            .as_ref()
            .map(|e| crate::serde_hex::bytes_to_hex(&e.wrapped_key))
    };
    c.field("encryption.wrapped_key", &key_hex(x), &key_hex(y));
    for (i, (bx, by)) in x.blobs.iter().zip(&y.blobs).enumerate() {
        if bx.hash == by.hash {
            c.field(
                &format!("blobs[{i}].mime_type"),
                &bx.mime_type,
                &by.mime_type,
            );
            c.field(&format!("blobs[{i}].size"), &bx.size, &by.size);
        }
    }
    c.0
}

fn diff_memories(a: &Manifest, b: &Manifest, out: &mut Vec<Difference>) {
    let index = |m: &Manifest| -> BTreeMap<u64, MemoryLeaf> {
        m.memories.iter().map(|x| (x.id, x.clone())).collect()
    };
    let blobs = |m: &Manifest| -> BTreeMap<Hash, BlobLeaf> {
        m.blobs.iter().map(|x| (x.hash, x.clone())).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let (ba, bb) = (blobs(a), blobs(b));
    let keys: std::collections::BTreeSet<u64> = ia.keys().chain(ib.keys()).copied().collect();
    for id in keys {
        match (ia.get(&id), ib.get(&id)) {
            (Some(x), None) => out.push(Difference::MemoryRemoved {
                id,
                title: x.title.clone(),
            }),
            (None, Some(y)) => out.push(Difference::MemoryAdded {
                id,
                title: y.title.clone(),
            }),
            (Some(x), Some(y)) => {
                let changes = memory_changes(x, y);
                if !changes.is_empty() {
                    out.push(Difference::MemoryMetadataChanged { id, changes });
                }
                let slots = x.blobs.len().max(y.blobs.len());
                for i in 0..slots {
                    let (rx, ry) = (x.blobs.get(i), y.blobs.get(i));
                    if rx.map(|r| r.hash) == ry.map(|r| r.hash) {
                        continue;
                    }
                    let chunks = match (
                        rx.and_then(|r| ba.get(&r.hash)),
                        ry.and_then(|r| bb.get(&r.hash)),
                    ) {
                        (Some(lx), Some(ly)) => {
                            Some(chunk_diff(&lx.chunk_hashes, &ly.chunk_hashes))
                        }
                        _ => None,
                    };
                    out.push(Difference::MemoryBlobChanged {
                        id,
                        index: i as u64,
                        a: rx.cloned(),
                        b: ry.cloned(),
                        chunks,
                    });
                }
            }
            (None, None) => unreachable!("key comes from one of the maps"),
        }
    }
}

fn diff_blobs(a: &Manifest, b: &Manifest, out: &mut Vec<Difference>) {
    let index = |m: &Manifest| -> BTreeMap<Hash, BlobLeaf> {
        m.blobs.iter().map(|x| (x.hash, x.clone())).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let keys: std::collections::BTreeSet<Hash> = ia.keys().chain(ib.keys()).copied().collect();
    for hash in keys {
        match (ia.get(&hash), ib.get(&hash)) {
            (Some(x), None) => out.push(Difference::BlobRemoved {
                hash,
                size: x.size,
                chunks: x.chunk_hashes.len() as u64,
            }),
            (None, Some(y)) => out.push(Difference::BlobAdded {
                hash,
                size: y.size,
                chunks: y.chunk_hashes.len() as u64,
            }),
            (Some(x), Some(y)) => {
                if x != y {
                    out.push(Difference::BlobChunksDiffer {
                        hash,
                        size_a: x.size,
                        size_b: y.size,
                        chunks: chunk_diff(&x.chunk_hashes, &y.chunk_hashes),
                    });
                }
            }
            (None, None) => unreachable!("key comes from one of the maps"),
        }
    }
}

/// `0-3, 7, 9-10` for a sorted list of indices.
pub fn ranges(indices: &[u64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

fn changes_text(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.field, c.a, c.b))
        .collect::<Vec<_>>()
        .join("; ")
}

fn blob_ref_text(r: &Option<BlobRefLeaf>) -> String {
    match r {
        Some(r) => format!("{} ({} bytes, {})", to_hex(&r.hash), r.size, r.mime_type),
        None => "none".into(),
    }
}

impl fmt::Display for ChunkDiff {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} of {}/{} chunks differ",
            self.differing.len(),
            self.chunks_a,
            self.chunks_b
        )?;
        if !self.differing.is_empty() {
            write!(f, ": {}", ranges(&self.differing))?;
        }
        Ok(())
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Difference::Root { a, b } => {
                write!(f, "root differs: A {} B {}", to_hex(a), to_hex(b))
            }
            Difference::SectionRoot { section, a, b } => write!(
                f,
                "{section} section root differs: A {} B {}",
                to_hex(a),
                to_hex(b)
            ),
            Difference::Version { a, b } => write!(f, "encoding version differs: A {a} B {b}"),
            Difference::Capsule { changes } => {
                write!(f, "capsule metadata changed: {}", changes_text(changes))
            }
            Difference::ConnectionAdded { peer } => write!(f, "connection added: {peer}"),
            Difference::ConnectionRemoved { peer } => write!(f, "connection removed: {peer}"),
            Difference::ConnectionChanged { peer, changes } => {
                write!(f, "connection {peer} changed: {}", changes_text(changes))
            }
            Difference::MemoryAdded { id, title } => write!(f, "memory {id} added: {title:?}"),
            Difference::MemoryRemoved { id, title } => {
                write!(f, "memory {id} removed: {title:?}")
            }
            Difference::MemoryMetadataChanged { id, changes } => {
                write!(f, "memory {id} metadata changed: {}", changes_text(changes))
            }
            Difference::MemoryBlobChanged {
                id,
                index,
                a,
                b,
                chunks,
            } => {
                write!(
                    f,
                    "memory {id} blob {index} changed: A {} B {}",
                    blob_ref_text(a),
                    blob_ref_text(b)
                )?;
                if let Some(c) = chunks {
                    write!(f, "; {c}")?;
                }
                Ok(())
            }
            Difference::BlobAdded { hash, size, chunks } => write!(
                f,
                "blob added: {} ({size} bytes, {chunks} chunks)",
                to_hex(hash)
            ),
            Difference::BlobRemoved { hash, size, chunks } => write!(
                f,
                "blob removed: {} ({size} bytes, {chunks} chunks)",
                to_hex(hash)
            ),
            Difference::BlobChunksDiffer {
                hash,
                size_a,
                size_b,
                chunks,
            } => write!(
                f,
                "blob {} content differs: A {size_a} bytes, B {size_b} bytes; {chunks}",
                to_hex(hash)
            ),
        }
    }
}
