//! `diff` finds each kind of difference, and none between equal manifests.

mod common;

use manifests::*;

fn rebuild(m: Manifest) -> Manifest {
    let m = Manifest::from_leaves(m.capsule, m.connections, m.memories, m.blobs).unwrap();
    m.verify().unwrap();
    m
}

fn memory_mut(m: &mut Manifest, id: u64) -> &mut MemoryLeaf {
    m.memories.iter_mut().find(|x| x.id == id).unwrap()
}

#[test]
fn equal_manifests_have_no_difference() {
    assert_eq!(diff(&common::manifest(), &common::manifest()), vec![]);
}

#[test]
fn capsule_metadata_change() {
    let a = common::manifest();
    let mut b = a.clone();
    b.capsule.bio = "New bio".into();
    b.capsule.settings.public_profile = true;
    let b = rebuild(b);
    let d = diff(&a, &b);
    assert!(matches!(d[0], Difference::Root { .. }));
    assert!(d.contains(&Difference::SectionRoot {
        section: Section::Capsule,
        a: a.header.capsule_root,
        b: b.header.capsule_root
    }));
    let Some(Difference::Capsule { changes }) =
        d.iter().find(|x| matches!(x, Difference::Capsule { .. }))
    else {
        panic!("no capsule difference in {d:?}")
    };
    let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["bio", "settings.public_profile"]);
    assert_eq!(d.len(), 3, "{d:?}");
    let text = d
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(r#"bio: "Notes, photos and letters." -> "New bio""#),
        "{text}"
    );
}

#[test]
fn connection_added_removed_changed() {
    let a = common::manifest();
    let mut b = a.clone();
    let removed = b.connections.remove(0).peer;
    let changed = b.connections[0].peer;
    b.connections[0].status = "accepted".into();
    let added = common::principal(&[77, 77]);
    b.connections.push(ConnectionLeaf {
        peer: added,
        relationship: "friend".into(),
        status: "pending".into(),
        created_at: 1,
        updated_at: 1,
    });
    let d = diff(&a, &rebuild(b));
    assert!(
        d.contains(&Difference::ConnectionRemoved { peer: removed }),
        "{d:?}"
    );
    assert!(
        d.contains(&Difference::ConnectionAdded { peer: added }),
        "{d:?}"
    );
    assert!(
        d.iter().any(
            |x| matches!(x, Difference::ConnectionChanged { peer, changes }
            if *peer == changed && changes.len() == 1 && changes[0].field == "status")
        ),
        "{d:?}"
    );
    // Only the connections section root changed.
    let sections: Vec<_> = d
        .iter()
        .filter_map(|x| match x {
            Difference::SectionRoot { section, .. } => Some(*section),
            _ => None,
        })
        .collect();
    assert_eq!(sections, [Section::Connections]);
}

#[test]
fn memory_added_removed_and_metadata_changed() {
    let a = common::manifest();
    let mut b = a.clone();
    b.memories.retain(|m| m.id != 1);
    memory_mut(&mut b, 5).title = "Letters (scanned)".into();
    memory_mut(&mut b, 5).tags.push("family".into());
    memory_mut(&mut b, 5).blobs[0].mime_type = "image/webp".into();
    let mut new = a.memories[0].clone();
    new.id = 100;
    new.blobs.clear();
    b.memories.push(new);
    let d = diff(&a, &rebuild(b));
    assert!(d.contains(&Difference::MemoryRemoved {
        id: 1,
        title: "First note".into()
    }));
    assert!(
        d.iter()
            .any(|x| matches!(x, Difference::MemoryAdded { id: 100, .. }))
    );
    let Some(Difference::MemoryMetadataChanged { changes, .. }) = d
        .iter()
        .find(|x| matches!(x, Difference::MemoryMetadataChanged { id: 5, .. }))
    else {
        panic!("no metadata change for memory 5 in {d:?}")
    };
    let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["title", "tags", "blobs[0].mime_type"]);
    assert!(
        !d.iter()
            .any(|x| matches!(x, Difference::MemoryBlobChanged { .. })),
        "metadata only, no blob change: {d:?}"
    );
    assert!(
        !d.iter().any(|x| matches!(
            x,
            Difference::BlobAdded { .. } | Difference::BlobRemoved { .. }
        )),
        "{d:?}"
    );
}

#[test]
fn memory_blob_replaced_reports_the_differing_chunks() {
    let a = common::manifest();
    let mut b = a.clone();
    // Memory 2's 3-chunk photo, edited in its second chunk only.
    let mut bytes = common::data(2, 600_000);
    bytes[300_000] ^= 0xff;
    let edited = BlobLeaf::from_bytes(&bytes);
    let old = memory_mut(&mut b, 2).blobs[0].hash;
    memory_mut(&mut b, 2).blobs[0].hash = edited.hash;
    b.blobs.retain(|x| x.hash != old);
    b.blobs.push(edited.clone());
    let d = diff(&a, &rebuild(b));
    let Some(Difference::MemoryBlobChanged {
        id,
        index,
        a: ra,
        b: rb,
        chunks,
    }) = d
        .iter()
        .find(|x| matches!(x, Difference::MemoryBlobChanged { .. }))
    else {
        panic!("no blob change in {d:?}")
    };
    assert_eq!((*id, *index), (2, 0));
    assert_eq!(ra.as_ref().unwrap().hash, old);
    assert_eq!(rb.as_ref().unwrap().hash, edited.hash);
    let chunks = chunks.as_ref().unwrap();
    // A chunk's hash depends on its bytes and offset only, so only chunk 1 differs.
    assert_eq!(chunks.differing, vec![1]);
    assert!(d.contains(&Difference::BlobAdded {
        hash: edited.hash,
        size: 600_000,
        chunks: 3
    }));
    assert!(d.contains(&Difference::BlobRemoved {
        hash: old,
        size: 600_000,
        chunks: 3
    }));
    assert!(
        !d.iter()
            .any(|x| matches!(x, Difference::MemoryMetadataChanged { .. })),
        "blob only, no metadata change: {d:?}"
    );
    let line = d
        .iter()
        .find(|x| matches!(x, Difference::MemoryBlobChanged { .. }))
        .unwrap()
        .to_string();
    assert!(line.contains("memory 2 blob 0 changed"), "{line}");
    assert!(line.contains("1 of 3/3 chunks differ: 1"), "{line}");
}

#[test]
fn blob_with_same_hash_but_other_chunks_is_reported() {
    // Only possible in a manifest that does not verify: diff still says what differs.
    let a = common::manifest();
    let mut b = a.clone();
    let i = b.blobs.iter().position(|x| x.size == 600_000).unwrap();
    b.blobs[i].chunk_hashes[2][0] ^= 1;
    let d = diff(&a, &b);
    assert!(
        d.iter()
            .any(|x| matches!(x, Difference::BlobChunksDiffer { chunks, .. }
            if chunks.differing == vec![2])),
        "{d:?}"
    );
}

#[test]
fn chunk_ranges_are_compact() {
    assert_eq!(
        manifests::diff::ranges(&[0, 1, 2, 3, 7, 9, 10]),
        "0-3, 7, 9-10"
    );
    assert_eq!(manifests::diff::ranges(&[]), "");
    let c = manifests::diff::chunk_diff(&[[0; 32], [1; 32]], &[[0; 32], [2; 32], [3; 32]]);
    assert_eq!(c.differing, vec![1, 2]);
}
