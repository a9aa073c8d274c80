//! The capsule archive: everything of one capsule in one tar file, verifiable offline.
//!
//! ## Format (version 1)
//!
//! A POSIX ustar archive (as written by the `tar` crate's `Builder`, or any ustar writer:
//! regular files only, mode 0644, mtime 0, uid/gid 0, names as below, no directories needed)
//! holding these entries, in this order:
//!
//! | entry | content |
//! |---|---|
//! | `capsule-archive.json` | `{"format":"capsule-archive","version":1,"root":"<64 hex>"}` |
//! | `manifest.json` | the whole manifest, exactly the JSON `manifest show --json` writes ([`Manifest`]: `header`, `capsule`, `connections`, `memories`, `blobs`) |
//! | `capsule.json` | the capsule: the manifest's `capsule` object |
//! | `memories.json` | the memories: the manifest's `memories` array (ordered by `id`) |
//! | `connections.json` | the connections: the manifest's `connections` array (ordered by peer) |
//! | `blobs/<64 hex>` | one file per blob, its bytes; the name is the blob's BLAKE3 hash in lower-case hex, what `b3sum` prints for the file |
//!
//! JSON conventions (those of [`Manifest`]'s serde form): hashes and byte strings are
//! lower-case hex strings, principals their textual form, `u64` numbers plain JSON numbers
//! (a writer in JavaScript must write them from `bigint` without losing precision), optional
//! values `null`. Readers ignore entries they do not know.
//!
//! ## Verification ([`verify`])
//!
//! Every blob file is hashed (streamed: BLAKE3 with its 256 KiB chunk hashes, so its name must
//! equal `b3sum`'s output for it); `capsule.json`, `memories.json` and `connections.json` must
//! equal the manifest's leaves; the root is recomputed from those JSON files and the blob files
//! and must equal the manifest's header root. Every entry that differs is named.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use blobstore::hash::{StreamHasher, from_hex, to_hex};
use serde::{Deserialize, Serialize};

use crate::{BlobLeaf, CapsuleLeaf, ConnectionLeaf, Hash, Manifest, MemoryLeaf};

pub const FORMAT: &str = "capsule-archive";
pub const VERSION: u32 = 1;
pub const INDEX_ENTRY: &str = "capsule-archive.json";
pub const MANIFEST_ENTRY: &str = "manifest.json";
pub const CAPSULE_ENTRY: &str = "capsule.json";
pub const MEMORIES_ENTRY: &str = "memories.json";
pub const CONNECTIONS_ENTRY: &str = "connections.json";
pub const BLOB_PREFIX: &str = "blobs/";

/// The first entry: what the archive is, and the root it holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub format: String,
    pub version: u32,
    pub root: String,
}

/// Why an archive could not be written or read at all.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{entry}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("the manifest does not verify: {0}")]
    Manifest(#[from] crate::ManifestError),
}

fn entry_err(entry: &str, reason: impl ToString) -> ArchiveError {
    ArchiveError::Entry {
        entry: entry.into(),
        reason: reason.to_string(),
    }
}

fn append(
    builder: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)
}

fn append_json(
    builder: &mut tar::Builder<impl Write>,
    name: &str,
    value: &impl Serialize,
) -> Result<(), ArchiveError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| entry_err(name, e))?;
    append(builder, name, bytes.len() as u64, &bytes[..])?;
    Ok(())
}

/// Writes the archive of `manifest` (verified first) to `out`. `blob` opens a blob's bytes by
/// its leaf; exactly `leaf.size` bytes are read from it.
pub fn write<W: Write, R: Read>(
    out: W,
    manifest: &Manifest,
    mut blob: impl FnMut(&BlobLeaf) -> io::Result<R>,
) -> Result<W, ArchiveError> {
    manifest.verify()?;
    let mut builder = tar::Builder::new(out);
    let index = Index {
        format: FORMAT.into(),
        version: VERSION,
        root: to_hex(&manifest.header.root),
    };
    append_json(&mut builder, INDEX_ENTRY, &index)?;
    append_json(&mut builder, MANIFEST_ENTRY, manifest)?;
    append_json(&mut builder, CAPSULE_ENTRY, &manifest.capsule)?;
    append_json(&mut builder, MEMORIES_ENTRY, &manifest.memories)?;
    append_json(&mut builder, CONNECTIONS_ENTRY, &manifest.connections)?;
    for leaf in &manifest.blobs {
        let name = format!("{BLOB_PREFIX}{}", to_hex(&leaf.hash));
        let reader = blob(leaf)?.take(leaf.size);
        append(&mut builder, &name, leaf.size, reader)?;
    }
    Ok(builder.into_inner()?)
}

