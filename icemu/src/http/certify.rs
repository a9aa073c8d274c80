//! The certified state tree and its certificates (interface specification, "Certification":
//! "The system state tree", "Certificate", "Delegation").
//!
//! The tree is built from the emulator's state when a request asks for it: `/time`,
//! `/canister/<id>/{controllers,module_hash,certified_data,metadata/<name>}`, `/request_status/<id>/...`,
//! `/subnet/<id>/{public_key,canister_ranges,type,node/<node>/public_key}`. A certificate is a
//! witness of the requested paths (and `/time`), signed with the subnet's key over
//! `"\x0Dic-state-root" · root hash`, with a delegation from the root key: a certificate,
//! signed by the root key, of `/subnet/<id>/{public_key,canister_ranges}` and
//! `/canister_ranges/<id>/<shard>`, as an application subnet's certificates carry on the IC.

use std::collections::HashMap;
use std::sync::Arc;

use candid::Principal;
use emulator::{CertifiedCanister, Certifier};
use ic_certification::hash_tree::HashTree;
use ic_certification::{NestedTree, merge_hash_trees};
use serde::Serialize;

use super::keys::Keys;
use super::requests::{Outcome, RequestRecord};

/// A state tree: labels and leaves are bytes.
pub type Tree = NestedTree<Vec<u8>, Vec<u8>>;
/// A path in the state tree.
pub type Path = Vec<Vec<u8>>;

const STATE_ROOT_DOMAIN: &[u8] = b"\x0Dic-state-root";

/// Signs certificates for one subnet holding every canister id.
pub struct Signer {
    keys: Keys,
    subnet_id: Principal,
    /// The CBOR certificate of the delegation from the root key to the subnet key.
    delegation: Vec<u8>,
}

/// The canister id range the subnet holds: every canister id (8 bytes of index, `0x01 0x01`).
pub fn canister_range() -> (Principal, Principal) {
    (
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
        Principal::from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 1]),
    )
}

/// CBOR with the self-describing tag, as the IC encodes every CBOR value it serves.
pub fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut s = serde_cbor::Serializer::new(Vec::new());
    s.self_describe().expect("writing to a Vec");
    v.serialize(&mut s).expect("CBOR of plain data");
    s.into_inner()
}

/// An unsigned LEB128 number, as `/time` and `reject_code` are stored.
pub fn leb128(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    leb128::write::unsigned(&mut out, n).expect("writing to a Vec");
    out
}

fn p(labels: &[&[u8]]) -> Path {
    labels.iter().map(|l| l.to_vec()).collect()
}

impl Signer {
    /// A signer with `keys` for the subnet `subnet_id`; signs the delegation once.
    pub fn new(keys: Keys, subnet_id: Principal) -> Self {
        let mut tree = Tree::default();
        let sid = subnet_id.as_slice();
        tree.insert(
            &p(&[b"subnet", sid, b"public_key"]),
            keys.subnet.public_key_der(),
        );
        let ranges = cbor(&vec![canister_range()]);
        tree.insert(&p(&[b"subnet", sid, b"canister_ranges"]), ranges.clone());
        let shard = canister_range().0;
        tree.insert(&p(&[b"canister_ranges", sid, shard.as_slice()]), ranges);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        tree.insert(&p(&[b"time"]), leb128(now));
        let root_hash = ic_certification::AsHashTree::root_hash(&tree);
        let signature = keys.root.sign(&[STATE_ROOT_DOMAIN, &root_hash].concat());
        let delegation = cbor(&ic_certification::certificate::Certificate::<Vec<u8>> {
            tree: ic_certification::AsHashTree::as_hash_tree(&tree),
            signature,
            delegation: None,
        });
        Self {
            keys,
            subnet_id,
            delegation,
        }
    }

    /// The root key's DER (served by `/api/v2/status`).
    pub fn root_key(&self) -> Vec<u8> {
        self.keys.root.public_key_der()
    }

    /// The subnet's id.
    pub fn subnet_id(&self) -> Principal {
        self.subnet_id
    }

    /// The keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// An empty state tree holding this subnet's `/subnet/<id>/...`.
    pub fn state_tree(&self) -> StateTree {
        let mut t = Tree::default();
        let sid = self.subnet_id.as_slice();
        t.insert(
            &p(&[b"subnet", sid, b"public_key"]),
            self.keys.subnet.public_key_der(),
        );
        t.insert(
            &p(&[b"subnet", sid, b"canister_ranges"]),
            cbor(&vec![canister_range()]),
        );
        t.insert(&p(&[b"subnet", sid, b"type"]), b"application".to_vec());
        let node = self.keys.node_id();
        t.insert(
            &p(&[b"subnet", sid, b"node", node.as_slice(), b"public_key"]),
            self.keys.node_public_key_der(),
        );
        StateTree {
            tree: t,
            canisters: HashMap::new(),
        }
    }

