//! Certified data (interface specification, "Certified data"): `certified_data_set` keeps the
//! data a canister certifies, and `data_certificate` gives non-replicated queries the
//! certificate the emulator's certifier makes; replicated executions see none.

mod common;

use std::sync::Arc;

use candid::Principal;
use common::{query, setup, update};
use emulator::Certifier;
use serde_bytes::ByteBuf;

/// A certifier whose "certificate" spells out what it was asked to certify.
struct Spell;

impl Certifier for Spell {
    fn data_certificate(&self, canister: Principal, data: &[u8], time: u64) -> Vec<u8> {
        format!("{canister}:{}:{time}", hex::encode(data)).into_bytes()
    }
}

#[test]
fn a_query_sees_the_certificate_of_the_data_its_canister_certified() {
    let (pic, ids) = setup(1);
    let id = ids[0];
    // No certifier: no certificate.
    let none: (Option<ByteBuf>,) = query(&pic, id, "certificate", ()).unwrap();
    assert_eq!(none.0, None);
    pic.emulator().set_certifier(Arc::new(Spell));
    let empty: (Option<ByteBuf>,) = query(&pic, id, "certificate", ()).unwrap();
    let time = pic.emulator().time_nanos();
    assert_eq!(
        String::from_utf8(empty.0.unwrap().into_vec()).unwrap(),
        format!("{id}::{time}")
    );
    let () = update(&pic, id, "set_certified", (ByteBuf::from(vec![7u8; 32]),)).unwrap();
    let cert: (Option<ByteBuf>,) = query(&pic, id, "certificate", ()).unwrap();
    let time = pic.emulator().time_nanos();
    assert_eq!(
        String::from_utf8(cert.0.unwrap().into_vec()).unwrap(),
        format!("{id}:{}:{time}", "07".repeat(32))
    );
    // What the state tree shows: the data, the sorted controllers, the module hash.
    let (_, state) = pic.emulator().certified_state();
    let c = state.iter().find(|c| c.id == id).unwrap();
    assert_eq!(c.certified_data, vec![7u8; 32]);
    assert!(c.module_hash.is_some());
    assert!(c.controllers.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn replicated_executions_see_no_certificate_and_more_than_32_bytes_trap() {
    let (pic, ids) = setup(1);
    let id = ids[0];
    pic.emulator().set_certifier(Arc::new(Spell));
    // The query method run as an update is replicated: no certificate.
    let replicated: (Option<ByteBuf>,) = update(&pic, id, "certificate", ()).unwrap();
    assert_eq!(replicated.0, None);
    // certified_data_set takes at most 32 bytes; a trap keeps the old data.
    let () = update(&pic, id, "set_certified", (ByteBuf::from(vec![1u8; 4]),)).unwrap();
    let r = update::<_, ()>(&pic, id, "set_certified", (ByteBuf::from(vec![2u8; 33]),));
    let err = r.unwrap_err();
    assert!(err.reject_message.contains("more than 32 bytes"), "{err:?}");
    let (_, state) = pic.emulator().certified_state();
    assert_eq!(
        state.iter().find(|c| c.id == id).unwrap().certified_data,
        vec![1u8; 4]
    );
}
