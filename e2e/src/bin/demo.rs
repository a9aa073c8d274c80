//! The demo: a full migration on the emulator, with a live byte-level progress bar, the state
//! timeline, both sides' verified manifest roots, the new controllers and the cycles consumed.
//!
//! Run it with `scripts/demo.sh` (which builds the canisters first). Options:
//! `--memories N` (default 300), `--mib N` total blob MiB (default 48), `--connections N` (25),
//! `--round-ms N` emulated milliseconds per round (default 1000: the IC runs about one round per
//! second, and `icemu run-until-idle` uses the same pace).
//!
//! Times are reported twice, labelled: *emulated* time is the canisters' clock (rounds × the
//! round length), what the migration would take on the IC if rounds were its only limit; *wall*
//! time is how long this machine took to emulate it.

use std::time::{Duration, Instant};

use backend::factory::types::{CreationRecord, CreationState, FactoryError, ReserveStatus};
use candid::Principal;
use capsule::*;
use e2e::*;
use indicatif::{ProgressBar, ProgressStyle};
use manifests::{ManifestPageReply, PageCursor, PageVerifier};

struct Options {
    memories: u64,
    mib: usize,
    connections: u32,
    round_ms: u64,
}

fn options() -> Options {
    let mut o = Options {
        memories: 300,
        mib: 48,
        connections: 25,
        round_ms: 1000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{a} needs a number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--memories" => o.memories = value(),
            "--mib" => o.mib = value() as usize,
            "--connections" => o.connections = value() as u32,
            "--round-ms" => o.round_ms = value().max(1),
            "-h" | "--help" => {
                println!("usage: demo [--memories N] [--mib N] [--connections N] [--round-ms N]");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown option {other}; see --help");
                std::process::exit(2);
            }
        }
    }
    o
}

/// Blob sizes adding up to about `mib` MiB: photos of a few hundred KiB, some multi-MiB videos.
fn blob_sizes(mib: usize) -> Vec<usize> {
    let target = mib << 20;
    let pattern = [
        350 << 10,
        1200 << 10,
        4 << 20,
        180 << 10,
        9 << 20,
        2 << 20,
        700 << 10,
    ];
    let mut sizes = vec![];
    let mut total = 0;
    for (i, s) in pattern.iter().cycle().enumerate() {
        if total >= target {
            break;
        }
        let size = (*s + i * 4093).min(target - total).max(1);
        sizes.push(size);
        total += size;
    }
    sizes
}

fn manifest_root(w: &World, canister: Principal, who: Principal, migration: Option<u64>) -> String {
    let mut cursor = Some(PageCursor::FIRST);
    let mut verifier: Option<PageVerifier> = None;
    while let Some(at) = cursor {
        let reply: ManifestPageReply = match migration {
            Some(id) => {
                let (r,): (Result<ManifestPageReply, FactoryError>,) = w
                    .try_query(canister, who, "admin_get_manifest_page", (id, at))
                    .expect("manifest page");
                r.expect("manifest page")
            }
            None => {
                let (r,): (Result<ManifestPageReply, Error>,) = w
                    .try_query(canister, who, "get_manifest_page", (at,))
                    .expect("manifest page");
                r.expect("manifest page")
            }
        };
        let v = verifier
            .get_or_insert_with(|| PageVerifier::new(reply.header.clone()).expect("header"));
        v.push_reply(&reply).expect("page verifies");
        cursor = reply.page.next;
    }
    hex::encode(
        verifier
            .expect("a page")
            .finish()
            .expect("manifest verifies")
            .root,
    )
}

/// Cycles in T (10^12), B (10^9) or M (10^6), whichever shows the figure.
fn fmt_cycles(c: u128) -> String {
    let c = c as f64;
    if c >= 1e11 {
        format!("{:.3} T", c / 1e12)
    } else if c >= 1e8 {
        format!("{:.2} B", c / 1e9)
    } else {
        format!("{:.2} M", c / 1e6)
    }
}

