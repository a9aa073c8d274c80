//! Model-based property test: random sequences of uploads, imports, puts (right, corrupt,
//! short, by strangers), finishes, aborts, references, reads, expiry under a budget and
//! reopenings (upgrades, some changing the TTL), run against the store and against a plain
//! in-memory model. Every result, every read, the statistics, the per-owner totals and the
//! next expiry time must agree after each step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use blobstore::hash::{self, to_hex};
use blobstore::{
    BlobError, BlobInfo, BlobStore, CHUNK_SIZE, Hash, Limits, Memories, OwnerUploads, UploadId,
};
use ic_stable_structures::VectorMemory;
use proptest::prelude::*;
use test_support::blobs::memories;
use test_support::bytes::noise;

const CS: usize = CHUNK_SIZE;
const OWNERS: [&[u8]; 3] = [b"alice", b"bob", b"carol"];
const STRANGER: &[u8] = b"mallory";
/// Plain uploads expire this long after they began (ticks advance 1..200 ns).
const TTL: u64 = 300;

fn limits() -> Limits {
    Limits {
        max_blob_size: 600_000,
        max_open_uploads: 5,
        max_open_uploads_per_owner: 3,
        max_read_len: 300_000,
        upload_ttl_ns: TTL,
    }
}

/// A blob the test can upload, with its hashes computed once.
struct Content {
    bytes: Vec<u8>,
    hash: Hash,
    chunks: Vec<Hash>,
}

/// Blobs chosen to share chunks: the same 256 KiB at offset 0 of several blobs, the same bytes
/// at another offset, a whole single-chunk blob equal to another's first chunk, and one blob
/// over the size limit.
fn pool() -> &'static [Content] {
    static POOL: OnceLock<Vec<Content>> = OnceLock::new();
    POOL.get_or_init(|| {
        let x = noise(CS, 100);
        let y = noise(CS, 101);
        let contents = vec![
            vec![],
            vec![7],
            noise(1000, 102),
            [x.as_slice(), b"a"].concat(),
            [x.as_slice(), b"bb"].concat(),
            y.clone(),
            x.clone(),
            [x.as_slice(), x.as_slice()].concat(),
            [x.as_slice(), y.as_slice(), b"tail"].concat(),
            noise(600_001, 103),
        ];
        contents
            .into_iter()
            .map(|bytes| {
                let (hash, chunks) = hash::blob_hashes(&bytes);
                Content {
                    bytes,
                    hash,
                    chunks,
                }
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Op {
    Begin {
        content: usize,
        owner: usize,
        expected: bool,
        import: bool,
    },
    Put {
        session: usize,
        index: usize,
        corrupt: bool,
        short: bool,
        stranger: bool,
        verified: bool,
    },
    /// Puts every missing chunk of a session, correctly, as `put_chunk`.
    Complete {
        session: usize,
    },
    Finish {
        session: usize,
        stranger: bool,
    },
    Abort {
        session: usize,
    },
    AddRef {
        blob: usize,
    },
    Release {
        blob: usize,
    },
    Read {
        blob: usize,
        offset: u64,
        len: u64,
        wild: bool,
    },
    ReadChunk {
        blob: usize,
        index: usize,
    },
    Expire {
        budget: usize,
    },
    Tick {
        ns: u64,
    },
    /// Reopens the memories (an upgrade), with this TTL from then on.
    Reopen {
        ttl: u64,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..10usize, 0..3usize, any::<bool>(), any::<bool>()).prop_map(
            |(content, owner, expected, import)| Op::Begin { content, owner, expected, import }
        ),
        10 => (0..8usize, 0..4usize, 0..8u8, any::<bool>()).prop_map(
            |(session, index, fault, verified)| Op::Put {
                session,
                index,
                corrupt: fault == 1,
                short: fault == 2,
                stranger: fault == 3,
                verified,
            }
        ),
        3 => (0..8usize).prop_map(|session| Op::Complete { session }),
        5 => (0..8usize, 0..8u8).prop_map(|(session, s)| Op::Finish { session, stranger: s == 0 }),
        1 => (0..8usize).prop_map(|session| Op::Abort { session }),
        2 => (0..12usize).prop_map(|blob| Op::AddRef { blob }),
        3 => (0..12usize).prop_map(|blob| Op::Release { blob }),
        3 => (0..12usize, any::<u64>(), any::<u64>(), 0..6u8).prop_map(|(blob, offset, len, w)| {
            Op::Read { blob, offset, len, wild: w == 0 }
        }),
        2 => (0..12usize, 0..4usize).prop_map(|(blob, index)| Op::ReadChunk { blob, index }),
        1 => prop_oneof![Just(0usize), Just(1), Just(2), Just(100)]
            .prop_map(|budget| Op::Expire { budget }),
        1 => (1..200u64).prop_map(|ns| Op::Tick { ns }),
        1 => prop_oneof![Just(TTL), Just(50), Just(u64::MAX)].prop_map(|ttl| Op::Reopen { ttl }),
    ]
}

struct MSession {
    id: UploadId,
    owner: usize,
    content: usize,
    import: bool,
    expected: bool,
    /// When the session may be expired (never for imports).
    expires: Option<u64>,
    /// Chunks held: index -> (corrupt, chunk hash).
    parts: BTreeMap<u64, (bool, Hash)>,
}

impl MSession {
    fn content(&self) -> &'static Content {
        &pool()[self.content]
    }

    fn chunk_count(&self) -> u64 {
        self.content().chunks.len() as u64
    }

    fn missing(&self) -> Vec<u64> {
        (0..self.chunk_count())
            .filter(|i| !self.parts.contains_key(i))
            .collect()
    }

    fn assembled(&self) -> Vec<u8> {
        let mut bytes = self.content().bytes.clone();
        for (index, (corrupt, _)) in &self.parts {
            if *corrupt {
                bytes[*index as usize * CS] ^= 0xFF;
            }
        }
        bytes
    }
}

struct MBlob {
    bytes: Vec<u8>,
    chunks: Vec<Hash>,
    refs: u64,
}

struct Model {
    blobs: HashMap<Hash, MBlob>,
    sessions: Vec<MSession>,
    ever: Vec<UploadId>,
    next_id: UploadId,
    now: u64,
    /// The TTL the store was last opened with.
    ttl: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            blobs: HashMap::new(),
            sessions: Vec::new(),
            ever: Vec::new(),
            next_id: 0,
            now: 0,
            ttl: TTL,
        }
    }
}

