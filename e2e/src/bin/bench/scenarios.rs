//! The benchmark's synthetic capsules and how they are filled through the capsule API.

use super::*;

/// A synthetic capsule.
pub struct Scenario {
    pub name: &'static str,
    /// Sizes of the capsule's distinct blobs.
    pub blob_sizes: Vec<usize>,
    pub memories: u64,
    pub connections: u32,
    /// Seed of the owner (and so of the blob bytes).
    pub owner: u32,
}

/// Blob sizes of a realistic mix adding up to exactly `total` bytes: small files and
/// thumbnails (1–64 KiB, half of them), photos (100 KiB–1 MiB), large photos (1–4 MiB) and
/// short videos (4–16 MiB), drawn from a fixed seed.
pub fn blob_mix(total: usize, seed: u64) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sizes = vec![];
    let mut sum = 0;
    while sum < total {
        let class = next() % 100;
        let (lo, hi) = match class {
            0..50 => (KIB, 64 * KIB),
            50..85 => (100 * KIB, MIB),
            85..97 => (MIB, 4 * MIB),
            _ => (4 * MIB, 16 * MIB),
        };
        let size = (lo + (next() as usize) % (hi - lo)).min(total - sum);
        sizes.push(size);
        sum += size;
    }
    sizes
}

pub fn scenarios(quick: bool) -> Vec<Scenario> {
    if quick {
        vec![
            Scenario {
                name: "quick-mixed-4MiB",
                blob_sizes: blob_mix(4 * MIB, 1),
                memories: 200,
                connections: 10,
                owner: 1,
            },
            Scenario {
                name: "quick-large-8MiB",
                blob_sizes: blob_mix(8 * MIB, 2),
                memories: 50,
                connections: 5,
                owner: 2,
            },
            Scenario {
                name: "quick-records-400",
                blob_sizes: vec![],
                memories: 400,
                connections: 20,
                owner: 3,
            },
        ]
    } else {
        vec![
            Scenario {
                name: "mixed-64MiB",
                blob_sizes: blob_mix(64 * MIB, 1),
                memories: 1_000,
                connections: 100,
                owner: 1,
            },
            Scenario {
                name: "large-1GiB",
                blob_sizes: blob_mix(1024 * MIB, 2),
                memories: 1_000,
                connections: 100,
                owner: 2,
            },
            Scenario {
                name: "records-100k",
                blob_sizes: vec![],
                memories: 100_000,
                connections: 100,
                owner: 3,
            },
        ]
    }
}

/// Submits every message and runs rounds until all have completed; panics on any error.
pub fn run_batch(w: &World, calls: Vec<(Principal, &str, Vec<u8>)>) {
    let emu = w.emu();
    let ids: Vec<MessageId> = calls
        .into_iter()
        .map(|(who, method, arg)| emu.submit(w.backend, who, method, arg).unwrap())
        .collect();
    for id in ids {
        let reply = emu.await_message(id).unwrap();
        let (r,): (Result<candid::Reserved, Error>,) = candid::decode_args(&reply).unwrap();
        r.unwrap();
    }
}

/// Fills `who`'s capsule on the backend through the capsule API (not measured): blobs first
/// (one upload each), then memories referencing them round-robin, then connections.
pub fn fill(w: &World, who: Principal, s: &Scenario) {
    let _: CapsuleInfo = w
        .capsule(
            w.backend,
            who,
            "create_capsule",
            (CapsuleInput {
                name: format!("bench {}", s.name),
                bio: "a synthetic capsule of the migration benchmark".into(),
                settings: None,
            },),
        )
        .unwrap();
    let blobs: Vec<BlobDescriptor> = s
        .blob_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| {
            w.upload(
                w.backend,
                who,
                &data(*size, s.owner as u64 * 1_000_000 + i as u64),
            )
        })
        .collect();
    let mime = |size: u64| match size {
        0..65_536 => "application/pdf",
        65_536..4_194_304 => "image/jpeg",
        _ => "video/mp4",
    };
    let per_batch = 500u64;
    let mut i = 0u64;
    while i < s.memories {
        let end = (i + per_batch).min(s.memories);
        let calls = (i..end)
            .map(|m| {
                let attached: Vec<BlobRef> = blobs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j as u64 % s.memories == m)
                    .map(|(_, d)| BlobRef {
                        hash: d.hash,
                        size: d.size,
                        mime_type: mime(d.size).into(),
                    })
                    .collect();
                let input = MemoryInput {
                    title: format!("memory {m} of {}", s.name),
                    description: "a day at the lake with everyone, ".repeat((m % 5) as usize + 1),
                    tags: (0..(m % 4)).map(|t| format!("tag{t}")).collect(),
                    kind: if attached.is_empty() {
                        MemoryKind::Note
                    } else {
                        MemoryKind::Photo
                    },
                    blobs: attached,
                    encryption: (m % 7 == 3).then(|| EncryptionEnvelope {
                        scheme: "x25519-xsalsa20poly1305".into(),
                        wrapped_key: ByteBuf::from(data(48, m)),
                    }),
                };
                (who, "add_memory", candid::encode_args((input,)).unwrap())
            })
            .collect();
        run_batch(w, calls);
        i = end;
    }
    let calls = (0..s.connections)
        .map(|n| {
            let input = ConnectionInput {
                peer: user(1_000_000 + n),
                relationship: ["friend", "sister", "colleague"][n as usize % 3].into(),
                status: ConnectionStatus::Accepted,
            };
            (
                who,
                "add_connection",
                candid::encode_args((input,)).unwrap(),
            )
        })
        .collect();
    run_batch(w, calls);
}
