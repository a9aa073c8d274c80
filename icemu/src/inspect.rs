//! `icemu status` and `icemu stats`.

use super::*;

pub(crate) fn status(st: &StateDir, canister: Option<String>, io: &mut Io) -> Result<()> {
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

pub(crate) fn stats(
    st: &StateDir,
    canister: Option<String>,
    json: bool,
    io: &mut Io,
) -> Result<()> {
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
