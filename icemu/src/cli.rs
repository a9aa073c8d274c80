//! The command line: `icemu`'s arguments and subcommands (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::{files, run, serve};

/// The in-repo IC emulator: deploy and call canister wasm over a persistent state directory.
///
/// Every command loads the state directory, does its work and saves what changed. Calls run
/// rounds until their own reply and no further: work the canisters leave in flight (timers,
/// outstanding calls) goes on with `tick`, `advance`, `run-until-idle` or later calls.
///
/// Exit status: 0 on success; 10 + the reject code (11..16) when a call is rejected or traps
/// (the reject code, error code and message go to stderr); 2 on usage errors; 1 otherwise.
#[derive(Parser)]
#[command(name = "icemu", version)]
pub(crate) struct Cli {
    /// State directory (created when missing).
    #[arg(long, global = true, env = "ICEMU_STATE", default_value = ".icemu")]
    pub(crate) state: PathBuf,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum Cmd {
    /// Creates canister NAME (if new) and installs WASM (.wasm or .wasm.gz); an existing NAME
    /// is upgraded (or reinstalled with --mode reinstall).
    Deploy(DeployArgs),
    /// Calls METHOD of CANISTER with a candid text argument; prints the candid reply.
    Call(CallArgs),
    /// Adds N cycles to CANISTER's balance (provisional top-up).
    DepositCycles {
        /// Canister name or principal.
        canister: String,
        /// Cycles (underscores allowed).
        cycles: String,
    },
    /// Runs N rounds (default 1).
    Tick {
        /// Rounds.
        #[arg(default_value_t = 1)]
        n: u64,
    },
    /// Moves time forward by SECONDS (fractions allowed), then runs one round so due timers fire.
    Advance {
        /// Seconds.
        seconds: f64,
    },
    /// Runs rounds with emulated time passing (1 s per round by default, as on the IC) until
    /// nothing is in flight and nothing ran for --quiet-secs, or until a polled query's reply
    /// contains a text: `run-until-idle --until Completed --as ada --poll backend
    /// get_creation_status`. Exit status 3 when --max rounds pass first, or when the subnet
    /// goes idle before --until is reached.
    RunUntilIdle(run::RunArgs),
    /// Uploads files as blobs (begin_blob_upload, put_blob_chunk per 256 KiB, finish) with a
    /// progress bar; prints `<blob id>  <file>` per file, the blob id being what b3sum prints.
    Upload(files::UploadArgs),
    /// Downloads a blob (get_blob, get_blob_chunk per 256 KiB) to --out, verifying that its
    /// bytes hash to BLOB_ID (exit status 4 and nothing written when they do not).
    Download(files::DownloadArgs),
    /// Status of one canister or of all: controllers, module hash, cycles, memory.
    Status {
        /// Canister name or principal (all when omitted).
        canister: Option<String>,
    },
    /// Per-canister and per-method statistics (executions, instructions, bytes, cycles).
    Stats {
        /// Canister name or principal (all when omitted).
        canister: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints a public metadata section of CANISTER's module (as `dfx canister metadata`):
    /// `candid:service` (its interface), `name`.
    Metadata {
        /// Canister name or principal.
        canister: String,
        /// Section name without the `icp:public ` prefix.
        name: String,
    },
    /// Prints the canister log (debug prints and traps) of CANISTER.
    Logs {
        /// Canister name or principal.
        canister: String,
    },
    /// Prints the principal of identity NAME (names map deterministically to principals).
    Identity {
        /// Identity name (`anonymous` is the anonymous principal).
        name: String,
    },
    /// Lists canisters (`name principal`): deployed names, and derived names
    /// (`personal-ada`) for canisters created by canisters.
    Canisters,
    /// Encodes candid text to bytes: hex on stdout, or raw bytes to --out.
    Encode(EncodeArgs),
    /// Decodes candid bytes (hex argument, or --file) to candid text.
    Decode {
        /// Hex bytes.
        hex: Option<String>,
        /// Read raw bytes from this file instead.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Type the reply with this .did ...
        #[arg(long, requires = "method")]
        did: Option<PathBuf>,
        /// ... and the results of this method.
        #[arg(long)]
        method: Option<String>,
        /// Write the first blob in the value to FILE (raw) instead of printing.
        #[arg(long)]
        output_blob: Option<PathBuf>,
    },
    /// Fault injection (kept in the state until `fault clear`).
    #[command(subcommand)]
    Fault(FaultCmd),
    /// Serves the IC HTTP interface (status, call, query, read_state) on 127.0.0.1: see README.
    #[serde(skip)]
    Serve(serve::ServeArgs),
}

#[derive(Args, Serialize, Deserialize)]
pub(crate) struct DeployArgs {
    /// Canister name (used by later commands).
    pub(crate) name: String,
    /// The wasm module (.wasm or gzipped).
    pub(crate) wasm: PathBuf,
    /// Init (or upgrade) argument as candid text.
    #[arg(long, default_value = "()")]
    pub(crate) arg: String,
    /// Cycles of a new canister (underscores allowed).
    #[arg(long, default_value = "100_000_000_000_000")]
    pub(crate) cycles: String,
    /// Identity that deploys and becomes the controller.
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    pub(crate) as_: String,
    /// The canister's .did (argument types and reply field names). Default: `<stem>.did` next
    /// to the wasm, else `<base>/<base>.did` under the current directory, where <base> is the
    /// wasm's name up to the first `.` or `-` (`target/wasm/backend-test.wasm.gz` →
    /// `backend/backend.did`).
    #[arg(long)]
    pub(crate) did: Option<PathBuf>,
    /// install | reinstall | upgrade (default: install for a new name, upgrade otherwise).
    #[arg(long)]
    pub(crate) mode: Option<String>,
}

#[derive(Args, Serialize, Deserialize)]
pub(crate) struct CallArgs {
    /// Canister name or principal (`aaaaa-aa` for the management canister).
    pub(crate) canister: String,
    /// Method.
    pub(crate) method: String,
    /// Argument as candid text (default `()`).
    pub(crate) argument: Option<String>,
    /// Read the candid text argument from FILE (for huge `blob "..."` literals).
    #[arg(long, conflicts_with = "argument")]
    pub(crate) arg_file: Option<PathBuf>,
    /// Call as a query (the default for methods the .did marks `query`).
    #[arg(long)]
    pub(crate) query: bool,
    /// Call as an update even if the .did marks it `query`.
    #[arg(long, conflicts_with = "query")]
    pub(crate) update: bool,
    /// Identity to call as.
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    pub(crate) as_: String,
    /// Attach N cycles to the call. A test convenience: on the IC an ingress message carries no
    /// cycles, and you would route the call through a cycles wallet canister.
    #[arg(long)]
    pub(crate) with_cycles: Option<String>,
    /// .did for this call (overrides the one remembered at deploy).
    #[arg(long)]
    pub(crate) did: Option<PathBuf>,
    /// Write the first blob in the reply (e.g. inside `variant { Ok = blob "..." }`) to FILE,
    /// raw; the reply is then summarised instead of printed.
    #[arg(long)]
    pub(crate) output_blob: Option<PathBuf>,
    /// Print the reply as hex bytes instead of candid text.
    #[arg(long)]
    pub(crate) raw: bool,
}

#[derive(Args, Serialize, Deserialize)]
pub(crate) struct EncodeArgs {
    /// Candid text, e.g. `(record { a = 1 : nat })`.
    pub(crate) text: String,
    /// Type the arguments with this .did ...
    #[arg(long, requires = "method")]
    pub(crate) did: Option<PathBuf>,
    /// ... and the arguments of this method.
    #[arg(long)]
    pub(crate) method: Option<String>,
    /// Write raw bytes to FILE instead of printing hex.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum FaultCmd {
    /// Rejects the next COUNT requests to a canister (and method) with a reject code. With
    /// `--canister aaaaa-aa` it applies to management methods (create_canister, install_code,
    /// canister_info, update_settings, ...).
    Reject {
        /// Canister name or principal.
        #[arg(long)]
        canister: String,
        /// Method (any method when omitted).
        #[arg(long)]
        method: Option<String>,
        /// Reject code 1..6 (1 SYS_FATAL, 2 SYS_TRANSIENT, 3 DESTINATION_INVALID,
        /// 4 CANISTER_REJECT, 5 CANISTER_ERROR, 6 SYS_UNKNOWN).
        #[arg(long, default_value_t = 2)]
        code: u8,
        /// How many requests.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Reject message.
        #[arg(long, default_value = "injected fault")]
        message: String,
    },
    /// Makes METHOD of CANISTER trap whenever it is called.
    Trap {
        /// Canister.
        #[arg(long)]
        canister: String,
        /// Method.
        #[arg(long)]
        method: String,
    },
    /// Delays delivery of every message to CANISTER by ROUNDS extra rounds (0 clears).
    Delay {
        /// Canister (or `aaaaa-aa`).
        #[arg(long)]
        canister: String,
        /// Extra rounds.
        #[arg(long)]
        rounds: u64,
    },
    /// Holds every message to CANISTER (`aaaaa-aa` for the management canister).
    Pause {
        /// Canister.
        canister: String,
    },
    /// Resumes delivery to CANISTER.
    Resume {
        /// Canister.
        canister: String,
    },
    /// Stops CANISTER (as its first controller, through the management canister).
    Stop {
        /// Canister.
        canister: String,
    },
    /// Starts CANISTER.
    Start {
        /// Canister.
        canister: String,
    },
    /// Deletes CANISTER (stopping it first); its name is forgotten.
    Delete {
        /// Canister.
        canister: String,
    },
    /// Sets CANISTER's cycle balance.
    SetCycles {
        /// Canister.
        canister: String,
        /// Cycles.
        cycles: String,
    },
    /// Sets CANISTER's cycle balance to zero.
    DrainCycles {
        /// Canister.
        canister: String,
    },
    /// Makes the next N `create_canister` calls fail.
    FailCreateCanister {
        /// How many.
        #[arg(default_value_t = 1)]
        n: u32,
    },
    /// Makes the next N `install_code` calls fail.
    FailInstallCode {
        /// How many.
        #[arg(default_value_t = 1)]
        n: u32,
    },
    /// Lowers (or raises) limits; only the given ones change.
    Limits(LimitArgs),
    /// Removes every injected fault (limits stay as set).
    Clear,
    /// Prints the active faults.
    List,
}

#[derive(Args, Serialize, Deserialize)]
pub(crate) struct LimitArgs {
    /// Largest ingress message in bytes.
    #[arg(long)]
    pub(crate) max_ingress_bytes: Option<usize>,
    /// Largest inter-canister request in bytes.
    #[arg(long)]
    pub(crate) max_call_bytes: Option<usize>,
    /// Largest reply in bytes.
    #[arg(long)]
    pub(crate) max_reply_bytes: Option<usize>,
    /// Instructions per update / callback / timer message.
    #[arg(long)]
    pub(crate) update_instructions: Option<u64>,
    /// Instructions per query.
    #[arg(long)]
    pub(crate) query_instructions: Option<u64>,
    /// Instructions per install / upgrade.
    #[arg(long)]
    pub(crate) install_instructions: Option<u64>,
    /// Heap delta per canister per round in bytes.
    #[arg(long)]
    pub(crate) heap_delta_per_round: Option<u64>,
    /// Instructions per canister per round.
    #[arg(long)]
    pub(crate) round_instructions: Option<u64>,
    /// Stable memory limit in bytes.
    #[arg(long)]
    pub(crate) max_stable_bytes: Option<u64>,
    /// Restore every limit to the IC's defaults.
    #[arg(long)]
    pub(crate) reset: bool,
}