/// An archive read whole: its manifest, its JSON files and its blobs.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    pub manifest: Option<Manifest>,
    pub capsule: Option<CapsuleLeaf>,
    pub memories: Option<Vec<MemoryLeaf>>,
    pub connections: Option<Vec<ConnectionLeaf>>,
    /// Blob files by their name's hash (bytes kept only by [`read`]).
    pub blobs: BTreeMap<String, Vec<u8>>,
}

/// One entry that differs from what the manifest says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub entry: String,
    pub reason: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The manifest's root.
    pub root: Hash,
    /// The root recomputed from the JSON files and the blob files (`None` when they do not
    /// form a manifest, e.g. a JSON file does not parse).
    pub recomputed_root: Option<Hash>,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub differences: Vec<Difference>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.differences.is_empty() && self.recomputed_root == Some(self.root)
    }
}

fn parse<T: for<'a> Deserialize<'a>>(entry: &str, bytes: &[u8]) -> Result<T, Difference> {
    serde_json::from_slice(bytes).map_err(|e| Difference {
        entry: entry.into(),
        reason: format!("does not parse: {e}"),
    })
}

/// Reads an archive and keeps every blob's bytes (for importing it).
pub fn read(input: impl Read) -> Result<Contents, ArchiveError> {
    let mut contents = Contents::default();
    scan(input, &mut contents, |_, _| (), true)?;
    Ok(contents)
}

/// Walks the entries: JSON entries are parsed into `contents`, blob entries are streamed
/// through a hasher and handed to `on_blob` with their name's hex (and kept when `keep`).
fn scan(
    input: impl Read,
    contents: &mut Contents,
    mut on_blob: impl FnMut(&str, (Hash, Vec<Hash>, u64)),
    keep: bool,
) -> Result<Vec<Difference>, ArchiveError> {
    let mut differences = vec![];
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if let Some(hex) = name.strip_prefix(BLOB_PREFIX) {
            let mut hasher = StreamHasher::new();
            let mut kept = vec![];
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                if keep {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            on_blob(hex, hasher.finalize());
            contents.blobs.insert(hex.to_string(), kept);
            continue;
        }
        let mut bytes = vec![];
        entry.read_to_end(&mut bytes)?;
        let parsed = match name.as_str() {
            MANIFEST_ENTRY => parse(&name, &bytes).map(|m| contents.manifest = Some(m)),
            CAPSULE_ENTRY => parse(&name, &bytes).map(|c| contents.capsule = Some(c)),
            MEMORIES_ENTRY => parse(&name, &bytes).map(|m| contents.memories = Some(m)),
            CONNECTIONS_ENTRY => parse(&name, &bytes).map(|c| contents.connections = Some(c)),
            INDEX_ENTRY => parse::<Index>(&name, &bytes).and_then(|i| {
                if i.format == FORMAT && i.version == VERSION {
                    Ok(())
                } else {
                    Err(Difference {
                        entry: name.clone(),
                        reason: format!(
                            "format {} version {} is not {FORMAT} {VERSION}",
                            i.format, i.version
                        ),
                    })
                }
            }),
            _ => Ok(()),
        };
        if let Err(d) = parsed {
            differences.push(d);
        }
    }
    Ok(differences)
}