/// `done` of `total` as a percentage with one decimal, never rounded up to 100.0 early.
fn percent(done: u64, total: u64) -> String {
    if total == 0 {
        return "100.0%".into();
    }
    let tenths = done as u128 * 1000 / total as u128;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A principal with the name the demo knows it by.
fn who(p: Principal, names: &[(Principal, &str)]) -> String {
    match names.iter().find(|(q, _)| *q == p) {
        Some((_, n)) => format!("{n} {p}"),
        None => p.to_text(),
    }
}

fn main() {
    let o = options();
    let started = Instant::now();
    println!("== Deploying the backend on the emulator and funding its cycles reserve");
    let w = World::new();
    let (reserve,): (Result<ReserveStatus, FactoryError>,) =
        w.query(admin(), "admin_get_reserve", ());
    println!(
        "   backend {}   reserve {}",
        w.backend,
        fmt_cycles(reserve.unwrap().reserve)
    );

    let ada = user(1);
    println!("   Ada, the capsule owner, is principal {ada}");
    let sizes = blob_sizes(o.mib);
    let total: usize = sizes.iter().sum();
    println!(
        "== Filling Ada's capsule: {} memories, {} blobs ({:.1} MiB), {} connections",
        o.memories,
        sizes.len(),
        total as f64 / (1 << 20) as f64,
        o.connections
    );
    let upload = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("   upload    [{bar:40}] {bytes}/{total_bytes} {msg}")
            .expect("template"),
    );
    let _: CapsuleInfo = w
        .capsule(
            w.backend,
            ada,
            "create_capsule",
            (CapsuleInput {
                name: "Ada".into(),
                bio: "mathematician".into(),
                settings: None,
            },),
        )
        .expect("create_capsule");
    let blobs: Vec<BlobDescriptor> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = w.upload(w.backend, ada, &data(*s, i as u64));
            upload.inc(*s as u64);
            d
        })
        .collect();
    upload.finish_with_message("done");
    if upload.is_hidden() {
        println!("   uploaded {} blobs through the capsule API", blobs.len());
    }
    for i in 0..o.memories {
        let b = &blobs[i as usize % blobs.len()];
        let input = MemoryInput {
            title: format!("Memory {i}"),
            description: format!("A day to remember, number {i}"),
            tags: vec!["family".into(), format!("year-{}", 2000 + i % 25)],
            kind: if b.size > 3 << 20 {
                MemoryKind::Video
            } else {
                MemoryKind::Photo
            },
            blobs: vec![BlobRef {
                hash: b.hash,
                size: b.size,
                mime_type: "image/jpeg".into(),
            }],
            encryption: None,
        };
        let _: Memory = w
            .capsule(w.backend, ada, "add_memory", (input,))
            .expect("add_memory");
    }
    for n in 0..o.connections {
        let input = ConnectionInput {
            peer: user(1000 + n),
            relationship: "friend".into(),
            status: ConnectionStatus::Accepted,
        };
        let _: Connection = w
            .capsule(w.backend, ada, "add_connection", (input,))
            .expect("add_connection");
    }

    println!("== Ada asks for her personal canister");
    let first = w
        .create_personal_canister(ada)
        .expect("create_personal_canister");
    println!(
        "   migration {} accepted ({})",
        first.migration_id, first.state
    );
    let bar = ProgressBar::new(1).with_style(
        ProgressStyle::with_template(
            "   transfer  [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("template"),
    );
    let migration_started = Instant::now();
    let round = Duration::from_millis(o.round_ms);
    let clock_started = w.ic.get_time().as_nanos_since_unix_epoch();
    let emulated =
        || Duration::from_nanos(w.ic.get_time().as_nanos_since_unix_epoch() - clock_started);
    let mut shown = 0;
    let mut rec: CreationRecord = first;
    let mut rounds = 0u64;
    // Without a terminal the bar is hidden: print the timeline and progress as plain lines.
    let plain = bar.is_hidden();
    let mut last_tenth = 0;
    let say = |line: String| {
        if plain {
            println!("{line}")
        } else {
            bar.println(line)
        }
    };
    say(format!(
        "   (a round every {} ms of emulated time: the IC runs about one a second)",
        o.round_ms
    ));
    while !rec.state.is_final() {
        // One round: the clock moves by the round length (the tick itself adds a little more;
        // the emulated times printed are read from the clock).
        w.ic.advance_time(round);
        w.ic.tick();
        rounds += 1;
        rec = w.status(ada).expect("status");
        for t in &rec.timeline[shown..] {
            say(format!(
                "   {:>10}  at round {rounds:>4}, {:>6.1} s emulated",
                t.state.name(),
                emulated().as_secs_f64()
            ));
        }
        // A line each time another tenth is crossed, with the exact figure.
        let tenth = rec.progress.bytes_done * 10 / rec.progress.bytes_total.max(1);
        if plain && tenth > last_tenth {
            last_tenth = tenth;
            println!(
                "   transfer   {:>5.1} MiB of {:.1} MiB ({})",
                rec.progress.bytes_done as f64 / (1 << 20) as f64,
                rec.progress.bytes_total as f64 / (1 << 20) as f64,
                percent(rec.progress.bytes_done, rec.progress.bytes_total)
            );
        }
        shown = rec.timeline.len();
        bar.set_length(rec.progress.bytes_total.max(1));
        bar.set_position(rec.progress.bytes_done);
        bar.set_message(format!(
            "{}  chunks {}/{}",
            rec.state, rec.progress.chunks_done, rec.progress.chunks_total
        ));
        if rounds > 200_000 {
            bar.abandon();
            eprintln!("the migration did not finish; last record: {rec:#?}");
            std::process::exit(1);
        }
    }
    bar.finish();
    if rec.state != CreationState::Completed {
        eprintln!("the migration failed: {:?}", rec.error);
        std::process::exit(1);
    }
    let personal = rec
        .canister_id
        .expect("a completed creation has a canister");
    let export_root = manifest_root(&w, w.backend, admin(), Some(rec.migration_id));
    let personal_root = manifest_root(&w, personal, ada, None);
    let emulated_total = emulated();
    println!(
        "== Completed in {rounds} rounds: {:.1} s emulated (a round every {} ms), {:.1} s wall time on this machine",
        emulated_total.as_secs_f64(),
        o.round_ms,
        migration_started.elapsed().as_secs_f64()
    );
    let names = [(ada, "ada (owner)"), (w.backend, "backend")];
    println!("   personal canister  {personal}");
    let controllers = w.ic.get_controllers(personal);
    println!(
        "   controllers        {}",
        controllers
            .iter()
            .map(|p| who(*p, &names))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if controllers == vec![ada] {
        println!(
            "                      (the backend handed control to Ada: it is no longer a controller)"
        );
    }
    println!("   backend root       {export_root}");
    println!("   personal root      {personal_root}");
    println!(
        "   roots              {}",
        if export_root == personal_root {
            "EQUAL (verified page by page on both sides)"
        } else {
            "DIFFER"
        }
    );
    let q = rec.quote.as_ref().expect("quote");
    let funding = rec.funding.clone().unwrap_or_default();
    let given = q.total + funding.deposited;
    let left = w.ic.cycle_balance(personal);
    // What the personal canister was given (the quote at creation, the funding deposit after
    // install), less its creation fee and what it still holds, is what installing the module
    // and pulling the data burned.
    let burned_by_canister = given.saturating_sub(q.creation_fee).saturating_sub(left);
    // The record's `cycles_consumed` is what the reserve paid: here exactly what the canister
    // was given (nothing was sponsored or sent back).
    assert_eq!(
        rec.cycles_consumed, given,
        "the reserve paid the quote and the funding deposit"
    );
    println!(
        "   cycles paid        {} by the backend's reserve (the record's cycles_consumed):",
        fmt_cycles(rec.cycles_consumed)
    );
    println!(
        "                      the quote {} (creation fee {} + install {} + transfer {} + storage {} + buffer {})",
        fmt_cycles(q.total),
        fmt_cycles(q.creation_fee),
        fmt_cycles(q.install),
        fmt_cycles(q.transfer),
        fmt_cycles(q.storage),
        fmt_cycles(q.buffer),
    );
    println!(
        "                      + {} deposited after install: {} days of storage for the measured {:.1} MiB",
        fmt_cycles(funding.deposited),
        funding.funded_days,
        funding.footprint_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "   cycles burned      {} (creation fee {} to the IC, install and import {} by the personal canister)",
        fmt_cycles(q.creation_fee + burned_by_canister),
        fmt_cycles(q.creation_fee),
        fmt_cycles(burned_by_canister)
    );
    println!(
        "   cycles left        {} in the personal canister: Ada's now, to run it",
        fmt_cycles(left)
    );
    println!(
        "   total wall time    {:.1} s (deploy, fill, migrate, verify)",
        started.elapsed().as_secs_f64()
    );
    if export_root != personal_root {
        std::process::exit(1);
    }
}
