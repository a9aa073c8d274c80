//! `icemu upload` and `icemu download`: files in and out of a canister serving the capsule
//! blob API (`begin_blob_upload` → `put_blob_chunk` → `finish_blob_upload`; `get_blob`,
//! `get_blob_chunk`), in 256 KiB chunks, with a byte progress bar. A blob's id is its BLAKE3
//! hash, what `b3sum` prints for the file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use candid::types::value::IDLValue;
use candid::{CandidType, IDLArgs, Principal};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::state::StateDir;
use crate::text::Interface;
use crate::{Io, Rejected, write_line};

/// The capsule API's chunk size.
pub const CHUNK: usize = 256 * 1024;

/// Arguments of `upload`.
#[derive(Args, Serialize, Deserialize, Debug)]
pub struct UploadArgs {
    /// Canister name or principal (`backend`, `personal-ada`, ...).
    pub canister: String,
    /// Files to upload, each as one blob.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Identity that uploads (the capsule's owner).
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    pub as_: String,
}

/// Arguments of `download`.
#[derive(Args, Serialize, Deserialize, Debug)]
pub struct DownloadArgs {
    /// Canister name or principal.
    pub canister: String,
    /// The blob id: its BLAKE3 hash in hex (what `b3sum` and `icemu upload` print).
    pub blob_id: String,
    /// Where to write the blob (written to FILE.part, renamed once its hash is verified).
    #[arg(long)]
    pub out: PathBuf,
    /// Identity that reads (the capsule's owner).
    #[arg(long = "as", env = "ICEMU_IDENTITY", default_value = "admin")]
    pub as_: String,
}

/// The bytes read back do not hash to the blob id (exit status 4); nothing is left at --out.
#[derive(Debug)]
pub struct HashMismatch {
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for HashMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hash mismatch: the bytes read hash to {}, not to the blob id {}; nothing written",
            self.actual, self.expected
        )
    }
}

impl std::error::Error for HashMismatch {}

/// The canister answered `variant { Err = ... }` (exit status 1, the error printed).
#[derive(Debug)]
pub struct ApiError {
    pub method: String,
    pub error: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} answered Err: {}", self.method, self.error)
    }
}

impl std::error::Error for ApiError {}

#[derive(CandidType)]
struct BlobUploadRequest {
    size: u64,
    expected_hash: Option<ByteBuf>,
}

/// A canister, a caller and how to print its replies.
struct Target<'a> {
    st: &'a StateDir,
    id: Principal,
    sender: Principal,
    iface: Option<Interface>,
}

impl Target<'_> {
    /// An update (or query) call; the `Ok` value of its `Result` reply.
    fn call(&self, method: &str, arg: Vec<u8>, query: bool) -> Result<IDLValue> {
        let reply = if query {
            self.st.emu.query(self.id, self.sender, method, arg)
        } else if self.st.served {
            crate::served_update(&self.st.emu, self.id, self.sender, method, arg, 0)
        } else {
            self.st.emu.update(self.id, self.sender, method, arg)
        }
        .map_err(Rejected)?;
        let typed = self
            .iface
            .as_ref()
            .and_then(|i| i.method(method).map(|m| (i, m)));
        let args = match typed {
            Some((i, (_, rets, _))) => i.decode(&reply, &rets)?,
            None => crate::text::decode_untyped(&reply)?,
        };
        ok_of(method, args)
    }
}

/// The `Ok` payload of a reply `(variant { Ok = V; Err = E })`, or an [`ApiError`].
fn ok_of(method: &str, args: IDLArgs) -> Result<IDLValue> {
    let Some(IDLValue::Variant(v)) = args.args.first() else {
        bail!("{method} answered something that is not a Result: {args}");
    };
    let f = &v.0;
    if f.id.get_id() == candid::idl_hash("Ok") {
        Ok(f.val.clone())
    } else if f.id.get_id() == candid::idl_hash("Err") {
        Err(ApiError {
            method: method.into(),
            error: f.val.to_string(),
        }
        .into())
    } else {
        bail!("{method} answered neither Ok nor Err: {args}")
    }
}