/// Verifies an archive (see the module doc): returns the report, with every entry that
/// differs named. Fails only when the archive cannot be read or holds no manifest.
pub fn verify(input: impl Read) -> Result<Report, ArchiveError> {
    let mut contents = Contents::default();
    let mut hashed: BTreeMap<String, (Hash, Vec<Hash>, u64)> = BTreeMap::new();
    let mut differences = scan(
        input,
        &mut contents,
        |hex, h| {
            hashed.insert(hex.to_string(), h);
        },
        false,
    )?;
    let manifest = contents
        .manifest
        .clone()
        .ok_or_else(|| entry_err(MANIFEST_ENTRY, "missing"))?;
    if let Err(e) = manifest.verify() {
        differences.push(Difference {
            entry: MANIFEST_ENTRY.into(),
            reason: format!("does not verify: {e}"),
        });
    }
    let mut differ = |entry: &str, reason: String| {
        differences.push(Difference {
            entry: entry.into(),
            reason,
        })
    };
    match &contents.capsule {
        None => differ(CAPSULE_ENTRY, "missing".into()),
        Some(c) if *c != manifest.capsule => {
            differ(CAPSULE_ENTRY, "differs from the manifest's capsule".into())
        }
        Some(_) => {}
    }
    match &contents.memories {
        None => differ(MEMORIES_ENTRY, "missing".into()),
        Some(m) => {
            let theirs: BTreeMap<u64, &MemoryLeaf> =
                manifest.memories.iter().map(|l| (l.id, l)).collect();
            let ours: BTreeMap<u64, &MemoryLeaf> = m.iter().map(|l| (l.id, l)).collect();
            for id in theirs.keys().chain(ours.keys()).collect::<BTreeSet<_>>() {
                if theirs.get(id) != ours.get(id) {
                    differ(
                        MEMORIES_ENTRY,
                        format!("memory {id} differs from the manifest's"),
                    );
                }
            }
        }
    }
    match &contents.connections {
        None => differ(CONNECTIONS_ENTRY, "missing".into()),
        Some(c) => {
            let theirs: BTreeMap<String, &ConnectionLeaf> = manifest
                .connections
                .iter()
                .map(|l| (l.peer.to_text(), l))
                .collect();
            let ours: BTreeMap<String, &ConnectionLeaf> =
                c.iter().map(|l| (l.peer.to_text(), l)).collect();
            for peer in theirs.keys().chain(ours.keys()).collect::<BTreeSet<_>>() {
                if theirs.get(peer) != ours.get(peer) {
                    differ(
                        CONNECTIONS_ENTRY,
                        format!("the connection with {peer} differs from the manifest's"),
                    );
                }
            }
        }
    }
    // Blobs: each file's content against its name and the manifest's leaf.
    let leaves: BTreeMap<Hash, &BlobLeaf> = manifest.blobs.iter().map(|b| (b.hash, b)).collect();
    let mut found: Vec<BlobLeaf> = vec![];
    let mut blob_bytes = 0u64;
    for (hex, (hash, chunks, size)) in &hashed {
        let entry = format!("{BLOB_PREFIX}{hex}");
        blob_bytes += size;
        found.push(BlobLeaf {
            hash: *hash,
            size: *size,
            chunk_hashes: chunks.clone(),
        });
        match from_hex(hex) {
            Some(named) if named == *hash => {}
            _ => {
                differ(&entry, format!("its content hashes to {}", to_hex(hash)));
                continue;
            }
        }
        match leaves.get(hash) {
            None => differ(&entry, "is not in the manifest".into()),
            Some(l) if l.size != *size || l.chunk_hashes != *chunks => differ(
                &entry,
                "its size or chunk hashes differ from the manifest's".into(),
            ),
            Some(_) => {}
        }
    }
    for hash in leaves.keys() {
        if !hashed.contains_key(&to_hex(hash)) {
            differ(&format!("{BLOB_PREFIX}{}", to_hex(hash)), "missing".into());
        }
    }
    let recomputed_root = match (&contents.capsule, &contents.memories, &contents.connections) {
        (Some(c), Some(m), Some(cn)) => {
            Manifest::from_leaves(c.clone(), cn.clone(), m.clone(), found.clone())
                .ok()
                .map(|m| m.header.root)
        }
        _ => None,
    };
    if recomputed_root != Some(manifest.header.root) {
        differ(
            "root",
            format!(
                "recomputed from the files: {}; the manifest says {}",
                recomputed_root.map_or_else(|| "none".into(), |r| to_hex(&r)),
                to_hex(&manifest.header.root)
            ),
        );
    }
    Ok(Report {
        root: manifest.header.root,
        recomputed_root,
        blobs: hashed.len() as u64,
        blob_bytes,
        differences,
    })
}
