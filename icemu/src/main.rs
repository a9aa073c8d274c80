//! `icemu`: the in-repo Internet Computer emulator as a command-line tool over a persistent
//! state directory, and a local HTTP endpoint (`icemu serve`). See `README.md`.

mod admin;
mod files;
mod http;
mod meta;
mod run;
mod serve;
mod state;
mod text;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use candid::{Nat, Principal};
use clap::{Args, Parser, Subcommand};
use emulator::{Emulator, RejectCode, RejectResponse};
use ic_management_canister_types as mgmt;
use serde::{Deserialize, Serialize};

use state::{Named, Opened, StateDir};
use text::Interface;

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
struct Cli {
    /// State directory (created when missing).
    #[arg(long, global = true, env = "ICEMU_STATE", default_value = ".icemu")]
    state: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Serialize, Deserialize)]
enum Cmd {
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
    /// Serves the HTTP endpoint on 127.0.0.1 (see README: POST /api/v1/call ...).
    #[serde(skip)]
    Serve(serve::ServeArgs),
}

#[derive(Args, Serialize, Deserialize)]
struct DeployArgs {
    /// Canister name (used by later commands).
    name: String,
    /// The wasm module (.wasm or gzipped).
    wasm: PathBuf,
    /// Init (or upgrade) argument as candid text.
    #[arg(long, default_value = "()")]
    arg: String,
    /// Cycles of a new canister (underscores allowed).
    #[arg(long, default_value = "100_000_000_000_000")]
    cycles: String,
    /// Identity that deploys and becomes the controller.
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    as_: String,
    /// The canister's .did (argument types and reply field names). Default: `<stem>.did` next
    /// to the wasm, else `<base>/<base>.did` under the current directory, where <base> is the
    /// wasm's name up to the first `.` or `-` (`target/wasm/backend-test.wasm.gz` →
    /// `backend/backend.did`).
    #[arg(long)]
    did: Option<PathBuf>,
    /// install | reinstall | upgrade (default: install for a new name, upgrade otherwise).
    #[arg(long)]
    mode: Option<String>,
}

#[derive(Args, Serialize, Deserialize)]
struct CallArgs {
    /// Canister name or principal (`aaaaa-aa` for the management canister).
    canister: String,
    /// Method.
    method: String,
    /// Argument as candid text (default `()`).
    argument: Option<String>,
    /// Read the candid text argument from FILE (for huge `blob "..."` literals).
    #[arg(long, conflicts_with = "argument")]
    arg_file: Option<PathBuf>,
    /// Call as a query (the default for methods the .did marks `query`).
    #[arg(long)]
    query: bool,
    /// Call as an update even if the .did marks it `query`.
    #[arg(long, conflicts_with = "query")]
    update: bool,
    /// Identity to call as.
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    as_: String,
    /// Attach N cycles to the call. A test convenience: on the IC an ingress message carries no
    /// cycles, and you would route the call through a cycles wallet canister.
    #[arg(long)]
    with_cycles: Option<String>,
    /// .did for this call (overrides the one remembered at deploy).
    #[arg(long)]
    did: Option<PathBuf>,
    /// Write the first blob in the reply (e.g. inside `variant { Ok = blob "..." }`) to FILE,
    /// raw; the reply is then summarised instead of printed.
    #[arg(long)]
    output_blob: Option<PathBuf>,
    /// Print the reply as hex bytes instead of candid text.
    #[arg(long)]
    raw: bool,
}

