//! Reading manifests as tools get them, and printing them (feature `cli`).
//!
//! Accepted inputs, in any mix of files:
//!
//! - **candid text** as `dfx canister call backend export_manifest_page '(...)'` (or the
//!   emulator's CLI) prints it: one or several values `( record { header = ...; page = ... } )`,
//!   one per page, concatenated, each a [`ManifestPageReply`] or `variant { Ok = <reply> }`.
//!   Field names may be numeric (`_1234_`) when the printer had no `.did`: the text is parsed
//!   with `candid_parser`, encoded with the reply's candid type and decoded into the Rust types,
//!   so names and ids match alike;
//! - **JSON**: a [`Manifest`] (what `manifest show --json` writes), a [`ManifestPageReply`], an
//!   array of replies, or several such values concatenated.
//!
//! Pages are sorted by cursor (identical duplicates dropped) and verified with
//! [`crate::PageVerifier`]; a whole manifest with [`Manifest::verify`].
//!
//! In JSON, hashes and byte strings are lower-case hex, principals text, and `u64` values plain
//! JSON numbers. Nanosecond timestamps exceed 2^53: tools that read numbers as doubles (jq
//! before 1.7, JavaScript's `JSON.parse`) round them, and the edited manifest then fails
//! verification rather than silently changing.

use crate::error::{ManifestError, Result};
use crate::model::Manifest;
use crate::pages::{ManifestPageReply, PageLeaves};
use crate::serde_hex::bytes_to_hex;
use blobstore::hash::to_hex;
use candid::types::Label;
use candid::types::value::{IDLArgs, IDLValue};
use candid::{CandidType, TypeEnv};
use std::fmt::Write;

/// One value read from an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A whole manifest (JSON form).
    Manifest(Box<Manifest>),
    /// One page reply.
    Page(Box<ManifestPageReply>),
}

fn decode_err(what: &str, message: impl ToString) -> ManifestError {
    ManifestError::DecodeError {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// Line and column (1-based) of byte offset `pos` in `text`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Splits candid text into its top-level parenthesized values `( ... )`, skipping strings and
/// comments. Anything else at the top level is an error.
pub fn split_candid_values(text: &str) -> Result<Vec<&str>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() {
                    let (l, c) = line_col(text, text.len());
                    return Err(decode_err(
                        "candid text",
                        format!("unterminated string at line {l}, column {c}"),
                    ));
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                Some(end) => i += end + 3,
                None => {
                    return Err(decode_err("candid text", "unterminated comment /* ..."));
                }
            },
            b'(' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b')' => {
                if depth == 0 {
                    let (l, c) = line_col(text, i);
                    return Err(decode_err(
                        "candid text",
                        format!("unbalanced ')' at line {l}, column {c}"),
                    ));
                }
                depth -= 1;
                if depth == 0 {
                    out.push(&text[start..=i]);
                }
            }
            c if depth == 0 && !c.is_ascii_whitespace() => {
                let (l, col) = line_col(text, i);
                let snippet: String = text[i..].chars().take(30).collect();
                return Err(decode_err(
                    "candid text",
                    format!(
                        "expected '(' at line {l}, column {col}, found {snippet:?}: give the values as the canister call prints them, e.g. (record {{ header = ...; page = ... }})"
                    ),
                ));
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err(decode_err(
            "candid text",
            "unbalanced parentheses: a '(' is never closed (truncated output?)",
        ));
    }
    Ok(out)
}

/// Rewrites labels written `_1234_` (how Motoko and some printers show a field known only by
/// its id) into the numeric id 1234, recursively. `candid_parser` reads `_1234_` as a name,
/// whose hash is not 1234.
fn normalize_labels(value: &mut IDLValue) {
    fn fix(label: &mut Label) {
        if let Label::Named(name) = label
            && let Some(digits) = name.strip_prefix('_').and_then(|n| n.strip_suffix('_'))
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = digits.parse::<u32>()
        {
            *label = Label::Id(id);
        }
    }
    match value {
        IDLValue::Record(fields) => {
            for f in fields {
                fix(&mut f.id);
                normalize_labels(&mut f.val);
            }
        }
        IDLValue::Variant(v) => {
            fix(&mut v.0.id);
            normalize_labels(&mut v.0.val);
        }
        IDLValue::Opt(v) => normalize_labels(v),
        IDLValue::Vec(items) => items.iter_mut().for_each(normalize_labels),
        _ => {}
    }
}

fn is_label(label: &Label, name: &str) -> bool {
    label.get_id() == candid::idl_hash(name)
}

/// Parses one candid value `( reply )` or `( variant { Ok = reply } )` into a reply.
pub fn parse_candid_reply(value_text: &str) -> Result<ManifestPageReply> {
    let args =
        candid_parser::parse_idl_args(value_text).map_err(|e| decode_err("candid text", e))?;
    let [value] = <[IDLValue; 1]>::try_from(args.args).map_err(|v: Vec<IDLValue>| {
        decode_err(
            "candid text",
            format!(
                "expected one value (a page reply) per parenthesized group, found {}",
                v.len()
            ),
        )
    })?;
    let mut value = value;
    normalize_labels(&mut value);
    let value = match value {
        IDLValue::Variant(v) if is_label(&v.0.id, "Ok") => v.0.val.clone(),
        IDLValue::Variant(v) if is_label(&v.0.id, "Err") => {
            return Err(decode_err(
                "candid text",
                format!(
                    "the canister returned an error instead of a page: {}",
                    v.0.val
                ),
            ));
        }
        v => v,
    };
    let bytes = IDLArgs::new(&[value])
        .to_bytes_with_types(&TypeEnv::new(), &[ManifestPageReply::ty()])
        .map_err(|e| {
            decode_err(
                "candid text",
                format!(
                    "not a manifest page reply ({e}); pass the output of the manifest page query"
                ),
            )
        })?;
    candid::decode_one(&bytes).map_err(|e| decode_err("candid page reply", e))
}

/// Parses JSON text: one or several concatenated values, each a manifest, a page reply or an
/// array of page replies.
pub fn parse_json(text: &str) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        let value = value.map_err(|e| decode_err("JSON", e))?;
        let items = match value {
            serde_json::Value::Array(items) => items,
            v => vec![v],
        };
        for item in items {
            let is_page = item.get("page").is_some();
            let input = if is_page {
                Input::Page(Box::new(
                    serde_json::from_value(item).map_err(|e| decode_err("JSON page reply", e))?,
                ))
            } else {
                Input::Manifest(Box::new(
                    serde_json::from_value(item).map_err(|e| decode_err("JSON manifest", e))?,
                ))
            };
            out.push(input);
        }
    }
    Ok(out)
}

