//! The end-to-end harness: the real canister wasm (`target/wasm/*.wasm.gz`, built once by
//! `scripts/build.sh`) on the emulator, with helpers to fill capsules and drive migrations.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use backend::factory::types::{
    CreatePersonalCanisterConfig, CreationRecord, CreationState, FactoryError,
};
use blobstore::hash::{CHUNK_SIZE, blob_hashes};
use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use capsule::*;
use serde_bytes::{ByteArray, ByteBuf};
use test_support::capsules::blob_ref;

pub mod layout_upgrade;

/// Deterministic bytes, a user principal per number, a text-only memory: the workspace's test
/// fixtures (`test-support`).
pub use test_support::bytes::data;
pub use test_support::capsules::{note, user};

#[cfg(not(feature = "pocketic"))]
pub use emulator::RejectResponse;
#[cfg(not(feature = "pocketic"))]
use emulator::pocket_ic::{PocketIc, query_candid_as, update_candid_as};
#[cfg(feature = "pocketic")]
pub use pocket_ic::RejectResponse;
#[cfg(feature = "pocketic")]
use pocket_ic::{PocketIc, query_candid_as, update_candid_as};

/// Cycles the backend starts with.
pub const BACKEND_CYCLES: u128 = 1_000_000_000_000_000;
/// Cycles admins move into the reserve by default.
pub const RESERVE: u128 = 100_000_000_000_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A canister module from `target/wasm`, built by `scripts/build.sh` on first use if missing.
pub fn wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = root().join("target/wasm").join(format!("{name}.wasm.gz"));
    if !path.exists() {
        BUILT.get_or_init(|| {
            let status = std::process::Command::new(root().join("scripts/build.sh"))
                .status()
                .expect("run scripts/build.sh");
            assert!(status.success(), "scripts/build.sh failed");
        });
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The admin (the backend's controller).
pub fn admin() -> Principal {
    Principal::from_slice(&[0xad; 29])
}

/// An emulated IC with the backend installed and its reserve funded.
///
/// When a world whose backend has the factory goes out of scope at the end of a test that
/// passed, the reserve's books are checked ([`World::assert_reserve_accounting`]): every e2e
/// test ends with that check unless it opted out ([`World::skip_accounting_check`]).
pub struct World {
    pub ic: PocketIc,
    pub backend: Principal,
    check_accounting: std::cell::Cell<bool>,
}

impl Drop for World {
    fn drop(&mut self) {
        if self.check_accounting.get() && !std::thread::panicking() {
            self.assert_reserve_accounting();
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        Self::with_backend("backend")
    }

    /// A world running the backend module `target/wasm/<module>.wasm.gz`.
    pub fn with_backend(module: &str) -> Self {
        let w = Self::with_backend_wasm(wasm(module), false);
        if module != "backend-core" {
            w.check_accounting.set(true);
            let (status,): (Result<backend::factory::types::ReserveStatus, FactoryError>,) = w
                .update(
                    admin(),
                    "admin_top_up_reserve",
                    (Some(candid::Nat::from(RESERVE)),),
                );
            assert_eq!(status.unwrap().reserve, RESERVE);
        }
        w
    }

    /// A world running the backend module `wasm`; with `top_up`, the reserve is funded with
    /// [`RESERVE`] (the reply is not decoded, so any earlier interface version works).
    pub fn with_backend_wasm(wasm: Vec<u8>, top_up: bool) -> Self {
        let ic = PocketIc::new();
        let backend = ic.create_canister_with_settings(Some(admin()), None);
        ic.add_cycles(backend, BACKEND_CYCLES);
        ic.install_canister(
            backend,
            wasm,
            candid::encode_args(()).unwrap(),
            Some(admin()),
        );
        let w = World {
            ic,
            backend,
            check_accounting: std::cell::Cell::new(false),
        };
        if top_up {
            let _: (candid::Reserved,) = w.update(
                admin(),
                "admin_top_up_reserve",
                (Some(candid::Nat::from(RESERVE)),),
            );
        }
        w
    }

    /// Upgrades the backend to `wasm` as the admin (no init arguments).
    pub fn upgrade_backend(&self, wasm: Vec<u8>) -> Result<(), RejectResponse> {
        self.ic.upgrade_canister(
            self.backend,
            wasm,
            candid::encode_args(()).unwrap(),
            Some(admin()),
        )
    }

    /// Runs until `who`'s creation is in `state` (at most 3,000 rounds).
    pub fn run_until_state(&self, who: Principal, state: CreationState) -> u64 {
        self.run_until(3_000, |w| w.status(who).unwrap().state == state)
    }

    /// Checks the reserve's books when this world goes out of scope (after an upgrade from a
    /// module whose interface predates them, say).
    pub fn check_accounting_at_end(&self) {
        self.check_accounting.set(true);
    }

    /// No accounting check at the end (a test that takes the backend's own cycles away).
    pub fn skip_accounting_check(&self) {
        self.check_accounting.set(false);
    }

    /// The emulator beneath, for faults, statistics and logs.
    #[cfg(not(feature = "pocketic"))]
    pub fn emu(&self) -> &emulator::Emulator {
        self.ic.emulator()
    }

    pub fn update<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        who: Principal,
        method: &str,
        args: A,
    ) -> R {
        self.try_update(self.backend, who, method, args)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    pub fn query<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        who: Principal,
        method: &str,
        args: A,
    ) -> R {
        self.try_query(self.backend, who, method, args)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    pub fn try_update<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        canister: Principal,
        who: Principal,
        method: &str,
        args: A,
    ) -> Result<R, RejectResponse> {
        update_candid_as(&self.ic, canister, who, method, args)
    }

    pub fn try_query<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        canister: Principal,
        who: Principal,
        method: &str,
        args: A,
    ) -> Result<R, RejectResponse> {
        query_candid_as(&self.ic, canister, who, method, args)
    }

    /// Calls the capsule API of `canister` as `who`.
    pub fn capsule<A: ArgumentEncoder, T: CandidType + for<'a> serde::Deserialize<'a>>(
        &self,
        canister: Principal,
        who: Principal,
        method: &str,
        args: A,
    ) -> Result<T, Error> {
        let (r,): (Result<T, Error>,) = self
            .try_update(canister, who, method, args)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"));
        r
    }

    /// Uploads `bytes` to `who`'s capsule on `canister` through the capsule API.
    pub fn upload(&self, canister: Principal, who: Principal, bytes: &[u8]) -> BlobDescriptor {
        let (hash, _) = blob_hashes(bytes);
        let upload = self.begin_upload(canister, who, bytes.len() as u64, Some(hash));
        self.put_chunks(canister, who, upload, bytes, 0..);
        self.capsule(canister, who, "finish_blob_upload", (upload,))
            .unwrap()
    }

    /// Begins an upload of `size` bytes into `who`'s capsule on `canister`; returns its id.
    pub fn begin_upload(
        &self,
        canister: Principal,
        who: Principal,
        size: u64,
        expected_hash: Option<[u8; 32]>,
    ) -> u64 {
        let req = BlobUploadRequest {
            size,
            expected_hash: expected_hash.map(ByteArray::new),
        };
        self.capsule(canister, who, "begin_blob_upload", (req,))
            .unwrap()
    }

    /// Puts the chunks of `bytes` whose indexes are in `indexes` into `upload`.
    pub fn put_chunks(
        &self,
        canister: Principal,
        who: Principal,
        upload: u64,
        bytes: &[u8],
        indexes: impl std::ops::RangeBounds<usize>,
    ) {
        for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
            if !indexes.contains(&i) {
                continue;
            }
            let _: Hash32 = self
                .capsule(
                    canister,
                    who,
                    "put_blob_chunk",
                    (upload, i as u64, ByteBuf::from(chunk.to_vec())),
                )
                .unwrap();
        }
    }

    /// A capsule for `who` on the backend: `memories` memories over the given blob sizes (each
    /// blob attached to some memories) and `connections` connections.
    pub fn fill_capsule(
        &self,
        who: Principal,
        blob_sizes: &[usize],
        memories: u64,
        connections: u32,
    ) -> Vec<BlobDescriptor> {
        self.fill_capsule_at(self.backend, who, blob_sizes, memories, connections)
    }

    /// [`World::fill_capsule`] on any canister serving the capsule API (a personal canister).
    pub fn fill_capsule_at(
        &self,
        b: Principal,
        who: Principal,
        blob_sizes: &[usize],
        memories: u64,
        connections: u32,
    ) -> Vec<BlobDescriptor> {
        let _: CapsuleInfo = self
            .capsule(
                b,
                who,
                "create_capsule",
                (CapsuleInput {
                    name: format!("{who}"),
                    bio: "e2e".into(),
                    settings: None,
                },),
            )
            .unwrap();
        let seed = who.as_slice().iter().map(|x| *x as u64).sum::<u64>();
        let blobs: Vec<BlobDescriptor> = blob_sizes
            .iter()
            .enumerate()
            .map(|(i, size)| self.upload(b, who, &data(*size, seed * 1000 + i as u64)))
            .collect();
        for i in 0..memories {
            let attached: Vec<BlobRef> = if blobs.is_empty() {
                vec![]
            } else {
                vec![blob_ref(&blobs[i as usize % blobs.len()], "image/jpeg")]
            };
            let input = MemoryInput {
                title: format!("memory {i}"),
                description: format!("about {i}"),
                tags: vec!["e2e".into()],
                kind: if attached.is_empty() {
                    MemoryKind::Note
                } else {
                    MemoryKind::Photo
                },
                blobs: attached,
                encryption: (i % 7 == 3).then(|| EncryptionEnvelope {
                    scheme: "x25519-xsalsa20poly1305".into(),
                    wrapped_key: ByteBuf::from(data(48, i)),
                }),
            };
            let _: Memory = self.capsule(b, who, "add_memory", (input,)).unwrap();
        }
        for n in 0..connections {
            let input = ConnectionInput {
                peer: user(1_000_000 + n),
                relationship: "friend".into(),
                status: ConnectionStatus::Accepted,
            };
            let _: Connection = self.capsule(b, who, "add_connection", (input,)).unwrap();
        }
        blobs
    }

    pub fn create_personal_canister(&self, who: Principal) -> Result<CreationRecord, FactoryError> {
        let (r,): (Result<CreationRecord, FactoryError>,) = self.update(
            who,
            "create_personal_canister",
            (CreatePersonalCanisterConfig::default(),),
        );
        r
    }

    pub fn status(&self, who: Principal) -> Result<CreationRecord, FactoryError> {
        let (r,): (Result<CreationRecord, FactoryError>,) =
            self.query(who, "get_creation_status", ());
        r
    }

    /// Whether the creation of every one of `owners` is in a final state.
    pub fn all_final(&self, owners: &[Principal]) -> bool {
        owners
            .iter()
            .all(|o| self.status(*o).unwrap().state.is_final())
    }

    /// Advances time and rounds until `done` holds or `max_rounds` passed; returns the rounds.
    pub fn run_until(&self, max_rounds: u64, mut done: impl FnMut(&World) -> bool) -> u64 {
        for round in 0..max_rounds {
            if done(self) {
                return round;
            }
            self.ic.advance_time(Duration::from_millis(200));
            self.ic.tick();
        }
        assert!(
            done(self),
            "condition not reached after {max_rounds} rounds\n{}",
            self.tail_of_trace()
        );
        max_rounds
    }

    /// Runs until `who`'s creation is final; returns its record.
    pub fn run_to_final(&self, who: Principal, max_rounds: u64) -> CreationRecord {
        for _ in 0..max_rounds {
            if self.status(who).is_ok_and(|r| r.state.is_final()) {
                return self.status(who).unwrap();
            }
            self.ic.advance_time(Duration::from_millis(200));
            self.ic.tick();
        }
        panic!(
            "the creation of {who} is not final after {max_rounds} rounds: {:#?}\n{}",
            self.status(who),
            self.tail_of_trace()
        );
    }

    /// The last lines of the emulator's message trace, for failure messages.
    #[cfg(feature = "pocketic")]
    pub fn tail_of_trace(&self) -> String {
        String::from("(no message trace on PocketIC)")
    }

    /// The last lines of the emulator's message trace, for failure messages.
    #[cfg(not(feature = "pocketic"))]
    pub fn tail_of_trace(&self) -> String {
        let t = self.emu().trace_string();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The reserve's state (`admin_get_reserve`, as the admin).
    pub fn reserve_status(&self) -> backend::factory::types::ReserveStatus {
        let (r,): (Result<backend::factory::types::ReserveStatus, FactoryError>,) =
            self.query(admin(), "admin_get_reserve", ());
        r.unwrap()
    }

    /// Checks the reserve's books: every cycle topped up is in the reserve or was consumed by a
    /// creation and not returned (`reserve + consumed - returned == topped up`), the reserve
    /// is backed by the canister's liquid balance (above its freezing reserve), what is
    /// spendable is that less the operating cycles, and today's spending is within the budget.
    pub fn assert_reserve_accounting(&self) -> backend::factory::types::ReserveStatus {
        let r = self.reserve_status();
        assert_eq!(
            r.reserve + r.total_consumed - r.total_returned,
            r.total_topped_up,
            "reserve {} + consumed {} - returned {} != topped up {}",
            r.reserve,
            r.total_consumed,
            r.total_returned,
            r.total_topped_up
        );
        assert!(
            r.reserve <= r.liquid_balance,
            "reserve {} exceeds the liquid balance {}",
            r.reserve,
            r.liquid_balance
        );
        assert_eq!(
            r.spendable,
            r.reserve
                .min(r.liquid_balance.saturating_sub(r.operating_cycles)),
            "spendable = the reserve as far as the liquid balance less the operating cycles backs it"
        );
        assert!(
            r.spent_today <= r.daily_cycle_budget,
            "spent today {} beyond the daily budget {}",
            r.spent_today,
            r.daily_cycle_budget
        );
        r
    }

    /// Runs rounds, advancing time by `step` before each, until `done` holds; panics after
    /// `max_rounds`. Returns the rounds run and the emulated time they took.
    pub fn run_for_until(
        &self,
        step: Duration,
        max_rounds: u64,
        mut done: impl FnMut(&World) -> bool,
    ) -> (u64, Duration) {
        let start = self.ic.get_time().as_nanos_since_unix_epoch();
        for round in 0..=max_rounds {
            if done(self) {
                let end = self.ic.get_time().as_nanos_since_unix_epoch();
                return (round, Duration::from_nanos(end - start));
            }
            if round == max_rounds {
                break;
            }
            self.ic.advance_time(step);
            self.ic.tick();
        }
        panic!(
            "condition not reached after {max_rounds} rounds of {step:?}\n{}",
            self.tail_of_trace()
        );
    }

    /// Timeline states of a record.
    pub fn states(r: &CreationRecord) -> Vec<CreationState> {
        r.timeline.iter().map(|t| t.state).collect()
    }
}

/// The backend's factory configuration (as the admin).
pub fn config(w: &World) -> backend::factory::types::FactoryConfig {
    let (c,): (Result<backend::factory::types::FactoryConfig, FactoryError>,) =
        w.query(admin(), "admin_get_config", ());
    c.unwrap()
}

/// Sets the factory configuration (as the admin); panics if refused.
pub fn set_config(w: &World, c: backend::factory::types::FactoryConfig) {
    let (r,): (Result<backend::factory::types::FactoryConfig, FactoryError>,) =
        w.update(admin(), "admin_set_config", (c,));
    r.unwrap();
}

/// The factory's statistics (as the admin).
pub fn stats(w: &World) -> backend::factory::types::FactoryStats {
    let (r,): (Result<backend::factory::types::FactoryStats, FactoryError>,) =
        w.query(admin(), "admin_get_stats", ());
    r.unwrap()
}

/// Runs `who`'s creation to its end and checks it `Completed`.
pub fn completed(w: &World, who: Principal) -> CreationRecord {
    let rec = w.run_to_final(who, 3_000);
    assert_eq!(
        rec.state,
        CreationState::Completed,
        "{:?}\n{}",
        rec.error,
        w.tail_of_trace()
    );
    rec
}

/// Everything of `who`'s capsule on the backend, as its owner reads it: the capsule, its
/// memories and its connections (first pages of 100).
pub type Everything = (CapsuleInfo, MemoryPage, ConnectionPage);

pub fn everything_of(w: &World, who: Principal) -> Everything {
    everything_at(w, w.backend, who)
}

/// [`everything_of`] on any canister serving the capsule API.
pub fn everything_at(w: &World, canister: Principal, who: Principal) -> Everything {
    let info: CapsuleInfo = w.capsule(canister, who, "get_capsule", ()).unwrap();
    let memories: MemoryPage = w
        .capsule(
            canister,
            who,
            "list_memories",
            (MemoryPageRequest {
                start_after: None,
                limit: 100,
            },),
        )
        .unwrap();
    let connections: ConnectionPage = w
        .capsule(
            canister,
            who,
            "list_connections",
            (ConnectionPageRequest {
                start_after: None,
                limit: 100,
            },),
        )
        .unwrap();
    (info, memories, connections)
}

/// The backend module of commit e8f49f3, the stable layout before the factory's indexes and the
/// upload-session indexes: upgrade tests start from a state it made (`e2e/fixtures/README.md`
/// says how it was built).
pub fn previous_backend() -> Vec<u8> {
    fixture("backend-e8f49f3.wasm.gz")
}

/// A file of `e2e/fixtures` (modules of earlier commits: `e2e/fixtures/README.md`).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- after the handoff

/// A personal canister's `cycles_outlook` reply (the `personal` crate itself cannot be a
/// dependency here: its canister entry points would be linked beside the backend's into one
/// native binary and collide).
pub use capsule::after_handoff::CyclesOutlook;

impl World {
    /// `canister`'s `cycles_outlook`, asked by `who`.
    pub fn cycles_outlook(
        &self,
        canister: Principal,
        who: Principal,
    ) -> Result<CyclesOutlook, RejectResponse> {
        self.try_update(canister, who, "cycles_outlook", ())
            .map(|(o,): (CyclesOutlook,)| o)
    }

    /// `who` asks the backend to purge their shared copy now.
    pub fn request_purge(&self, who: Principal) -> Result<CreationRecord, FactoryError> {
        let (r,): (Result<CreationRecord, FactoryError>,) =
            self.update(who, "purge_shared_capsule", ());
        r
    }

    /// Runs `rounds` rounds, `step` of emulated time apart.
    pub fn run_rounds(&self, rounds: u64, step: Duration) {
        for _ in 0..rounds {
            self.ic.advance_time(step);
            self.ic.tick();
        }
    }
}

/// The storage funding deposited into a creation's canisters after install (beyond the quote).
pub fn deposited(rec: &CreationRecord) -> u128 {
    rec.funding.as_ref().map_or(0, |f| f.deposited)
}

/// Everything a canister's timers ran, from the emulator's statistics: the system's global timer
/// (`canister_global_timer`) and the self-calls in which ic-cdk-timers runs each timer
/// (`<ic-cdk internal> timer_executor`), with the callbacks of the calls they made.
#[cfg(not(feature = "pocketic"))]
pub fn timer_stats(stats: &emulator::CanisterStats) -> emulator::MethodStats {
    stats.sum_of(|method| method.contains("timer"))
}