#[derive(Args, Serialize, Deserialize)]
struct EncodeArgs {
    /// Candid text, e.g. `(record { a = 1 : nat })`.
    text: String,
    /// Type the arguments with this .did ...
    #[arg(long, requires = "method")]
    did: Option<PathBuf>,
    /// ... and the arguments of this method.
    #[arg(long)]
    method: Option<String>,
    /// Write raw bytes to FILE instead of printing hex.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand, Serialize, Deserialize)]
enum FaultCmd {
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
struct LimitArgs {
    /// Largest ingress message in bytes.
    #[arg(long)]
    max_ingress_bytes: Option<usize>,
    /// Largest inter-canister request in bytes.
    #[arg(long)]
    max_call_bytes: Option<usize>,
    /// Largest reply in bytes.
    #[arg(long)]
    max_reply_bytes: Option<usize>,
    /// Instructions per update / callback / timer message.
    #[arg(long)]
    update_instructions: Option<u64>,
    /// Instructions per query.
    #[arg(long)]
    query_instructions: Option<u64>,
    /// Instructions per install / upgrade.
    #[arg(long)]
    install_instructions: Option<u64>,
    /// Heap delta per canister per round in bytes.
    #[arg(long)]
    heap_delta_per_round: Option<u64>,
    /// Instructions per canister per round.
    #[arg(long)]
    round_instructions: Option<u64>,
    /// Stable memory limit in bytes.
    #[arg(long)]
    max_stable_bytes: Option<u64>,
    /// Restore every limit to the IC's defaults.
    #[arg(long)]
    reset: bool,
}

/// A call that was rejected (exit status 10 + reject code).
#[derive(Debug)]
struct Rejected(RejectResponse);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.0;
        write!(
            f,
            "rejected: reject code {} ({:?}), error code IC{:04} ({:?}): {}",
            r.reject_code as u32,
            r.reject_code,
            r.error_code as u32,
            r.error_code,
            r.reject_message
        )
    }
}

impl std::error::Error for Rejected {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(exit_status(run(cli), &mut std::io::stderr()))
}

/// Exit with this status (the output was printed already: a forwarded command).
#[derive(Debug)]
struct ExitWith(u8);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitWith {}

/// The exit status of a command's result, printing the error to `err`.
fn exit_status(r: Result<()>, err: &mut dyn Write) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            if let Some(ExitWith(c)) = e.downcast_ref::<ExitWith>() {
                *c
            } else if let Some(r) = e.downcast_ref::<Rejected>() {
                let _ = writeln!(err, "icemu: {r}");
                10 + r.0.reject_code as u8
            } else if let Some(r) = e.downcast_ref::<run::NotReached>() {
                let _ = writeln!(err, "icemu: {r}");
                3
            } else if e.downcast_ref::<files::HashMismatch>().is_some() {
                let _ = writeln!(err, "icemu: error: {e:#}");
                4
            } else {
                let _ = writeln!(err, "icemu: error: {e:#}");
                1
            }
        }
    }
}

/// Parses a number with optional `_` separators.
pub fn parse_u128(s: &str) -> Result<u128> {
    s.replace('_', "")
        .parse()
        .map_err(|_| anyhow!("not a number: {s}"))
}

fn run(cli: Cli) -> Result<()> {
    if let Cmd::Identity { name } = &cli.cmd {
        println!("{}", state::identity(name));
        return Ok(());
    }
    if let Cmd::Encode(a) = &cli.cmd {
        let bytes = match (&a.did, &a.method) {
            (Some(did), Some(m)) => {
                let i = Interface::load(did)?;
                let (args, _, _) = i
                    .method(m)
                    .ok_or_else(|| anyhow!("{} has no method {m}", did.display()))?;
                i.encode(&a.text, &args)?
            }
            _ => text::encode_untyped(&a.text)?,
        };
        match &a.out {
            Some(p) => std::fs::write(p, &bytes)?,
            None => println!("{}", hex::encode(&bytes)),
        }
        return Ok(());
    }
    if let Cmd::Decode {
        hex: h,
        file,
        did,
        method,
        output_blob,
    } = &cli.cmd
    {
        let bytes = match (h, file) {
            (_, Some(f)) => std::fs::read(f)?,
            (Some(h), None) => hex::decode(h.trim())?,
            _ => bail!("give hex bytes or --file"),
        };
        let args = match (did, method) {
            (Some(did), Some(m)) => {
                let i = Interface::load(did)?;
                let (_, rets, _) = i
                    .method(m)
                    .ok_or_else(|| anyhow!("{} has no method {m}", did.display()))?;
                i.decode(&bytes, &rets)?
            }
            _ => text::decode_untyped(&bytes)?,
        };
        match output_blob {
            Some(p) => {
                let blob = text::first_blob(&args)
                    .ok_or_else(|| anyhow!("the value has no blob: {args}"))?;
                std::fs::write(p, &blob)?;
                println!("{} bytes written to {}", blob.len(), p.display());
            }
            None => println!("{args}"),
        }
        return Ok(());
    }
    if let Cmd::Serve(args) = cli.cmd {
        let st = StateDir::open(&cli.state)?;
        return serve::serve(st, args);
    }
    let cmd = cli.cmd;
    let info = match StateDir::open_or_served(&cli.state)? {
        Opened::Local(mut st) => return with_std(|io| exec_and_save(&mut st, cmd, io)),
        Opened::Served(info) => info,
    };
    // `icemu serve` holds the state: it runs the command (paths made absolute here first).
    let cmd = absolutize(cmd)?;
    match admin::forward(&info, &cmd) {
        Ok(reply) => {
            print!("{}", reply.stdout);
            eprint!("{}", reply.stderr);
            let _ = std::io::stdout().flush();
            Err(ExitWith(reply.exit).into())
        }
        Err(admin::ForwardError::Unreachable(e)) => {
            // The server stopped in between: wait for its lock as usual.
            eprintln!(
                "icemu: icemu serve at {} is not answering ({e}); opening the state here",
                info.url
            );
            let mut st = StateDir::open(&cli.state)?;
            with_std(|io| exec_and_save(&mut st, cmd, io))
        }
        Err(admin::ForwardError::Other(e)) => Err(e),
    }
}

