//! Candid text in and out: arguments parsed with `candid_parser`, typed by a `.did` when one is
//! known, replies printed with field names from it.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use candid::types::value::IDLValue;
use candid::types::{Type, TypeInner};
use candid::{IDLArgs, TypeEnv};

/// A parsed `.did` file.
pub struct Interface {
    env: TypeEnv,
    actor: Type,
}

impl Interface {
    /// Loads and type-checks a `.did` file.
    pub fn load(path: &Path) -> Result<Self> {
        let (env, actor) = candid_parser::utils::CandidSource::File(path)
            .load()
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let actor = actor.ok_or_else(|| anyhow!("{} has no service", path.display()))?;
        Ok(Self { env, actor })
    }

    /// Parses and type-checks candid service text (a module's `candid:service` metadata);
    /// `origin` names it in errors.
    pub fn from_text(text: &str, origin: &str) -> Result<Self> {
        let (env, actor) = candid_parser::utils::CandidSource::Text(text)
            .load()
            .map_err(|e| anyhow!("{origin}: {e}"))?;
        let actor = actor.ok_or_else(|| anyhow!("{origin} has no service"))?;
        Ok(Self { env, actor })
    }

    /// Argument and result types of `method`, and whether it is a query.
    pub fn method(&self, method: &str) -> Option<(Vec<Type>, Vec<Type>, bool)> {
        let f = self.env.get_method(&self.actor, method).ok()?;
        let query = f.modes.iter().any(|m| {
            matches!(
                m,
                candid::types::FuncMode::Query | candid::types::FuncMode::CompositeQuery
            )
        });
        Some((f.args.clone(), f.rets.clone(), query))
    }

    /// The init argument types.
    pub fn init_args(&self) -> Vec<Type> {
        match self.actor.as_ref() {
            TypeInner::Class(args, _) => args.clone(),
            _ => Vec::new(),
        }
    }

    /// Encodes candid text `text` with `types`.
    pub fn encode(&self, text: &str, types: &[Type]) -> Result<Vec<u8>> {
        let args = parse(text)?;
        args.to_bytes_with_types(&self.env, types)
            .map_err(|e| anyhow!("argument does not fit the .did types: {e}"))
    }

    /// Decodes reply bytes with `types`.
    pub fn decode(&self, bytes: &[u8], types: &[Type]) -> Result<IDLArgs> {
        IDLArgs::from_bytes_with_types(bytes, &self.env, types)
            .map_err(|e| anyhow!("reply does not fit the .did types: {e}"))
    }
}

/// Parses candid text (`(record { a = 1 }, "x")`; a bare value is accepted as one argument).
pub fn parse(text: &str) -> Result<IDLArgs> {
    let t = text.trim();
    if t.starts_with('(') {
        candid_parser::parse_idl_args(t).map_err(|e| anyhow!("candid argument: {e}"))
    } else if t.is_empty() {
        Ok(IDLArgs::new(&[]))
    } else {
        let v = candid_parser::parse_idl_value(t).map_err(|e| anyhow!("candid argument: {e}"))?;
        Ok(IDLArgs::new(&[v]))
    }
}

/// Encodes candid text without types (numbers become `int`, unless annotated: `(1 : nat64)`).
pub fn encode_untyped(text: &str) -> Result<Vec<u8>> {
    parse(text)?
        .to_bytes()
        .context("encoding the candid argument")
}

/// Decodes reply bytes without types (field names appear as hashes).
pub fn decode_untyped(bytes: &[u8]) -> Result<IDLArgs> {
    IDLArgs::from_bytes(bytes).map_err(|e| anyhow!("reply is not candid: {e}"))
}

/// The first blob (`blob` or `vec nat8`) in `args`, depth first.
pub fn first_blob(args: &IDLArgs) -> Option<Vec<u8>> {
    args.args.iter().find_map(blob_in)
}

fn blob_in(v: &IDLValue) -> Option<Vec<u8>> {
    match v {
        IDLValue::Blob(b) => Some(b.clone()),
        IDLValue::Vec(items)
            if !items.is_empty() && items.iter().all(|i| matches!(i, IDLValue::Nat8(_))) =>
        {
            Some(
                items
                    .iter()
                    .map(|i| match i {
                        IDLValue::Nat8(b) => *b,
                        _ => 0,
                    })
                    .collect(),
            )
        }
        IDLValue::Opt(x) => blob_in(x),
        IDLValue::Vec(items) => items.iter().find_map(blob_in),
        IDLValue::Record(fields) => fields.iter().find_map(|f| blob_in(&f.val)),
        IDLValue::Variant(v) => blob_in(&v.0.val),
        _ => None,
    }
}