    /// A certificate revealing `paths` (and `/time`) of `tree`, CBOR-encoded.
    pub fn certificate(&self, tree: &Tree, paths: &[Path]) -> Vec<u8> {
        let mut witness = tree.witness(&p(&[b"time"]));
        for path in paths {
            witness = merge_hash_trees(witness, tree.witness(path));
        }
        self.sign(witness)
    }

    fn sign(&self, tree: HashTree<Vec<u8>>) -> Vec<u8> {
        let root_hash = tree.digest();
        let signature = self
            .keys
            .subnet
            .sign(&[STATE_ROOT_DOMAIN, &root_hash].concat());
        cbor(&ic_certification::certificate::Certificate::<Vec<u8>> {
            tree,
            signature,
            delegation: Some(ic_certification::certificate::Delegation {
                subnet_id: self.subnet_id.as_slice().to_vec(),
                certificate: self.delegation.clone(),
            }),
        })
    }
}

/// The certificates queries see: `/canister/<id>/certified_data` and `/time`, signed like every
/// state certificate.
impl Certifier for Signer {
    fn data_certificate(&self, canister: Principal, certified_data: &[u8], time: u64) -> Vec<u8> {
        let mut t = Tree::default();
        t.insert(&p(&[b"time"]), leb128(time));
        t.insert(
            &p(&[b"canister", canister.as_slice(), b"certified_data"]),
            certified_data.to_vec(),
        );
        self.sign(ic_certification::AsHashTree::as_hash_tree(&t))
    }
}

/// The signer as the emulator's certifier.
pub fn certifier(signer: &Arc<Signer>) -> Arc<dyn Certifier> {
    signer.clone()
}

/// The state tree, kept between requests and updated with what changed, so a certificate costs
/// the changes and a witness, not the whole tree: the tree's hashes are cached per node.
pub struct StateTree {
    tree: Tree,
    /// What the tree holds of each canister.
    canisters: HashMap<Principal, CertifiedCanister>,
}

impl StateTree {
    /// The tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Sets `/time`.
    pub fn set_time(&mut self, time: u64) {
        self.tree.insert(&p(&[b"time"]), leb128(time));
    }

    /// Makes `/canister/...` show `canisters` (changed ones rewritten, deleted ones removed).
    pub fn set_canisters(&mut self, canisters: Vec<CertifiedCanister>) {
        let now: HashMap<Principal, CertifiedCanister> =
            canisters.into_iter().map(|c| (c.id, c)).collect();
        let gone: Vec<Principal> = self
            .canisters
            .keys()
            .filter(|id| !now.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.tree.delete(&p(&[b"canister", id.as_slice()]));
            self.canisters.remove(&id);
        }
        for (id, c) in now {
            if self.canisters.get(&id) == Some(&c) {
                continue;
            }
            let i = id.as_slice();
            self.tree.delete(&p(&[b"canister", i]));
            self.tree
                .insert(&p(&[b"canister", i, b"controllers"]), cbor(&c.controllers));
            if let Some(h) = c.module_hash {
                self.tree
                    .insert(&p(&[b"canister", i, b"module_hash"]), h.to_vec());
            }
            self.tree.insert(
                &p(&[b"canister", i, b"certified_data"]),
                c.certified_data.clone(),
            );
            for (name, _, bytes) in &c.metadata {
                self.tree.insert(
                    &p(&[b"canister", i, b"metadata", name.as_bytes()]),
                    bytes.clone(),
                );
            }
            self.canisters.insert(id, c);
        }
    }

    /// Makes `/request_status/<rid>` show `record` (absent when `None`).
    pub fn set_request(&mut self, rid: &[u8; 32], record: Option<&RequestRecord>) {
        self.tree.delete(&p(&[b"request_status", rid]));
        let Some(r) = record else {
            return;
        };
        let t = &mut self.tree;
        let base = |leaf: &[u8]| p(&[b"request_status", rid, leaf]);
        match &r.outcome {
            Outcome::Processing => t.insert(&base(b"status"), b"processing".to_vec()),
            Outcome::Replied(reply) => {
                t.insert(&base(b"status"), b"replied".to_vec());
                t.insert(&base(b"reply"), reply.clone());
            }
            Outcome::Rejected(rej) => {
                t.insert(&base(b"status"), b"rejected".to_vec());
                t.insert(&base(b"reject_code"), leb128(rej.reject_code as u64));
                t.insert(
                    &base(b"reject_message"),
                    rej.reject_message.as_bytes().to_vec(),
                );
                t.insert(
                    &base(b"error_code"),
                    format!("IC{:04}", rej.error_code as u32).into_bytes(),
                );
            }
            Outcome::Done => t.insert(&base(b"status"), b"done".to_vec()),
        }
    }
}
