//! The manifest store keeps leaves in runs (one B-tree entry per run of consecutive leaves):
//! every leaf reads back by index, by range and in pages, across run boundaries and across
//! single-leaf entries an earlier layout wrote (in candid) in the same scope.

use candid::Principal;
use capsule::manifest_store::{ManifestStore, RUN_BYTES, StoredLeaf};
use capsule::storable::Candid;
use ic_stable_structures::{StableBTreeMap, VectorMemory};
use manifests::{
    CapsuleLeaf, CapsuleSettingsLeaf, Leaf, ManifestBuilder, MemoryLeaf, PageCursor, PageLeaves,
    Section,
};

fn memory(id: u64) -> MemoryLeaf {
    MemoryLeaf {
        id,
        title: format!("memory {id}"),
        description: "x".repeat((id % 300) as usize),
        tags: vec![],
        kind: "note".into(),
        created_at: id,
        updated_at: id,
        blobs: vec![],
        encryption: None,
    }
}

fn capsule() -> CapsuleLeaf {
    CapsuleLeaf {
        owner: Principal::from_slice(&[3; 29]),
        name: "c".into(),
        bio: String::new(),
        created_at: 0,
        updated_at: 0,
        settings: CapsuleSettingsLeaf {
            public_profile: false,
            locale: "en".into(),
        },
    }
}

fn as_memories(v: Vec<StoredLeaf>) -> Vec<MemoryLeaf> {
    v.into_iter()
        .map(|l| match l {
            StoredLeaf::Memory(m) => m,
            other => panic!("not a memory leaf: {other:?}"),
        })
        .collect()
}

#[test]
fn leaves_in_runs_and_single_leaves_of_the_earlier_layout_read_back_by_index_range_and_page() {
    let (leaves_mem, headers_mem) = (VectorMemory::default(), VectorMemory::default());
    let all: Vec<MemoryLeaf> = (0..1_000).map(memory).collect();
    let legacy = 37u64;
    // The earlier layout: one candid entry per leaf, keyed (scope, section tag, index).
    {
        let mut old: StableBTreeMap<(u64, u8, u64), Candid<StoredLeaf>, VectorMemory> =
            StableBTreeMap::init(leaves_mem.clone());
        old.insert((5, 0, 0), Candid(StoredLeaf::Capsule(capsule())));
        for (i, m) in all[..legacy as usize].iter().enumerate() {
            old.insert((5, 2, i as u64), Candid(StoredLeaf::Memory(m.clone())));
        }
    }
    let mut store = ManifestStore::init(leaves_mem, headers_mem);
    assert_eq!(store.count(5, Section::Memories), legacy);
    // The rest is appended in runs, in batches of 100 as an export walk does.
    for batch in all[legacy as usize..].chunks(100) {
        store.append(5, &PageLeaves::Memories(batch.to_vec()));
    }
    assert_eq!(store.count(5, Section::Memories), 1_000);
    let total: usize = all.iter().map(|m| m.encoded_len()).sum();
    assert!(total > 4 * RUN_BYTES, "several runs are written");

    for (i, m) in all.iter().enumerate() {
        assert_eq!(
            store.leaf(5, Section::Memories, i as u64),
            Some(StoredLeaf::Memory(m.clone())),
            "leaf {i}"
        );
    }
    assert_eq!(store.leaf(5, Section::Memories, 1_000), None);
    assert_eq!(
        store.leaf(5, Section::Capsule, 0),
        Some(StoredLeaf::Capsule(capsule()))
    );
    for start in [0u64, 1, 36, 37, 38, 99, 500, 998] {
        let got = as_memories(store.leaves(5, Section::Memories, start, 123));
        let end = (start as usize + 123).min(all.len());
        assert_eq!(got, all[start as usize..end], "from {start}");
    }

    // Pages: built from the same leaves, served from any cursor.
    let mut b = ManifestBuilder::new();
    b.push_capsule(&capsule()).unwrap();
    b.push_leaves(&PageLeaves::Memories(all.clone())).unwrap();
    let header = b.finish().unwrap();
    store.set_header(5, header.clone());
    let mut cursor = Some(PageCursor {
        section: Section::Memories,
        index: 0,
    });
    let mut served = vec![];
    while let Some(c) = cursor {
        let reply = store.page(5, c, 20_000).unwrap();
        assert_eq!(reply.header, header);
        let PageLeaves::Memories(v) = reply.page.leaves else {
            panic!("a memories page")
        };
        served.extend(v);
        cursor = reply.page.next;
    }
    assert_eq!(served, all);

    // Another scope is untouched by a clear; the cleared scope goes, header included.
    store.append(6, &PageLeaves::Memories(all[..3].to_vec()));
    while !store.clear(5, 7) {}
    assert_eq!(store.count(5, Section::Memories), 0);
    assert_eq!(store.header(5), None);
    assert_eq!(
        as_memories(store.leaves(6, Section::Memories, 0, 10)),
        all[..3]
    );
}

