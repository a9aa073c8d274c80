//! `icemu run-until-idle`: rounds with emulated time passing as on the IC, until the subnet is
//! idle or a polled query's reply says what the caller waits for.
//!
//! A round of the emulator adds only `time_per_round` (1 ms) to the clock, so timers that are
//! seconds away (a backend's backstop, an importer's next batch) need thousands of `tick`s.
//! Here each round first moves the clock so that a round lasts `--secs-per-round` (1 s by
//! default, the IC's pace of about one round per second), then runs: due timers fire, messages
//! are delivered. "Idle" means no message in flight and nothing executed for `--quiet-secs` (15)
//! of emulated time: a timer due within that window would have fired and counted as activity,
//! while timers further apart (the personal canister's 30 s import watchdog, daily purges)
//! do not keep the subnet busy.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::state::StateDir;
use crate::{Io, write_line};

/// Arguments of `run-until-idle`.
#[derive(Args, Serialize, Deserialize, Clone, Debug)]
pub struct RunArgs {
    /// Largest number of rounds; reaching it without being done exits with status 3.
    #[arg(long, default_value_t = 100_000)]
    pub max: u64,
    /// Emulated seconds per round (fractions allowed). The IC runs about one round per second.
    #[arg(long, default_value_t = 1.0)]
    pub secs_per_round: f64,
    /// Idle means no message in flight and nothing executed for this many emulated seconds.
    /// Timers further apart (a 30 s watchdog, a daily purge) do not keep the subnet busy; a
    /// backend with creations in flight runs a 10 s backstop, so it is never idle meanwhile.
    #[arg(long, default_value_t = 15.0)]
    pub quiet_secs: f64,
    /// Run until the reply of the --poll query contains TEXT (checked after every round),
    /// instead of until idle. Reaching idle without it exits with status 3.
    #[arg(long, requires = "poll")]
    pub until: Option<String>,
    /// The query to poll for --until: CANISTER METHOD [CANDID-ARGUMENT].
    #[arg(long, num_args = 2..=3, value_names = ["CANISTER", "METHOD", "ARG"], requires = "until")]
    pub poll: Vec<String>,
    /// Identity that makes the --poll query.
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    pub as_: String,
    /// Print a line every N rounds while running (0: never).
    #[arg(long, default_value_t = 0)]
    pub every: u64,
}

/// `run-until-idle` stopped without reaching what it waited for (exit status 3).
#[derive(Debug)]
pub struct NotReached(pub String);

impl std::fmt::Display for NotReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotReached {}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing in flight and nothing executed for the quiet window.
    Idle,
    /// The polled reply contained the text.
    Reached,
    /// `--max` rounds ran.
    MaxRounds,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub stop: Stop,
    pub rounds: u64,
    pub emulated: Duration,
    pub wall: Duration,
    /// The round (counted from the start of this run) of the last execution, if any.
    pub last_active: Option<u64>,
    /// The last polled reply (with --until).
    pub last_reply: Option<String>,
}

/// Executions so far, all canisters together.
fn executions(st: &StateDir) -> u64 {
    st.emu
        .all_stats()
        .iter()
        .map(|(_, s)| s.total.executions)
        .sum()
}

/// Runs rounds of `round` emulated time each until `stop` (called after every round) says so,
/// the subnet is idle for `quiet` (when `stop_when_idle`), or `max` rounds ran.
pub fn run_rounds(
    st: &StateDir,
    round: Duration,
    quiet: Duration,
    max: u64,
    stop_when_idle: bool,
    mut check: impl FnMut(u64) -> Result<bool>,
) -> Result<(Stop, u64, Option<u64>)> {
    let per_round = st.emu.config().time_per_round;
    let jump = round.saturating_sub(per_round);
    // Rounds of quiet needed (at least one, so a timer due now gets its round).
    let quiet_rounds = if round.is_zero() {
        1
    } else {
        (quiet.as_secs_f64() / round.as_secs_f64()).ceil().max(1.0) as u64
    };
    let mut last_active = None;
    let mut calm = 0u64;
    let mut n = 0u64;
    while n < max {
        let before = executions(st);
        st.emu.advance_time(jump);
        st.emu.tick();
        n += 1;
        let active = executions(st) > before || st.emu.messages_in_flight() > 0;
        if active {
            last_active = Some(n);
            calm = 0;
        } else {
            calm += 1;
        }
        if check(n)? {
            return Ok((Stop::Reached, n, last_active));
        }
        if stop_when_idle && calm >= quiet_rounds {
            return Ok((Stop::Idle, n, last_active));
        }
    }
    Ok((Stop::MaxRounds, n, last_active))
}