/// Runs a state command here and saves (after a call also when it failed).
fn exec_and_save(st: &mut StateDir, cmd: Cmd, io: &mut Io) -> Result<()> {
    // Commands that run messages leave a changed state also when they fail.
    let is_call = matches!(
        cmd,
        Cmd::Call(_) | Cmd::RunUntilIdle(_) | Cmd::Upload(_) | Cmd::Download(_)
    );
    let r = exec(st, cmd, io);
    if r.is_ok() || is_call {
        st.save()?;
    }
    r
}

/// Makes the paths of a command absolute (against this process's directory) and resolves the
/// default `.did` of a deploy here, so that another process (`icemu serve`) can run it.
fn absolutize(cmd: Cmd) -> Result<Cmd> {
    let abs = |p: PathBuf| -> Result<PathBuf> { Ok(std::path::absolute(&p)?) };
    let opt = |p: Option<PathBuf>| -> Result<Option<PathBuf>> { p.map(abs).transpose() };
    Ok(match cmd {
        Cmd::Deploy(mut a) => {
            a.did = a.did.clone().or_else(|| guess_did(&a.wasm));
            a.did = opt(a.did)?;
            a.wasm = abs(a.wasm)?;
            Cmd::Deploy(a)
        }
        Cmd::Call(mut a) => {
            a.did = opt(a.did)?;
            a.arg_file = opt(a.arg_file)?;
            a.output_blob = opt(a.output_blob)?;
            Cmd::Call(a)
        }
        Cmd::Upload(mut a) => {
            a.files = a.files.into_iter().map(abs).collect::<Result<_>>()?;
            Cmd::Upload(a)
        }
        Cmd::Download(mut a) => {
            a.out = abs(a.out)?;
            Cmd::Download(a)
        }
        c => c,
    })
}

/// Runs a command received by `icemu serve`'s admin endpoint on its state; returns the exit
/// status and what the command printed.
pub(crate) fn exec_forwarded(st: &mut StateDir, cmd_json: &[u8]) -> admin::AdminReply {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let exit = {
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            progress: false,
        };
        match serde_json::from_slice::<Cmd>(cmd_json) {
            Err(e) => {
                let _ = writeln!(io.err, "icemu: error: not a forwarded command: {e}");
                2
            }
            Ok(Cmd::Serve(_)) => {
                let _ = writeln!(
                    io.err,
                    "icemu: error: the state directory is already served"
                );
                1
            }
            Ok(cmd) => {
                let read_only = matches!(
                    cmd,
                    Cmd::Status { .. }
                        | Cmd::Metadata { .. }
                        | Cmd::Stats { .. }
                        | Cmd::Logs { .. }
                        | Cmd::Canisters
                        | Cmd::Fault(FaultCmd::List)
                );
                let r = exec(st, cmd, &mut io);
                if !read_only && let Err(e) = st.save() {
                    let _ = writeln!(io.err, "icemu: saving failed: {e:#}");
                }
                exit_status(r, io.err)
            }
        }
    };
    admin::AdminReply {
        exit,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// Where a command prints: stdout / stderr here, buffers when run for another process.
pub(crate) struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// Whether progress bars may be drawn (on this process's terminal; never when the
    /// command runs for another process).
    progress: bool,
}