impl Model {
    /// Every stored chunk with its length: blob chunks and session-held chunks.
    fn chunks(&self) -> HashMap<Hash, u64> {
        let mut out = HashMap::new();
        for blob in self.blobs.values() {
            for (i, c) in blob.chunks.iter().enumerate() {
                let len = hash::chunk_len(blob.bytes.len() as u64, i as u64).unwrap_or(0);
                out.insert(*c, len as u64);
            }
        }
        for s in &self.sessions {
            let size = s.content().bytes.len() as u64;
            for (i, (_, c)) in &s.parts {
                out.insert(*c, hash::chunk_len(size, *i).unwrap_or(0) as u64);
            }
        }
        out
    }

    /// Mostly an open session; sometimes any id ever handed out (maybe closed), or none.
    fn session_id(&self, pick: usize) -> UploadId {
        if !self.sessions.is_empty() && pick % 4 != 3 {
            self.sessions[pick % self.sessions.len()].id
        } else if self.ever.is_empty() {
            12_345
        } else {
            self.ever[pick % self.ever.len()]
        }
    }

    fn session_pos(&self, id: UploadId) -> Option<usize> {
        self.sessions.iter().position(|s| s.id == id)
    }

    /// Mostly a stored blob (corrupt uploads make blobs outside the pool); sometimes any of
    /// the pool's or the stored ones, maybe unknown to the store.
    fn blob_hash(&self, pick: usize) -> Hash {
        if !self.blobs.is_empty() && pick % 4 != 3 {
            let mut stored: Vec<Hash> = self.blobs.keys().copied().collect();
            stored.sort();
            return stored[pick % stored.len()];
        }
        let mut all: BTreeSet<Hash> = pool().iter().map(|c| c.hash).collect();
        all.extend(self.blobs.keys().copied());
        let all: Vec<Hash> = all.into_iter().collect();
        all[pick % all.len()]
    }
}

fn info(hash: Hash, b: &MBlob) -> BlobInfo {
    BlobInfo {
        hash,
        size: b.bytes.len() as u64,
        chunk_count: b.chunks.len() as u64,
        refs: b.refs,
    }
}