#[test]
fn a_page_stored_twice_is_stored_once() {
    let mut store = ManifestStore::init(VectorMemory::default(), VectorMemory::default());
    let page = manifests::ManifestPage {
        start: 10,
        leaves: PageLeaves::Memories((10..400).map(memory).collect()),
        next: None,
    };
    store.put_page(1, &page);
    store.put_raw_page(1, &manifests::RawPage::of(&page));
    assert_eq!(store.count(1, Section::Memories), 400);
    let got = as_memories(store.leaves(1, Section::Memories, 10, 1_000));
    assert_eq!(got, (10..400).map(memory).collect::<Vec<_>>());
}

/// Raw pages (canonical bytes, no leaf decoded) serve the same leaves as typed pages, within
/// the byte budget, across runs in postcard that the layout before framed runs wrote.
#[test]
fn raw_pages_serve_framed_runs_and_runs_of_the_earlier_layout() {
    use capsule::manifest_store::RUN_V1;
    let (leaves_mem, headers_mem) = (VectorMemory::default(), VectorMemory::default());
    let all: Vec<MemoryLeaf> = (0..600).map(memory).collect();
    // The layout before framed runs: postcard runs of 50 leaves.
    {
        let mut old: StableBTreeMap<(u64, u8, u64), Vec<u8>, VectorMemory> =
            StableBTreeMap::init(leaves_mem.clone());
        let cap = postcard::to_extend(&vec![StoredLeaf::Capsule(capsule())], vec![RUN_V1]).unwrap();
        old.insert((5, 0, 0), cap);
        for (k, run) in all[..200].chunks(50).enumerate() {
            let run: Vec<StoredLeaf> = run.iter().cloned().map(StoredLeaf::Memory).collect();
            old.insert(
                (5, 2, 50 * k as u64),
                postcard::to_extend(&run, vec![RUN_V1]).unwrap(),
            );
        }
    }
    let mut store = ManifestStore::init(leaves_mem, headers_mem);
    store.append(5, &PageLeaves::Memories(all[200..].to_vec()));
    let mut b = ManifestBuilder::new();
    b.push_capsule(&capsule()).unwrap();
    b.push_leaves(&PageLeaves::Memories(all.clone())).unwrap();
    let header = b.finish().unwrap();
    store.set_header(5, header.clone());

    let mut verifier =
        manifests::PageVerifier::new_expecting(header.clone(), &header.root).unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    let mut served = vec![];
    while let Some(c) = cursor {
        let raw = store.raw_page(5, c, 20_000).unwrap();
        assert!(candid::encode_one(&raw).unwrap().len() <= 20_000);
        verifier.push_raw_reply(&raw).unwrap();
        let typed = raw.page.decode().unwrap();
        if let PageLeaves::Memories(v) = typed.leaves {
            served.extend(v);
        }
        cursor = raw.page.next;
    }
    assert_eq!(served, all);
    assert_eq!(verifier.finish().unwrap(), header);
    assert_eq!(
        store.raw_page(
            5,
            PageCursor {
                section: Section::Memories,
                index: 600
            },
            20_000
        ),
        None
    );
}