/// Parses one input text, JSON (starts with `{` or `[`) or candid text.
pub fn parse(text: &str) -> Result<Vec<Input>> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(decode_err("input", "it is empty"));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return parse_json(text);
    }
    split_candid_values(text)?
        .into_iter()
        .map(|v| parse_candid_reply(v).map(|r| Input::Page(Box::new(r))))
        .collect()
}

/// Makes one verified manifest of inputs: either exactly one whole manifest, or the pages of
/// one manifest (in any order; sorted by cursor, then verified page by page).
pub fn assemble(inputs: Vec<Input>) -> Result<Manifest> {
    assemble_with(inputs, true)
}

/// Like [`assemble`], but with `verify == false` only collects the leaves (pages sorted by
/// cursor, the first page's header), to inspect a manifest that does not verify.
pub fn assemble_with(inputs: Vec<Input>, verify: bool) -> Result<Manifest> {
    let mut manifests = Vec::new();
    let mut pages = Vec::new();
    for input in inputs {
        match input {
            Input::Manifest(m) => manifests.push(*m),
            Input::Page(p) => pages.push(*p),
        }
    }
    match (manifests.len(), pages.is_empty()) {
        (0, true) => Err(decode_err("input", "it holds no manifest and no page")),
        (1, true) => {
            let m = manifests.pop().expect("one manifest");
            if verify {
                m.verify()?;
            }
            Ok(m)
        }
        (0, false) if !verify => {
            pages.sort_by_key(|p| p.page.cursor());
            pages.dedup();
            let header = pages[0].header.clone();
            let mut capsule = None;
            let (mut connections, mut memories, mut blobs) = (vec![], vec![], vec![]);
            for p in pages {
                match p.page.leaves {
                    PageLeaves::Capsule(c) => capsule = Some(c),
                    PageLeaves::Connections(v) => connections.extend(v),
                    PageLeaves::Memories(v) => memories.extend(v),
                    PageLeaves::Blobs(v) => blobs.extend(v),
                }
            }
            Ok(Manifest {
                header,
                capsule: capsule.ok_or(ManifestError::MissingCapsule)?,
                connections,
                memories,
                blobs,
            })
        }
        (0, false) => {
            let header = pages[0].header.clone();
            if let Some(other) = pages.iter().find(|p| p.header.root != header.root) {
                return Err(decode_err(
                    "input",
                    format!(
                        "pages of two manifests (roots {} and {}): give the pages of one manifest",
                        to_hex(&header.root),
                        to_hex(&other.header.root)
                    ),
                ));
            }
            pages.sort_by_key(|p| p.page.cursor());
            // The same page fetched twice is harmless; two different pages at one cursor are not
            // (the verifier rejects the second).
            pages.dedup();
            for p in &pages {
                crate::verify::check_header(&p.header)?;
            }
            Manifest::from_pages(header, pages.into_iter().map(|p| p.page))
        }
        _ => Err(decode_err(
            "input",
            "give either one whole manifest (JSON) or the pages of one manifest, not both or several",
        )),
    }
}

/// The JSON form of a manifest (pretty-printed), which [`parse`] reads back.
pub fn to_json(manifest: &Manifest) -> String {
    serde_json::to_string_pretty(manifest).expect("a manifest always serializes")
}