fn apply(
    store: &mut BlobStore<VectorMemory>,
    mem: &Memories<VectorMemory>,
    model: &mut Model,
    op: &Op,
) {
    let lim = limits();
    match op {
        Op::Begin {
            content,
            owner,
            expected,
            import,
        } => {
            let c = &pool()[*content];
            let size = c.bytes.len() as u64;
            let who = OWNERS[*owner];
            let got = if *import {
                store.begin_import(who, c.hash, size, c.chunks.clone(), model.now)
            } else {
                store.begin_upload(who, size, expected.then_some(c.hash), model.now)
            };
            let mine = model.sessions.iter().filter(|s| s.owner == *owner).count() as u64;
            let want = if size > lim.max_blob_size {
                Err(BlobError::BlobTooLarge {
                    size,
                    max: lim.max_blob_size,
                })
            } else if model.sessions.len() as u64 >= lim.max_open_uploads {
                Err(BlobError::TooManyUploads {
                    max: lim.max_open_uploads,
                })
            } else if mine >= lim.max_open_uploads_per_owner {
                Err(BlobError::TooManyUploadsForOwner {
                    max: lim.max_open_uploads_per_owner,
                })
            } else {
                model.next_id += 1;
                Ok(model.next_id)
            };
            assert_eq!(got, want, "{op:?}");
            if let Ok(id) = want {
                let stored = model.chunks();
                let parts = if *import {
                    c.chunks
                        .iter()
                        .enumerate()
                        .filter(|(_, h)| stored.contains_key(*h))
                        .map(|(i, h)| (i as u64, (false, *h)))
                        .collect()
                } else {
                    BTreeMap::new()
                };
                let expires = (!*import)
                    .then(|| model.now.saturating_add(model.ttl))
                    .filter(|t| *t != u64::MAX);
                model.sessions.push(MSession {
                    id,
                    owner: *owner,
                    content: *content,
                    import: *import,
                    expected: *expected,
                    expires,
                    parts,
                });
                model.ever.push(id);
            }
        }
        Op::Put {
            session,
            index,
            corrupt,
            short,
            stranger,
            verified,
        } => {
            let id = model.session_id(*session);
            let pos = model.session_pos(id);
            let owner = match (pos, stranger) {
                (Some(p), false) => OWNERS[model.sessions[p].owner],
                _ => STRANGER,
            };
            // The bytes: the content's chunk, possibly corrupt or one byte short.
            let (content, count) = match pos {
                Some(p) => (model.sessions[p].content(), model.sessions[p].chunk_count()),
                None => (&pool()[0], 0),
            };
            let index = (*index as u64) % (count + 1);
            let size = content.bytes.len() as u64;
            let mut bytes = match hash::chunk_len(size, index) {
                Some(len) => {
                    let start = index as usize * CS;
                    content.bytes[start..start + len].to_vec()
                }
                None => vec![1, 2, 3],
            };
            if *corrupt {
                bytes[0] ^= 0xFF;
            }
            if *short {
                bytes.pop();
            }
            let got = if *verified {
                store
                    .put_verified_chunk(owner, id, index, &bytes)
                    .map(|()| None)
            } else {
                store.put_chunk(owner, id, index, &bytes).map(Some)
            };
            // Only for bytes of the right length (an empty multi-chunk piece has no hash).
            let actual = || hash::chunk_hash(size, index, &bytes);
            let want = match pos {
                None => Err(BlobError::UnknownUpload { upload: id }),
                Some(_) if *stranger => Err(BlobError::NotUploadOwner { upload: id }),
                Some(p) if *verified && !model.sessions[p].import => {
                    Err(BlobError::NotAnImport { upload: id })
                }
                Some(_) if index >= count => Err(BlobError::ChunkIndexOutOfRange {
                    index,
                    chunk_count: count,
                }),
                Some(_) if *short => Err(BlobError::ChunkSizeMismatch {
                    index,
                    expected: bytes.len() as u64 + 1,
                    actual: bytes.len() as u64,
                }),
                Some(p) if model.sessions[p].import && *corrupt => {
                    Err(BlobError::ChunkHashMismatch {
                        index,
                        expected: to_hex(&model.sessions[p].content().chunks[index as usize]),
                        actual: to_hex(&actual()),
                    })
                }
                Some(p) => {
                    let actual = actual();
                    model.sessions[p].parts.insert(index, (*corrupt, actual));
                    Ok((!*verified).then_some(actual))
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Finish { session, stranger } => {
            let id = model.session_id(*session);
            let pos = model.session_pos(id);
            let owner = match (pos, stranger) {
                (Some(p), false) => OWNERS[model.sessions[p].owner],
                _ => STRANGER,
            };
            let got = store.finish_upload(owner, id);
            let want = match pos {
                None => Err(BlobError::UnknownUpload { upload: id }),
                Some(_) if *stranger => Err(BlobError::NotUploadOwner { upload: id }),
                Some(p) if !model.sessions[p].missing().is_empty() => {
                    Err(BlobError::IncompleteUpload {
                        missing: model.sessions[p].missing().len() as u64,
                    })
                }
                Some(p) => {
                    let s = &model.sessions[p];
                    let bytes = s.assembled();
                    let actual = *blake3::hash(&bytes).as_bytes();
                    if s.expected && !s.import && actual != s.content().hash {
                        Err(BlobError::BlobHashMismatch {
                            expected: to_hex(&s.content().hash),
                            actual: to_hex(&actual),
                        })
                    } else {
                        model.sessions.remove(p);
                        let blob = model.blobs.entry(actual).or_insert_with(|| MBlob {
                            chunks: hash::blob_hashes(&bytes).1,
                            bytes,
                            refs: 0,
                        });
                        blob.refs += 1;
                        Ok(info(actual, blob))
                    }
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Complete { session } => {
            let id = model.session_id(*session);
            let Some(p) = model.session_pos(id) else {
                return;
            };
            let owner = OWNERS[model.sessions[p].owner];
            let content = model.sessions[p].content();
            for index in model.sessions[p].missing() {
                let start = index as usize * CS;
                let end = (start + CS).min(content.bytes.len());
                let got = store.put_chunk(owner, id, index, &content.bytes[start..end]);
                assert_eq!(got, Ok(content.chunks[index as usize]), "{op:?}");
                model.sessions[p]
                    .parts
                    .insert(index, (false, content.chunks[index as usize]));
            }
        }
        Op::Abort { session } => {
            let id = model.session_id(*session);
            let got = match model.session_pos(id) {
                Some(p) => {
                    let owner = OWNERS[model.sessions[p].owner];
                    model.sessions.remove(p);
                    (store.abort_upload(owner, id), Ok(()))
                }
                None => (
                    store.abort_upload(OWNERS[0], id),
                    Err(BlobError::UnknownUpload { upload: id }),
                ),
            };
            assert_eq!(got.0, got.1, "{op:?}");
        }
        Op::AddRef { blob } => {
            let h = model.blob_hash(*blob);
            let want = match model.blobs.get_mut(&h) {
                Some(b) => {
                    b.refs += 1;
                    Ok(b.refs)
                }
                None => Err(BlobError::UnknownBlob { blob: to_hex(&h) }),
            };
            assert_eq!(store.add_ref(&h), want, "{op:?}");
        }
        Op::Release { blob } => {
            let h = model.blob_hash(*blob);
            let want = match model.blobs.get_mut(&h) {
                Some(b) => {
                    b.refs -= 1;
                    let refs = b.refs;
                    if refs == 0 {
                        model.blobs.remove(&h);
                    }
                    Ok(refs)
                }
                None => Err(BlobError::UnknownBlob { blob: to_hex(&h) }),
            };
            assert_eq!(store.release(&h), want, "{op:?}");
        }
        Op::Read {
            blob,
            offset,
            len,
            wild,
        } => {
            let h = model.blob_hash(*blob);
            let size = model.blobs.get(&h).map_or(0, |b| b.bytes.len() as u64);
            let (offset, len) = if *wild {
                (*offset, *len)
            } else {
                let offset = offset % (size + 2);
                (offset, len % (size.saturating_sub(offset) + 2))
            };
            let want = if len > lim.max_read_len {
                Err(BlobError::RangeTooLarge {
                    len,
                    max: lim.max_read_len,
                })
            } else {
                match model.blobs.get(&h) {
                    None => Err(BlobError::UnknownBlob { blob: to_hex(&h) }),
                    Some(b) => match offset.checked_add(len) {
                        Some(end) if end <= size => {
                            Ok(b.bytes[offset as usize..end as usize].to_vec())
                        }
                        _ => Err(BlobError::RangeOutOfBounds { offset, len, size }),
                    },
                }
            };
            assert_eq!(store.read_range(&h, offset, len), want, "{op:?}");
        }
        Op::ReadChunk { blob, index } => {
            let h = model.blob_hash(*blob);
            let want = model
                .blobs
                .get(&h)
                .and_then(|b| b.chunks.get(*index).copied());
            assert_eq!(store.chunk_hash_at(&h, *index as u64), want, "{op:?}");
            if let (Some(c), Some(b)) = (want, model.blobs.get(&h)) {
                let start = index * CS;
                let end = (start + CS).min(b.bytes.len());
                assert_eq!(store.read_chunk(&c).as_deref(), Some(&b.bytes[start..end]));
            }
        }
        Op::Expire { budget } => {
            // The earliest due sessions (by expiry time, then id), at most `budget` of them.
            let now = model.now;
            let mut due: Vec<(u64, UploadId)> = model
                .sessions
                .iter()
                .filter_map(|s| s.expires.filter(|t| *t <= now).map(|t| (t, s.id)))
                .collect();
            due.sort();
            due.truncate(*budget);
            model
                .sessions
                .retain(|s| !due.iter().any(|(_, id)| *id == s.id));
            assert_eq!(store.expire_uploads(now, *budget), due.len(), "{op:?}");
        }
        Op::Tick { ns } => model.now += ns,
        Op::Reopen { ttl } => {
            model.ttl = *ttl;
            let limits = Limits {
                upload_ttl_ns: *ttl,
                ..limits()
            };
            *store = BlobStore::init(mem.clone(), limits);
        }
    }
}

/// Compares everything observable with the model.
fn check(store: &BlobStore<VectorMemory>, model: &Model) {
    let chunks = model.chunks();
    let stats = store.stats();
    assert_eq!(stats.blobs, model.blobs.len() as u64, "blobs");
    assert_eq!(stats.chunks, chunks.len() as u64, "chunks");
    assert_eq!(
        stats.stored_bytes,
        chunks.values().sum::<u64>(),
        "stored bytes"
    );
    let logical: u64 = model
        .blobs
        .values()
        .map(|b| b.bytes.len() as u64 * b.refs)
        .sum();
    assert_eq!(stats.logical_bytes, logical, "logical bytes");
    assert_eq!(
        stats.open_uploads,
        model.sessions.len() as u64,
        "open uploads"
    );
    assert_eq!(
        stats.allocated_slots - stats.free_slots,
        stats.chunks,
        "slots in use"
    );
    for c in chunks.keys() {
        assert!(store.has_chunk(c));
    }
    for (h, b) in &model.blobs {
        assert_eq!(store.blob(h), Some(info(*h, b)));
        assert_eq!(store.blob_chunk_hashes(h).as_ref(), Some(&b.chunks));
    }
    assert_eq!(store.list_blobs(None, usize::MAX).len(), model.blobs.len());
    for s in &model.sessions {
        assert_eq!(
            store.missing_chunks(s.id),
            Ok(s.missing()),
            "session {}",
            s.id
        );
        let up = store.upload(s.id).expect("open session");
        assert_eq!(up.received, s.parts.len() as u64);
        assert_eq!(up.owner, OWNERS[s.owner]);
    }
    for id in &model.ever {
        if model.session_pos(*id).is_none() {
            assert_eq!(store.upload(*id), None);
        }
    }
    for (i, owner) in OWNERS.iter().enumerate() {
        let mine = model.sessions.iter().filter(|s| s.owner == i);
        let want = OwnerUploads {
            sessions: mine.clone().count() as u64,
            declared_bytes: mine.map(|s| s.content().bytes.len() as u64).sum(),
        };
        assert_eq!(store.owner_uploads(owner), want, "totals of owner {i}");
    }
    assert_eq!(
        store.next_upload_expiry(),
        model.sessions.iter().filter_map(|s| s.expires).min(),
        "next expiry"
    );
    for s in &model.sessions {
        assert_eq!(store.upload(s.id).map(|u| u.expires_ns), Some(s.expires));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        let mem = memories();
        let mut store = BlobStore::init(mem.clone(), limits());
        let mut model = Model::default();
        for op in &ops {
            apply(&mut store, &mem, &mut model, op);
            check(&store, &model);
        }
        // In the end, releasing every reference and aborting every session empties the store.
        for s in std::mem::take(&mut model.sessions) {
            store.abort_upload(OWNERS[s.owner], s.id).expect("abort");
        }
        for (h, b) in std::mem::take(&mut model.blobs) {
            for _ in 0..b.refs {
                store.release(&h).expect("release");
            }
        }
        let st = store.stats();
        prop_assert_eq!((st.blobs, st.chunks, st.stored_bytes, st.logical_bytes, st.open_uploads), (0, 0, 0, 0, 0));
        prop_assert_eq!(st.free_slots, st.allocated_slots);
    }
}
