//! What icemu learns from a canister's module: its candid interface (`icp:public candid:service`,
//! as dfx and `scripts/build.sh` embed it) and its name (`icp:public name`), and the names it
//! gives canisters that canisters created (`personal-ada`).

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use candid::Principal;

use crate::state::{Named, StateDir};
use crate::text::Interface;

/// The custom section holding the candid service (without the `icp:public ` prefix).
pub const CANDID_SERVICE: &str = "candid:service";
/// The custom section holding the module's name, used for derived canister names.
pub const NAME: &str = "name";

/// The installed module of `id` (as installed: plain or gzipped wasm), read from the state
/// directory's content-addressed modules (saved first when this process installed it).
pub fn module_bytes(st: &StateDir, id: Principal) -> Result<Option<Vec<u8>>> {
    let Some(hash) = st.emu.canister_status(id).and_then(|s| s.module_hash) else {
        return Ok(None);
    };
    let path = st
        .dir
        .join("modules")
        .join(format!("{}.wasm", hex::encode(&hash)));
    if !path.is_file() {
        // Installed by a message of this process (or of `serve`) and not saved yet.
        st.emu
            .save_state(&st.dir)
            .with_context(|| format!("saving the state to {}", st.dir.display()))?;
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(bytes))
}

/// The public metadata section `name` of `id`'s module, if it has a module and the section.
pub fn metadata(st: &StateDir, id: Principal, name: &str) -> Result<Option<Vec<u8>>> {
    let Some(bytes) = module_bytes(st, id)? else {
        return Ok(None);
    };
    // Compiled modules are cached (in this process, and on disk): this is a lookup.
    let module = emulator::engine::compile(&bytes)
        .map_err(|e| anyhow::anyhow!("reading the module of {id}: {e}"))?;
    Ok(module
        .info
        .metadata
        .iter()
        .find(|(n, public, _)| *public && n == name)
        .map(|(_, _, b)| b.clone()))
}

/// The candid interface embedded in `id`'s module, if any.
pub fn embedded_interface(st: &StateDir, id: Principal) -> Result<Option<Interface>> {
    let Some(text) = metadata(st, id, CANDID_SERVICE)? else {
        return Ok(None);
    };
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("the candid:service metadata of {id} is not UTF-8"))?;
    Interface::from_text(&text, &format!("the candid:service metadata of {id}")).map(Some)
}

/// Names canisters that have a module but no name (created by another canister):
/// `<module name>-<owner>`, where the module name is its `name` metadata (else `canister`) and
/// the owner is the identity name of its first controller that is not a canister (else the
/// first five characters of that principal, else of the canister's own id). A taken name gets
/// `-2`, `-3`, ... Names are kept in `icemu.json` once given, and dropped when the canister is
/// deleted. Returns the names given.
pub fn derive_names(st: &mut StateDir) -> Result<Vec<String>> {
    // A derived name goes with its canister (deleted by its owner or by an admin cleanup).
    let emu = st.emu.clone();
    st.names
        .canisters
        .retain(|_, n| !n.derived || emu.canister_exists(n.id));
    let named: BTreeSet<Principal> = st.names.canisters.values().map(|n| n.id).collect();
    let all = st.emu.canister_ids();
    let canisters: BTreeSet<Principal> = all.iter().copied().collect();
    let mut given = Vec::new();
    for id in all {
        if named.contains(&id) {
            continue;
        }
        let Some(status) = st.emu.canister_status(id) else {
            continue;
        };
        if status.module_hash.is_none() {
            continue; // named once it has a module (its kind comes from the module)
        }
        let kind = metadata(st, id, NAME)?
            .and_then(|b| String::from_utf8(b).ok())
            .map(|s| sanitize(&s))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "canister".into());
        let owner = status
            .settings
            .controllers
            .iter()
            .find(|c| !canisters.contains(c) && **c != Principal::management_canister());
        let who = match owner {
            Some(p) => st
                .names
                .identities
                .iter()
                .find(|(_, q)| *q == p)
                .map(|(n, _)| sanitize(n))
                .unwrap_or_else(|| short(p)),
            None => short(&id),
        };
        let base = format!("{kind}-{who}");
        let mut name = base.clone();
        let mut k = 2;
        while st.names.canisters.contains_key(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        st.names.canisters.insert(
            name.clone(),
            Named {
                id,
                did: None,
                derived: true,
            },
        );
        given.push(name);
    }
    Ok(given)
}

/// The first five characters of a principal's text.
fn short(p: &Principal) -> String {
    p.to_text().chars().take(5).collect()
}

/// Letters, digits, `-` and `_` (others become `_`).
fn sanitize(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