/// A human-readable summary: header, then one line per connection, memory and blob.
/// `verified` says whether the caller verified the manifest (printed on the first line).
pub fn summary(m: &Manifest, verified: bool) -> String {
    let h = &m.header;
    let c = &m.capsule;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "manifest {} ({})",
        to_hex(&h.root),
        if verified { "verified" } else { "NOT verified" }
    );
    let _ = writeln!(s, "version      {}", h.version);
    let _ = writeln!(s, "owner        {}", h.owner);
    let _ = writeln!(
        s,
        "capsule      {:?} bio {:?} locale {:?} public {} created {} updated {}",
        c.name, c.bio, c.settings.locale, c.settings.public_profile, c.created_at, c.updated_at
    );
    let _ = writeln!(s, "connections  {}", h.connection_count);
    let _ = writeln!(s, "memories     {}", h.memory_count);
    let _ = writeln!(
        s,
        "blobs        {} ({} bytes, {} chunks)",
        h.blob_count, h.total_blob_bytes, h.total_chunks
    );
    let _ = writeln!(s, "roots        capsule     {}", to_hex(&h.capsule_root));
    let _ = writeln!(
        s,
        "             connections {}",
        to_hex(&h.connections_root)
    );
    let _ = writeln!(s, "             memories    {}", to_hex(&h.memories_root));
    let _ = writeln!(s, "             blobs       {}", to_hex(&h.blobs_root));
    if !m.connections.is_empty() {
        let _ = writeln!(s, "connections:");
        for x in &m.connections {
            let _ = writeln!(
                s,
                "  {}  {}  {:?}  created {} updated {}",
                x.peer, x.status, x.relationship, x.created_at, x.updated_at
            );
        }
    }
    if !m.memories.is_empty() {
        let _ = writeln!(s, "memories:");
        for x in &m.memories {
            let bytes: u64 = x.blobs.iter().map(|b| b.size).sum();
            let _ = write!(
                s,
                "  {}  {}  {:?}  {} blobs, {} bytes",
                x.id,
                x.kind,
                x.title,
                x.blobs.len(),
                bytes
            );
            if !x.tags.is_empty() {
                let _ = write!(s, "  tags {}", x.tags.join(","));
            }
            if let Some(e) = &x.encryption {
                let _ = write!(
                    s,
                    "  encrypted ({}, key {})",
                    e.scheme,
                    bytes_to_hex(&e.wrapped_key)
                );
            }
            let _ = writeln!(s);
            for b in &x.blobs {
                let _ = writeln!(s, "      {}  {}  {}", to_hex(&b.hash), b.size, b.mime_type);
            }
        }
    }
    if !m.blobs.is_empty() {
        let _ = writeln!(s, "blobs:");
        for b in &m.blobs {
            let _ = writeln!(
                s,
                "  {}  {} bytes  {} chunks",
                to_hex(&b.hash),
                b.size,
                b.chunk_hashes.len()
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_top_level_values_skipping_strings_and_comments() {
        let text = r#"
            // a comment with ( and )
            (record { a = "text with ) and \" and (" })
            /* block ( */ (variant { B })(1)
        "#;
        let values = split_candid_values(text).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0], r#"(record { a = "text with ) and \" and (" })"#);
        assert_eq!(values[1], "(variant { B })");
        assert_eq!(values[2], "(1)");
    }

    #[test]
    fn reports_where_splitting_fails() {
        let err = split_candid_values("(1)\n  oops").unwrap_err().to_string();
        assert!(err.contains("line 2, column 3"), "{err}");
        let err = split_candid_values("(record {").unwrap_err().to_string();
        assert!(err.contains("never closed"), "{err}");
        let err = split_candid_values("(1))").unwrap_err().to_string();
        assert!(err.contains("unbalanced ')'"), "{err}");
        let err = split_candid_values("(\"abc").unwrap_err().to_string();
        assert!(err.contains("unterminated string"), "{err}");
    }

    #[test]
    fn underscore_labels_become_ids() {
        let args = candid_parser::parse_idl_args(
            "(record { _42_ = variant { _7_ }; _x_ = 1; __ = 2; name = opt vec { record { _9_ = 1 } } })",
        )
        .unwrap();
        let mut v = args.args[0].clone();
        normalize_labels(&mut v);
        let IDLValue::Record(fields) = v else {
            panic!("record")
        };
        let labels: Vec<String> = fields.iter().map(|f| format!("{:?}", f.id)).collect();
        assert!(labels.contains(&"Id(42)".to_string()), "{labels:?}");
        assert!(labels.contains(&"Named(\"_x_\")".to_string()), "{labels:?}");
        assert!(labels.contains(&"Named(\"__\")".to_string()), "{labels:?}");
        let rendered = format!("{}", IDLValue::Record(fields));
        assert!(rendered.contains("variant { 7 }"), "{rendered}");
        assert!(rendered.contains("record { 9 = 1"), "{rendered}");
    }
}