/// `icemu run-until-idle`.
pub fn run_until_idle(st: &mut StateDir, a: RunArgs, io: &mut Io) -> Result<()> {
    if !(a.secs_per_round.is_finite() && a.secs_per_round >= 0.0) {
        anyhow::bail!("--secs-per-round must be a number of seconds ≥ 0");
    }
    if !(a.quiet_secs.is_finite() && a.quiet_secs >= 0.0) {
        anyhow::bail!("--quiet-secs must be a number of seconds ≥ 0");
    }
    let round = Duration::from_secs_f64(a.secs_per_round);
    let quiet = Duration::from_secs_f64(a.quiet_secs);
    let t0 = Instant::now();
    let time0 = st.emu.time_nanos();
    let poll = match &a.until {
        Some(_) => Some(Poll::new(st, &a.poll, &a.as_)?),
        None => None,
    };
    let mut last_reply = None;
    let every = a.every;
    let mut lines = Vec::new();
    let (stop, rounds, last_active) = {
        let emu = st.emu.clone();
        let st_ref: &StateDir = st;
        run_rounds(st_ref, round, quiet, a.max, true, |n| {
            let reached = match (&poll, &a.until) {
                (Some(p), Some(text)) => {
                    let reply = p.run(st_ref)?;
                    let hit = reply.contains(text.as_str());
                    last_reply = Some(reply);
                    hit
                }
                _ => false,
            };
            if every > 0 && n % every == 0 {
                lines.push(format!(
                    "round {} (+{n}), {:.1} s emulated, {} messages in flight",
                    emu.round(),
                    (emu.time_nanos() - time0) as f64 / 1e9,
                    emu.messages_in_flight()
                ));
            }
            Ok(reached)
        })?
    };
    for l in lines {
        write_line(&mut *io.err, format_args!("{l}"))?;
    }
    let report = RunReport {
        stop,
        rounds,
        emulated: Duration::from_nanos(st.emu.time_nanos() - time0),
        wall: t0.elapsed(),
        last_active,
        last_reply,
    };
    let summary = format!(
        "{} rounds, {:.1} s emulated ({:.2} s wall); round {}, {} messages in flight; last execution {}",
        report.rounds,
        report.emulated.as_secs_f64(),
        report.wall.as_secs_f64(),
        st.emu.round(),
        st.emu.messages_in_flight(),
        match report.last_active {
            Some(r) => format!("in round +{r}"),
            None => "none".into(),
        }
    );
    let waited = a
        .until
        .as_deref()
        .map(|t| format!("the reply of `{}` contains `{t}`", a.poll.join(" ")));
    match (report.stop, waited) {
        (Stop::Reached, Some(w)) => {
            write_line(&mut *io.out, format_args!("reached: {w}: {summary}"))?;
            Ok(())
        }
        (Stop::Idle, None) => {
            write_line(&mut *io.out, format_args!("idle: {summary}"))?;
            Ok(())
        }
        (Stop::Idle, Some(w)) => Err(NotReached(format!(
            "idle before {w}: {summary}; last reply: {}",
            report.last_reply.unwrap_or_default().trim()
        ))
        .into()),
        (Stop::MaxRounds, w) => Err(NotReached(format!(
            "not {} after --max {} rounds: {summary}{}",
            w.map(|w| format!("done ({w})"))
                .unwrap_or_else(|| "idle".into()),
            a.max,
            report
                .last_reply
                .map(|r| format!("; last reply: {}", r.trim()))
                .unwrap_or_default()
        ))
        .into()),
        (Stop::Reached, None) => unreachable!("no --until, nothing to reach"),
    }
}

/// A query polled after every round (`--poll CANISTER METHOD [ARG]`), its reply as candid text.
pub struct Poll {
    canister: candid::Principal,
    sender: candid::Principal,
    method: String,
    arg: Vec<u8>,
    iface: Option<crate::text::Interface>,
}

impl Poll {
    /// Resolves the canister and identity and encodes the argument (typed by the canister's
    /// interface when known).
    pub fn new(st: &mut StateDir, poll: &[String], as_: &str) -> Result<Self> {
        let [canister, method, rest @ ..] = poll else {
            anyhow::bail!("--poll needs CANISTER METHOD [ARG]");
        };
        let id = st.canister(canister)?;
        let sender = st.identity(as_);
        let iface = crate::interface_of(st, id, None)?;
        let text = rest.first().map(String::as_str).unwrap_or("()");
        let arg = match iface
            .as_ref()
            .and_then(|i| i.method(method).map(|m| (i, m)))
        {
            Some((i, (args, _, _))) => i.encode(text, &args)?,
            None => crate::text::encode_untyped(text)?,
        };
        Ok(Self {
            canister: id,
            sender,
            method: method.clone(),
            arg,
            iface,
        })
    }

    /// Runs the query; its reply as candid text (a reject is an error, exit 10 + code).
    pub fn run(&self, st: &StateDir) -> Result<String> {
        let reply = st
            .emu
            .query(self.canister, self.sender, &self.method, self.arg.clone())
            .map_err(crate::Rejected)?;
        let typed = self
            .iface
            .as_ref()
            .and_then(|i| i.method(&self.method).map(|m| (i, m)));
        Ok(match typed {
            Some((i, (_, rets, _))) => i.decode(&reply, &rets)?.to_string(),
            None => crate::text::decode_untyped(&reply)?.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_reached_exits_with_status_3() {
        let mut err = Vec::new();
        let e = NotReached("not idle after --max 3 rounds".into());
        assert_eq!(crate::exit_status(Err(e.into()), &mut err), 3);
        assert!(
            String::from_utf8(err)
                .unwrap()
                .contains("not idle after --max 3 rounds")
        );
    }
}