/// Field `name` of a record value.
fn field<'v>(v: &'v IDLValue, name: &str) -> Option<&'v IDLValue> {
    match v {
        IDLValue::Record(fs) => fs
            .iter()
            .find(|f| f.id.get_id() == candid::idl_hash(name))
            .map(|f| &f.val),
        _ => None,
    }
}

fn as_u64(v: &IDLValue) -> Option<u64> {
    match v {
        IDLValue::Nat64(n) => Some(*n),
        IDLValue::Nat(n) => u64::try_from(n.0.clone()).ok(),
        _ => None,
    }
}

fn as_bytes(v: &IDLValue) -> Option<Vec<u8>> {
    crate::text::first_blob(&IDLArgs::new(std::slice::from_ref(v)))
}

fn target<'a>(st: &'a mut StateDir, canister: &str, as_: &str) -> Result<Target<'a>> {
    let id = st.canister(canister)?;
    let sender = st.identity(as_);
    let iface = crate::interface_of(st, id, None)?;
    Ok(Target {
        st,
        id,
        sender,
        iface,
    })
}

fn bar(len: u64, show: bool, prefix: String) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    ProgressBar::with_draw_target(Some(len), target)
        .with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        )
        .with_prefix(prefix)
}

/// The BLAKE3 hash of a file (= `b3sum`).
pub fn hash_file(path: &Path) -> Result<blake3::Hash> {
    let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    h.update_reader(f)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(h.finalize())
}

/// `icemu upload`: each file becomes a blob; prints `<blob id>  <file>` (b3sum's format).
pub fn upload(st: &mut StateDir, a: UploadArgs, io: &mut Io) -> Result<()> {
    let progress = io.progress;
    let t = target(st, &a.canister, &a.as_)?;
    for path in &a.files {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let hash = hash_file(path)?;
        let req = BlobUploadRequest {
            size,
            expected_hash: Some(ByteBuf::from(hash.as_bytes().to_vec())),
        };
        let upload = t
            .call("begin_blob_upload", candid::encode_one(&req)?, false)
            .with_context(|| format!("uploading {}", path.display()))?;
        let upload = as_u64(&upload)
            .ok_or_else(|| anyhow!("begin_blob_upload answered Ok without an upload id"))?;
        let pb = bar(size, progress, format!("upload {}", path.display()));
        let sent = put_chunks(&t, upload, path, &pb);
        let finished =
            sent.and_then(|()| t.call("finish_blob_upload", candid::encode_one(upload)?, false));
        let desc = match finished {
            Ok(d) => d,
            Err(e) => {
                pb.abandon();
                // Release the session (its declared size counts against the capsule).
                let _ = t.call("abort_blob_upload", candid::encode_one(upload)?, false);
                return Err(e.context(format!("uploading {}", path.display())));
            }
        };
        pb.finish_and_clear();
        let stored = field(&desc, "hash").and_then(as_bytes);
        if stored.as_deref() != Some(hash.as_bytes().as_slice()) {
            bail!(
                "finish_blob_upload answered a blob whose hash is not the file's ({}): {desc}",
                hash.to_hex()
            );
        }
        write_line(
            &mut *io.out,
            format_args!("{}  {}", hash.to_hex(), path.display()),
        )?;
    }
    Ok(())
}

