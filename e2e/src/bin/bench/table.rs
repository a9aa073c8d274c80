//! The printed tables: one column per scenario, then where the instructions went by phase.

use super::*;

pub fn si(x: f64) -> String {
    let a = x.abs();
    if a >= 1e12 {
        format!("{:.2}T", x / 1e12)
    } else if a >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}K", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A table row: its label and how a scenario's cell is written.
pub type Row = (&'static str, Box<dyn Fn(&Metrics) -> String>);

pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

pub fn table(ms: &[Metrics]) -> String {
    let mut t = String::new();
    let rows: Vec<Row> = vec![
        ("bytes moved", Box::new(|m| mib(m.bytes))),
        ("blob bytes", Box::new(|m| mib(m.blob_bytes))),
        ("rounds", Box::new(|m| m.rounds.to_string())),
        ("calls", Box::new(|m| m.calls.to_string())),
        (
            "reply fill (>= 0.85)",
            Box::new(|m| format!("{:.3}", m.reply_fill_ratio)),
        ),
        (
            "personal instr/B (<= 25)",
            Box::new(|m| format!("{:.2}", m.personal_instructions_per_byte)),
        ),
        (
            "backend instr/B (<= 60)",
            Box::new(|m| format!("{:.2}", m.backend_instructions_per_byte)),
        ),
        (
            "personal instr/record",
            Box::new(|m| si(m.personal_instructions_per_record)),
        ),
        (
            "backend instr/record",
            Box::new(|m| si(m.backend_instructions_per_record)),
        ),
        (
            "max msg / limit (<= 0.10)",
            Box::new(|m| format!("{:.4}", m.max_message_instructions_ratio)),
        ),
        ("  largest message", Box::new(|m| m.max_message.clone())),
        ("cycles/GiB (<= 1.3T)", Box::new(|m| si(m.cycles_per_gib))),
        (
            "verification instr",
            Box::new(|m| si(m.verification_instructions as f64)),
        ),
        (
            "naive/ours instr (>= 1)",
            Box::new(|m| format!("{:.2}", m.baseline_instruction_ratio)),
        ),
        (
            "naive/ours calls",
            Box::new(|m| format!("{:.1}", m.baseline_call_ratio)),
        ),
        (
            "naive/ours rounds",
            Box::new(|m| format!("{:.1}", m.baseline_round_ratio)),
        ),
    ];
    let width = ms
        .iter()
        .map(|m| m.name.len().max(m.max_message.len()))
        .max()
        .unwrap_or(10)
        + 2;
    write!(t, "{:<28}", "scenario").unwrap();
    for m in ms {
        write!(t, "{:>width$}", m.name).unwrap();
    }
    t.push('\n');
    for (label, f) in rows {
        write!(t, "{label:<28}").unwrap();
        for m in ms {
            write!(t, "{:>width$}", f(m)).unwrap();
        }
        t.push('\n');
    }
    t.push_str(&phase_table(ms, width));
    t
}

/// Where the instructions go: per canister and per phase (the backend's creation state, the
/// personal canister's import phase, at the start of each round), then the methods of each
/// canister (callbacks count under the method whose call context they belong to; the
/// importer's calls are made from timers).
pub fn phase_table(ms: &[Metrics], width: usize) -> String {
    let mut t = String::from("instructions by phase\n");
    let mut row = |label: String, cell: &dyn Fn(&Metrics) -> Option<u64>| {
        write!(t, "{label:<28}").unwrap();
        for m in ms {
            let text = cell(m).map_or("-".to_string(), |x| si(x as f64));
            write!(t, "{text:>width$}").unwrap();
        }
        t.push('\n');
    };
    type Phases = fn(&Metrics) -> &BTreeMap<String, u64>;
    let sides: [(&str, Phases); 2] = [
        ("backend", |m| &m.backend_phases),
        ("personal", |m| &m.personal_phases),
    ];
    for (side, phases) in sides {
        let names: std::collections::BTreeSet<&String> =
            ms.iter().flat_map(|m| phases(m).keys()).collect();
        for name in names {
            row(format!("  {side} {name}"), &|m| {
                phases(m).get(name).copied()
            });
            row("    per record".to_string(), &|m| {
                phases(m).get(name).map(|x| x / m.records.max(1))
            });
        }
    }
    t
}