/// Runs `f` printing to this process's stdout / stderr.
fn with_std<R>(f: impl FnOnce(&mut Io) -> R) -> R {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    f(&mut Io {
        out: &mut out,
        err: &mut err,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    })
}

/// Writes a line; a reader that stopped early (`| grep -q`) is not a failure.
fn write_line(w: &mut dyn Write, args: std::fmt::Arguments) -> Result<()> {
    match w.write_fmt(args).and_then(|()| w.write_all(b"\n")) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

macro_rules! outln {
    ($io:expr, $($t:tt)*) => { write_line(&mut *$io.out, format_args!($($t)*))? };
}
macro_rules! errln {
    ($io:expr, $($t:tt)*) => { write_line(&mut *$io.err, format_args!($($t)*))? };
}

/// Runs a command on an open state (not saved here).
fn exec(st: &mut StateDir, cmd: Cmd, io: &mut Io) -> Result<()> {
    // Canisters created by canisters since the last command get their names.
    if let Err(e) = meta::derive_names(st) {
        errln!(io, "icemu: warning: naming new canisters: {e:#}");
    }
    match cmd {
        Cmd::Serve(_) => bail!("serve is not a state command"),
        Cmd::Deploy(a) => deploy(st, a, io)?,
        Cmd::Call(a) => return call(st, a, io),
        Cmd::DepositCycles { canister, cycles } => {
            let id = st.canister(&canister)?;
            let amount = parse_u128(&cycles)?;
            let arg = mgmt::ProvisionalTopUpCanisterArgs {
                canister_id: id,
                amount: Nat::from(amount),
            };
            let sender = st.identity("admin");
            let () = st
                .emu
                .management(sender, "provisional_top_up_canister", &arg)
                .map_err(Rejected)?;
            let bal = st.emu.canister_status(id).map(|s| s.cycles);
            outln!(
                io,
                "{} cycles",
                bal.map(|b| b.to_string()).unwrap_or_default()
            );
        }
        Cmd::Tick { n } => {
            st.emu.tick_n(n);
            outln!(io, "round {}", st.emu.round());
        }
        Cmd::Advance { seconds } => {
            st.emu.advance_time(Duration::from_secs_f64(seconds));
            st.emu.tick();
            outln!(
                io,
                "round {}, time {} ns",
                st.emu.round(),
                st.emu.time_nanos()
            );
        }
        Cmd::RunUntilIdle(a) => {
            let r = run::run_until_idle(st, a, io);
            // Canisters created during the run get their names now.
            let _ = meta::derive_names(st);
            return r;
        }
        Cmd::Upload(a) => return files::upload(st, a, io),
        Cmd::Metadata { canister, name } => {
            let id = st.canister(&canister)?;
            let bytes = meta::metadata(st, id, &name)?.ok_or_else(|| {
                anyhow!(
                    "canister {canister} has no module, or its module no public metadata `{name}`"
                )
            })?;
            io.out.write_all(&bytes)?;
        }
        Cmd::Download(a) => return files::download(st, a, io),
        Cmd::Status { canister } => status(st, canister, io)?,
        Cmd::Stats { canister, json } => stats(st, canister, json, io)?,
        Cmd::Logs { canister } => {
            let id = st.canister(&canister)?;
            if !st.emu.canister_exists(id) {
                bail!("canister {canister} does not exist");
            }
            for (i, t, m) in st.emu.canister_log(id) {
                outln!(io, "[{i}. {t}]: {m}");
            }
        }
        Cmd::Canisters => {
            for (name, n) in &st.names.canisters {
                if n.derived {
                    outln!(io, "{name} {}  (created by a canister; name derived)", n.id);
                } else {
                    outln!(io, "{name} {}", n.id);
                }
            }
            for id in st.emu.canister_ids() {
                if st.name_of(id).is_none() {
                    outln!(io, "- {id}  (no module installed yet)");
                }
            }
        }
        Cmd::Fault(f) => fault(st, f, io)?,
        Cmd::Identity { .. } | Cmd::Encode(_) | Cmd::Decode { .. } => {
            bail!("not a state command")
        }
    }
    Ok(())
}

/// The .did to use for a wasm when `--did` is not given (see `DeployArgs::did`).
fn guess_did(wasm: &Path) -> Option<PathBuf> {
    let file = wasm.file_name()?.to_str()?;
    let stem = file
        .strip_suffix(".wasm.gz")
        .or_else(|| file.strip_suffix(".wasm"))
        .unwrap_or(file);
    let beside = wasm.with_file_name(format!("{stem}.did"));
    if beside.is_file() {
        return Some(beside);
    }
    let base = stem.split(['.', '-']).next()?;
    let guess = PathBuf::from(base).join(format!("{base}.did"));
    guess.is_file().then_some(guess)
}

fn deploy(st: &mut StateDir, a: DeployArgs, io: &mut Io) -> Result<()> {
    let t0 = Instant::now();
    let wasm = std::fs::read(&a.wasm).with_context(|| format!("reading {}", a.wasm.display()))?;
    let did = a.did.clone().or_else(|| guess_did(&a.wasm));
    let did = match did {
        Some(d) => Some(
            d.canonicalize()
                .with_context(|| format!("resolving {}", d.display()))?,
        ),
        None => None,
    };
    let iface = did.as_deref().map(Interface::load).transpose()?;
    let arg = match &iface {
        Some(i) => i.encode(&a.arg, &i.init_args())?,
        None => text::encode_untyped(&a.arg)?,
    };
    let sender = st.identity(&a.as_);
    let existing = st
        .names
        .canisters
        .get(&a.name)
        .map(|n| n.id)
        .filter(|id| st.emu.canister_exists(*id));
    let (id, mode) = match existing {
        Some(id) => {
            let mode = match a.mode.as_deref().unwrap_or("upgrade") {
                "upgrade" => mgmt::CanisterInstallMode::Upgrade(None),
                "reinstall" => mgmt::CanisterInstallMode::Reinstall,
                "install" => mgmt::CanisterInstallMode::Install,
                m => bail!("unknown mode {m} (install | reinstall | upgrade)"),
            };
            (id, mode)
        }
        None => {
            let cycles = parse_u128(&a.cycles)?;
            let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
                amount: Some(Nat::from(cycles)),
                settings: Some(mgmt::CanisterSettings {
                    controllers: Some(vec![sender]),
                    ..Default::default()
                }),
                specified_id: None,
                sender_canister_version: None,
            };
            let r: mgmt::CanisterIdRecord = st
                .emu
                .management(sender, "provisional_create_canister_with_cycles", &args)
                .map_err(Rejected)?;
            (r.canister_id, mgmt::CanisterInstallMode::Install)
        }
    };
    let max = st.emu.config().max_ingress_bytes;
    if wasm.len() + arg.len() + 1024 <= max {
        let args = mgmt::InstallCodeArgs {
            mode,
            canister_id: id,
            wasm_module: wasm,
            arg,
            sender_canister_version: None,
        };
        let () = st
            .emu
            .management(sender, "install_code", &args)
            .map_err(Rejected)?;
    } else {
        // Too big for one message: upload chunks into the canister's own chunk store.
        let mut hashes = Vec::new();
        for chunk in wasm.chunks(1 << 20) {
            let up = mgmt::UploadChunkArgs {
                canister_id: id,
                chunk: chunk.to_vec(),
            };
            let h: mgmt::ChunkHash = st
                .emu
                .management(sender, "upload_chunk", &up)
                .map_err(Rejected)?;
            hashes.push(h);
        }
        let args = mgmt::InstallChunkedCodeArgs {
            mode,
            target_canister: id,
            store_canister: None,
            chunk_hashes_list: hashes,
            wasm_module_hash: emulator::engine::sha256(&wasm).to_vec(),
            arg,
            sender_canister_version: None,
        };
        let () = st
            .emu
            .management(sender, "install_chunked_code", &args)
            .map_err(Rejected)?;
        let clear = mgmt::ClearChunkStoreArgs { canister_id: id };
        let () = st
            .emu
            .management(sender, "clear_chunk_store", &clear)
            .map_err(Rejected)?;
    }
    st.names.canisters.insert(
        a.name.clone(),
        Named {
            id,
            did: did.clone(),
            derived: false,
        },
    );
    outln!(io, "{} {id}", a.name);
    errln!(
        io,
        "icemu: deployed {} ({}){} in {:.2?}",
        a.name,
        a.wasm.display(),
        did.map(|d| format!(", types from {}", d.display()))
            .unwrap_or_default(),
        t0.elapsed()
    );
    Ok(())
}