fn put_chunks(t: &Target, upload: u64, path: &Path, pb: &ProgressBar) -> Result<()> {
    let mut f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = vec![0u8; CHUNK];
    let mut index = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 && index > 0 {
            break;
        }
        let arg = candid::encode_args((upload, index, serde_bytes::Bytes::new(&buf[..n])))?;
        t.call("put_blob_chunk", arg, false)
            .with_context(|| format!("chunk {index}"))?;
        pb.inc(n as u64);
        index += 1;
        if n < CHUNK {
            break;
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `icemu download`: `get_blob` for the size, `get_blob_chunk` for every chunk, the hash
/// verified before the file is put in place.
pub fn download(st: &mut StateDir, a: DownloadArgs, io: &mut Io) -> Result<()> {
    let progress = io.progress;
    let id = parse_blob_id(&a.blob_id)?;
    let t = target(st, &a.canister, &a.as_)?;
    let hash_arg = || candid::encode_one(serde_bytes::Bytes::new(&id));
    let desc = t.call("get_blob", hash_arg()?, true)?;
    let size = field(&desc, "size")
        .and_then(as_u64)
        .ok_or_else(|| anyhow!("get_blob answered a record without a size: {desc}"))?;
    let chunks = size.div_ceil(CHUNK as u64).max(1);
    let part = {
        let mut p = a.out.clone().into_os_string();
        p.push(".part");
        PathBuf::from(p)
    };
    let pb = bar(size, progress, format!("download {}", a.out.display()));
    let result = (|| -> Result<blake3::Hash> {
        let mut out = File::create(&part).with_context(|| format!("writing {}", part.display()))?;
        let mut h = blake3::Hasher::new();
        for i in 0..chunks {
            let arg = candid::encode_args((serde_bytes::Bytes::new(&id), i))?;
            let v = t
                .call("get_blob_chunk", arg, true)
                .with_context(|| format!("chunk {i}"))?;
            let bytes = as_bytes(&v).unwrap_or_default();
            h.update(&bytes);
            out.write_all(&bytes)
                .with_context(|| format!("writing {}", part.display()))?;
            pb.inc(bytes.len() as u64);
        }
        out.sync_all()?;
        Ok(h.finalize())
    })();
    let actual = match result {
        Ok(h) => h,
        Err(e) => {
            pb.abandon();
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    pb.finish_and_clear();
    if let Err(e) = verify(&id, actual) {
        let _ = std::fs::remove_file(&part);
        return Err(e.into());
    }
    std::fs::rename(&part, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    write_line(
        &mut *io.out,
        format_args!(
            "{}  {} ({size} bytes, hash verified)",
            actual.to_hex(),
            a.out.display()
        ),
    )?;
    Ok(())
}

/// Whether bytes hashing to `actual` are the blob `id`.
fn verify(id: &[u8], actual: blake3::Hash) -> Result<(), HashMismatch> {
    if actual.as_bytes() == id {
        Ok(())
    } else {
        Err(HashMismatch {
            expected: hex::encode(id),
            actual: actual.to_hex().to_string(),
        })
    }
}

/// A blob id: 64 hex digits.
fn parse_blob_id(s: &str) -> Result<Vec<u8>> {
    let b = hex::decode(s.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            anyhow!(
                "not a blob id: `{s}` (a blob id is a BLAKE3 hash: 64 hex digits, as b3sum prints)"
            )
        })?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_do_not_hash_to_the_id_are_a_hash_mismatch_with_exit_status_4() {
        let id = blake3::hash(b"the blob");
        assert!(verify(id.as_bytes(), blake3::hash(b"the blob")).is_ok());
        let e = verify(id.as_bytes(), blake3::hash(b"other bytes")).unwrap_err();
        assert_eq!(e.expected, id.to_hex().to_string());
        assert!(e.to_string().contains("nothing written"), "{e}");
        let mut err = Vec::new();
        assert_eq!(crate::exit_status(Err(e.into()), &mut err), 4);
        assert!(String::from_utf8(err).unwrap().contains("hash mismatch"));
    }

    #[test]
    fn blob_ids_are_64_hex_digits() {
        assert!(parse_blob_id(&"ab".repeat(32)).is_ok());
        for bad in ["", "abc", &"ab".repeat(31), &"zz".repeat(32)] {
            let e = parse_blob_id(bad).unwrap_err().to_string();
            assert!(e.contains("not a blob id"), "{e}");
        }
    }

    #[test]
    fn ok_and_err_replies_are_told_apart_untyped() {
        let ok =
            candid::IDLArgs::from_bytes(&candid::encode_one(Result::<u64, String>::Ok(7)).unwrap())
                .unwrap();
        assert_eq!(as_u64(&ok_of("m", ok).unwrap()), Some(7));
        let err = candid::IDLArgs::from_bytes(
            &candid::encode_one(Result::<u64, String>::Err("no".into())).unwrap(),
        )
        .unwrap();
        let e = ok_of("m", err).unwrap_err();
        assert!(e.downcast_ref::<ApiError>().is_some(), "{e}");
    }
}
