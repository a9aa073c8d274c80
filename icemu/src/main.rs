//! `icemu`: the in-repo Internet Computer emulator as a command-line tool over a persistent
//! state directory, and a local HTTP endpoint (`icemu serve`). See `README.md`.

mod admin;
mod cli;
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
use clap::Parser;
use emulator::{Emulator, RejectCode, RejectResponse};
use ic_management_canister_types as mgmt;

use state::{Named, Opened, StateDir};
use text::Interface;

pub(crate) use cli::*;

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

mod call;
mod deploy;
mod fault;
mod inspect;

use call::*;
use deploy::*;
use fault::*;
use inspect::*;

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