fn call(st: &mut StateDir, a: CallArgs, io: &mut Io) -> Result<()> {
    let id = st.canister(&a.canister)?;
    let sender = st.identity(&a.as_);
    let iface = interface_of(st, id, a.did.as_deref())?;
    let typed = iface.as_ref().and_then(|i| i.method(&a.method));
    let arg_text = match (&a.argument, &a.arg_file) {
        (_, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (Some(t), None) => t.clone(),
        (None, None) => "()".into(),
    };
    let arg = match (&iface, &typed) {
        (Some(i), Some((args, _, _))) => i.encode(&arg_text, args)?,
        _ => text::encode_untyped(&arg_text)?,
    };
    let query = a.query || (!a.update && typed.as_ref().is_some_and(|t| t.2));
    let cycles = a.with_cycles.as_deref().map(parse_u128).transpose()?;
    let reply = if query {
        st.emu.query(id, sender, &a.method, arg)
    } else if st.served {
        // `serve`'s background rounds run the message; wait for them.
        served_update(&st.emu, id, sender, &a.method, arg, cycles.unwrap_or(0))
    } else if let Some(c) = cycles {
        st.emu.update_with_cycles(id, sender, &a.method, arg, c)
    } else {
        st.emu.update(id, sender, &a.method, arg)
    }
    .map_err(Rejected)?;
    if a.raw {
        outln!(io, "{}", hex::encode(&reply));
        return Ok(());
    }
    let decoded = match (&iface, &typed) {
        (Some(i), Some((_, rets, _))) => i.decode(&reply, rets)?,
        _ => text::decode_untyped(&reply)?,
    };
    match &a.output_blob {
        Some(path) => {
            let blob = text::first_blob(&decoded)
                .ok_or_else(|| anyhow!("the reply has no blob: {decoded}"))?;
            std::fs::write(path, &blob).with_context(|| format!("writing {}", path.display()))?;
            outln!(io, "{} bytes written to {}", blob.len(), path.display());
        }
        None => outln!(io, "{decoded}"),
    }
    Ok(())
}

/// The candid interface of canister `id`: `did` when given, else the `.did` remembered at
/// deploy, else the `candid:service` metadata embedded in its module, else none (untyped).
pub(crate) fn interface_of(
    st: &StateDir,
    id: Principal,
    did: Option<&Path>,
) -> Result<Option<Interface>> {
    if let Some(d) = did.map(Path::to_path_buf).or_else(|| st.did_of(id)) {
        return Interface::load(&d).map(Some);
    }
    meta::embedded_interface(st, id)
}

/// An update call while `serve` runs the rounds: submits it and waits for its reply.
pub(crate) fn served_update(
    emu: &Emulator,
    canister: Principal,
    sender: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
) -> Result<Vec<u8>, RejectResponse> {
    served_wait(
        emu,
        emu.submit_with_cycles(canister, sender, method, arg, cycles)?,
        SERVED_CALL_TIMEOUT,
    )
}

/// How long a forwarded update call waits for `serve`'s rounds to reply.
const SERVED_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits (polling) for the background rounds of `serve` to complete message `id`.
pub(crate) fn served_wait(
    emu: &Emulator,
    id: emulator::MessageId,
    timeout: Duration,
) -> Result<Vec<u8>, RejectResponse> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = emu.take_ingress_status(id) {
            return r;
        }
        if Instant::now() > deadline {
            return Err(RejectResponse::new(
                emulator::ErrorCode::IngressMessageTimeout,
                format!(
                    "no reply within {} s (the message is still in flight)",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn status(st: &StateDir, canister: Option<String>, io: &mut Io) -> Result<()> {
    let ids = match canister {
        Some(c) => vec![st.canister(&c)?],
        None => st.emu.canister_ids(),
    };
    for id in ids {
        let s = st
            .emu
            .canister_status(id)
            .ok_or_else(|| anyhow!("canister {id} does not exist"))?;
        let name = st
            .name_of(id)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        outln!(io, "canister {id}{name}");
        outln!(io, "  status: {:?}", s.status);
        let ctrl: Vec<String> = s
            .settings
            .controllers
            .iter()
            .map(|c| {
                let who = st
                    .names
                    .identities
                    .iter()
                    .find(|(_, p)| *p == c)
                    .map(|(n, _)| format!(" ({n})"))
                    .or_else(|| st.name_of(*c).map(|n| format!(" ({n})")))
                    .unwrap_or_default();
                format!("{c}{who}")
            })
            .collect();
        outln!(io, "  controllers: {}", ctrl.join(", "));
        outln!(
            io,
            "  module hash: {}",
            s.module_hash
                .as_ref()
                .map(|h| format!("0x{}", hex::encode(h)))
                .unwrap_or_else(|| "none".into())
        );
        outln!(io, "  cycles: {}", s.cycles);
        outln!(
            io,
            "  memory: {} bytes (heap {}, stable {})",
            s.memory_size,
            s.memory_metrics.wasm_memory_size,
            s.memory_metrics.stable_memory_size
        );
        outln!(io, "  version: {}", s.version);
    }
    outln!(
        io,
        "round {}, time {} ns, {} messages in flight",
        st.emu.round(),
        st.emu.time_nanos(),
        st.emu.messages_in_flight()
    );
    Ok(())
}

fn stats(st: &StateDir, canister: Option<String>, json: bool, io: &mut Io) -> Result<()> {
    let only = canister.map(|c| st.canister(&c)).transpose()?;
    let all: Vec<(Principal, emulator::CanisterStats)> = st
        .emu
        .all_stats()
        .into_iter()
        .filter(|(id, _)| only.is_none_or(|o| o == *id))
        .collect();
    if json {
        let v: serde_json::Value = all
            .iter()
            .map(|(id, s)| {
                let key = st.name_of(*id).unwrap_or_else(|| id.to_text());
                (
                    key,
                    serde_json::json!({
                        "id": id.to_text(),
                        "rounds": s.rounds,
                        "total": s.total,
                        "methods": s.methods,
                    }),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        outln!(io, "{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (id, s) in all {
        let name = st
            .name_of(id)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        outln!(
            io,
            "canister {id}{name}: {} rounds with executions",
            s.rounds
        );
        outln!(
            io,
            "  {:<32} {:>8} {:>8} {:>16} {:>14} {:>12} {:>12} {:>16} {:>6}",
            "method",
            "execs",
            "calls in",
            "instructions",
            "max instr",
            "bytes in",
            "bytes out",
            "cycles burnt",
            "traps"
        );
        let rows = s
            .methods
            .iter()
            .map(|(m, v)| (m.as_str(), v))
            .chain(std::iter::once(("(total)", &s.total)));
        for (m, v) in rows {
            outln!(
                io,
                "  {:<32} {:>8} {:>8} {:>16} {:>14} {:>12} {:>12} {:>16} {:>6}",
                m,
                v.executions,
                v.calls_received,
                v.instructions_total,
                v.instructions_max,
                v.bytes_in,
                v.bytes_out,
                v.cycles_burnt,
                v.traps
            );
        }
    }
    Ok(())
}

fn reject_code(code: u8) -> Result<RejectCode> {
    Ok(match code {
        1 => RejectCode::SysFatal,
        2 => RejectCode::SysTransient,
        3 => RejectCode::DestinationInvalid,
        4 => RejectCode::CanisterReject,
        5 => RejectCode::CanisterError,
        6 => RejectCode::SysUnknown,
        c => bail!("reject code {c} is not 1..6"),
    })
}

/// Resolves a canister for faults (`aaaaa-aa` allowed).
fn fault_target(st: &StateDir, c: &str) -> Result<Principal> {
    if c == "aaaaa-aa" || c == "management" || c == "ic" {
        return Ok(Principal::management_canister());
    }
    st.canister(c)
}

/// Calls a management method on `id` as its first controller.
fn as_controller(st: &mut StateDir, id: Principal, method: &str) -> Result<()> {
    let s = st
        .emu
        .canister_status(id)
        .ok_or_else(|| anyhow!("canister {id} does not exist"))?;
    let ctrl = *s
        .settings
        .controllers
        .first()
        .ok_or_else(|| anyhow!("canister {id} has no controller"))?;
    let () = st
        .emu
        .management(ctrl, method, &mgmt::CanisterIdRecord { canister_id: id })
        .map_err(Rejected)?;
    Ok(())
}

fn fault(st: &mut StateDir, f: FaultCmd, io: &mut Io) -> Result<()> {
    match f {
        FaultCmd::Reject {
            canister,
            method,
            code,
            count,
            message,
        } => {
            let id = fault_target(st, &canister)?;
            st.emu
                .reject_next(id, method.as_deref(), count, reject_code(code)?, &message);
        }
        FaultCmd::Trap { canister, method } => {
            let id = st.canister(&canister)?;
            st.emu.trap_method(id, &method);
        }
        FaultCmd::Delay { canister, rounds } => {
            let id = fault_target(st, &canister)?;
            st.emu.delay_delivery(id, rounds);
        }
        FaultCmd::Pause { canister } => {
            let id = fault_target(st, &canister)?;
            st.emu.pause(id);
        }
        FaultCmd::Resume { canister } => {
            let id = fault_target(st, &canister)?;
            st.emu.resume(id);
        }
        FaultCmd::Stop { canister } => {
            let id = st.canister(&canister)?;
            as_controller(st, id, "stop_canister")?;
        }
        FaultCmd::Start { canister } => {
            let id = st.canister(&canister)?;
            as_controller(st, id, "start_canister")?;
        }
        FaultCmd::Delete { canister } => {
            let id = st.canister(&canister)?;
            let stopped = st
                .emu
                .canister_status(id)
                .is_some_and(|s| s.status == mgmt::CanisterStatusType::Stopped);
            if !stopped {
                as_controller(st, id, "stop_canister")?;
            }
            as_controller(st, id, "delete_canister")?;
            st.names.canisters.retain(|_, n| n.id != id);
        }
        FaultCmd::SetCycles { canister, cycles } => {
            let id = st.canister(&canister)?;
            st.emu.set_cycles(id, parse_u128(&cycles)?);
        }
        FaultCmd::DrainCycles { canister } => {
            let id = st.canister(&canister)?;
            st.emu.drain_cycles(id);
        }
        FaultCmd::FailCreateCanister { n } => st.emu.fail_next_create_canister(n),
        FaultCmd::FailInstallCode { n } => st.emu.fail_next_install_code(n),
        FaultCmd::Limits(l) => {
            let d = emulator::Config::default();
            st.emu.update_config(|c| {
                if l.reset {
                    c.max_ingress_bytes = d.max_ingress_bytes;
                    c.max_call_bytes = d.max_call_bytes;
                    c.max_reply_bytes = d.max_reply_bytes;
                    c.update_instruction_limit = d.update_instruction_limit;
                    c.query_instruction_limit = d.query_instruction_limit;
                    c.install_instruction_limit = d.install_instruction_limit;
                    c.heap_delta_per_round = d.heap_delta_per_round;
                    c.round_instructions_per_canister = d.round_instructions_per_canister;
                    c.max_stable_bytes = d.max_stable_bytes;
                }
                macro_rules! set {
                    ($f:ident, $g:ident) => {
                        if let Some(v) = l.$f {
                            c.$g = v;
                        }
                    };
                }
                set!(max_ingress_bytes, max_ingress_bytes);
                set!(max_call_bytes, max_call_bytes);
                set!(max_reply_bytes, max_reply_bytes);
                set!(update_instructions, update_instruction_limit);
                set!(query_instructions, query_instruction_limit);
                set!(install_instructions, install_instruction_limit);
                set!(heap_delta_per_round, heap_delta_per_round);
                set!(round_instructions, round_instructions_per_canister);
                set!(max_stable_bytes, max_stable_bytes);
            });
            let c = st.emu.config();
            outln!(
                io,
                "ingress {} B, call {} B, reply {} B, update {} / query {} / install {} instructions, heap delta {} B/round, {} instructions/round, stable {} B",
                c.max_ingress_bytes,
                c.max_call_bytes,
                c.max_reply_bytes,
                c.update_instruction_limit,
                c.query_instruction_limit,
                c.install_instruction_limit,
                c.heap_delta_per_round,
                c.round_instructions_per_canister,
                c.max_stable_bytes
            );
        }
        FaultCmd::Clear => st.emu.clear_faults(),
        FaultCmd::List => {
            let f = st.emu.faults();
            outln!(io, "{}", serde_json::to_string_pretty(&f)?);
        }
    }
    Ok(())
}

/// Emulator extension used by `call --with-cycles`.
trait WithCycles {
    fn update_with_cycles(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Vec<u8>, RejectResponse>;
}

impl WithCycles for Emulator {
    fn update_with_cycles(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = self.submit_with_cycles(canister, sender, method, arg, cycles)?;
        let r = self.await_message(id);
        let _ = self.take_ingress_status(id);
        r
    }
}
