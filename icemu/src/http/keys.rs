//! The keys behind `icemu serve`'s certificates and query signatures, kept in the state
//! directory (`http-keys.json`, readable by the owner only) so a restarted server keeps its
//! root key and agents that fetched it keep verifying.
//!
//! As on the IC (interface specification, "Certification" and "Delegation"), a root key (the
//! NNS's) signs a delegation to the subnet's key, and the subnet's key signs the state
//! certificates; both are BLS12-381 keys (public keys in G2, signatures in G1). One node's
//! Ed25519 key signs query responses ("Query call", node signatures).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use candid::Principal;
use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use ic_bls12_381::{G1Affine, G1Projective, G2Affine, Scalar};
use serde::{Deserialize, Serialize};

/// The DER prefix of a BLS12-381 G2 public key (interface specification, "Certificate":
/// the OIDs of BLS12-381 and of the IC's BLS signature scheme).
pub const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];
/// The DER prefix of an Ed25519 public key (RFC 8410).
pub const ED25519_DER_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The hash-to-curve domain separation tag of the IC's BLS signatures.
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// A BLS12-381 signing key.
pub struct BlsKey {
    sk: Scalar,
    pk: G2Affine,
}

impl BlsKey {
    fn from_secret(bytes: &[u8; 32]) -> Result<Self> {
        let sk = Option::<Scalar>::from(Scalar::from_bytes(bytes))
            .ok_or_else(|| anyhow!("not a BLS12-381 scalar"))?;
        let pk = G2Affine::from(G2Affine::generator() * sk);
        Ok(Self { sk, pk })
    }

    fn generate() -> Result<Self> {
        let mut wide = [0u8; 64];
        urandom(&mut wide)?;
        Self::from_secret(&Scalar::from_bytes_wide(&wide).to_bytes())
    }

    /// The public key, DER-wrapped as the IC publishes it (133 bytes).
    pub fn public_key_der(&self) -> Vec<u8> {
        let mut der = BLS_DER_PREFIX.to_vec();
        der.extend_from_slice(&self.pk.to_compressed());
        der
    }

    /// The signature of `msg`: hash to G1, times the secret key; compressed (48 bytes).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let h =
            <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(msg, BLS_DST);
        G1Affine::from(h * self.sk).to_compressed().to_vec()
    }
}

/// The root, subnet and node keys.
pub struct Keys {
    /// Signs the delegation to the subnet; its public key is the root key `/api/v2/status` serves.
    pub root: BlsKey,
    /// Signs state certificates.
    pub subnet: BlsKey,
    /// Signs query responses.
    pub node: ed25519_dalek::SigningKey,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    root_bls: String,
    subnet_bls: String,
    node_ed25519: String,
}

fn urandom(buf: &mut [u8]) -> Result<()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("reading /dev/urandom")
}

fn hex32(s: &str) -> Result<[u8; 32]> {
    hex::decode(s)?
        .try_into()
        .map_err(|_| anyhow!("expected 32 bytes"))
}

impl Keys {
    /// The keys of the state directory `dir`, made on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let path = dir.join("http-keys.json");
        if path.is_file() {
            let s: Stored = serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(Self {
                root: BlsKey::from_secret(&hex32(&s.root_bls)?)?,
                subnet: BlsKey::from_secret(&hex32(&s.subnet_bls)?)?,
                node: ed25519_dalek::SigningKey::from_bytes(&hex32(&s.node_ed25519)?),
            });
        }
        let mut node = [0u8; 32];
        urandom(&mut node)?;
        let keys = Self {
            root: BlsKey::generate()?,
            subnet: BlsKey::generate()?,
            node: ed25519_dalek::SigningKey::from_bytes(&node),
        };
        let stored = Stored {
            root_bls: hex::encode(keys.root.sk.to_bytes()),
            subnet_bls: hex::encode(keys.subnet.sk.to_bytes()),
            node_ed25519: hex::encode(keys.node.to_bytes()),
        };
        write_private(&path, &serde_json::to_vec_pretty(&stored)?)?;
        Ok(keys)
    }

    /// The node's public key, DER-wrapped (44 bytes).
    pub fn node_public_key_der(&self) -> Vec<u8> {
        let mut der = ED25519_DER_PREFIX.to_vec();
        der.extend_from_slice(self.node.verifying_key().as_bytes());
        der
    }

    /// The node's id: the self-authenticating principal of its public key.
    pub fn node_id(&self) -> Principal {
        Principal::self_authenticating(self.node_public_key_der())
    }
}

/// Writes `bytes` to `path` readable by the owner only (mode 0600), through a temporary file
/// beside it renamed into place.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_bls12_381::pairing;

    /// The signature verifies with the pairing check agents use, and a changed message fails it.
    #[test]
    fn bls_signatures_verify_with_the_public_key() {
        let k = BlsKey::generate().unwrap();
        let der = k.public_key_der();
        assert_eq!(der.len(), 133);
        let pk = G2Affine::from_compressed(&der[37..].try_into().unwrap()).unwrap();
        let check = |msg: &[u8], sig: &[u8]| {
            let sig = G1Affine::from_compressed(sig.try_into().unwrap()).unwrap();
            let h = G1Affine::from(
                <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(
                    msg, BLS_DST,
                ),
            );
            pairing(&sig, &G2Affine::generator()) == pairing(&h, &pk)
        };
        let sig = k.sign(b"\x0dic-state-roothello");
        assert!(check(b"\x0dic-state-roothello", &sig));
        assert!(!check(b"\x0dic-state-rootjello", &sig));
    }

    /// Keys made once are read back the same (the root key survives a restart).
    #[test]
    fn keys_persist_in_the_state_directory() {
        let dir = std::env::temp_dir().join(format!("icemu-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Keys::load_or_create(&dir).unwrap();
        let b = Keys::load_or_create(&dir).unwrap();
        assert_eq!(a.root.public_key_der(), b.root.public_key_der());
        assert_eq!(a.subnet.public_key_der(), b.subnet.public_key_der());
        assert_eq!(a.node_id(), b.node_id());
        assert_ne!(a.root.public_key_der(), a.subnet.public_key_der());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
