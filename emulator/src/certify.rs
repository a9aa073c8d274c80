//! Certified data: what a canister certifies (`ic0.certified_data_set`) and the certificates
//! non-replicated queries see (`ic0.data_certificate_*`).
//!
//! The emulator keeps each canister's certified data (at most 32 bytes, set in update and
//! replicated contexts and kept when the message commits). Certificates are signed state-tree
//! excerpts; making them needs keys and the IC's certificate format, which the emulator leaves to
//! whoever serves it: a [`Certifier`] set with [`crate::Emulator::set_certifier`] (`icemu serve`
//! sets one that signs with the BLS key its `/api/v2/status` publishes). Without one, queries see
//! no certificate (`data_certificate_present` returns 0), as replicated executions do.

use std::sync::{Arc, OnceLock};

use candid::Principal;

/// Makes the certificate a non-replicated query of `canister` sees: per the interface
/// specification ("Certified data"), a CBOR certificate whose tree reveals at least
/// `/canister/<canister>/certified_data` and `/time`.
pub trait Certifier: Send + Sync {
    /// The certificate for `canister` holding `certified_data` at `time` (ns since the epoch).
    fn data_certificate(&self, canister: Principal, certified_data: &[u8], time: u64) -> Vec<u8>;
}

/// What the state tree shows of one canister (`/canister/<id>/...` in the interface
/// specification's "The system state tree").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedCanister {
    /// The canister.
    pub id: Principal,
    /// Its controllers, sorted.
    pub controllers: Vec<Principal>,
    /// SHA-256 of its module, when it has one.
    pub module_hash: Option<[u8; 32]>,
    /// Its certified data (empty until set).
    pub certified_data: Vec<u8>,
    /// Its module's metadata sections (`icp:public` / `icp:private`): `(name, public, bytes)`.
    pub metadata: Vec<(String, bool, Vec<u8>)>,
}

/// The certificate one non-replicated query may read, made on first use (signing costs
/// milliseconds; most queries never ask).
pub struct DataCertificate {
    certifier: Arc<dyn Certifier>,
    canister: Principal,
    certified_data: Vec<u8>,
    time: u64,
    made: OnceLock<Vec<u8>>,
}

impl DataCertificate {
    /// The certificate `certifier` makes for `canister` with `certified_data` at `time`.
    pub fn new(
        certifier: Arc<dyn Certifier>,
        canister: Principal,
        certified_data: Vec<u8>,
        time: u64,
    ) -> Self {
        Self {
            certifier,
            canister,
            certified_data,
            time,
            made: OnceLock::new(),
        }
    }

    /// The certificate's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.made.get_or_init(|| {
            self.certifier
                .data_certificate(self.canister, &self.certified_data, self.time)
        })
    }
}
