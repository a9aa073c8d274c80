//! `manifest`: hash files like `b3sum` (with chunk hashes), show and diff capsule manifests.

use blobstore::hash::{CHUNK_SIZE, StreamHasher, to_hex};
use clap::{Parser, Subcommand};
use manifests::text::{self, Input};
use manifests::{Manifest, diff};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;

const INPUTS: &str = "\
INPUT FORMATS (show and diff):
  Candid text, exactly as `dfx canister call backend export_manifest_page '(...)'` or the
  emulator CLI prints the page query's reply: one `(record { header = ...; page = ... })` per
  page (or `(variant { Ok = record { ... } })`), several pages concatenated in one file or
  spread over several files, in any order (a page given twice counts once). Numeric field
  names, printed when the .did was not available (`1_234 = ...` or `_1234_ = ...`), work like
  the real names.
  JSON: what `manifest show --json` writes (a whole manifest), or page replies in JSON.
  Every manifest is verified (leaf order, blob chunk hashes, section roots, root) while read,
  unless --no-verify.";

#[derive(Parser)]
#[command(
    name = "manifest",
    version,
    about = "Hash files like b3sum and inspect capsule manifests (show, verify, diff)",
    long_about = "Hash files like b3sum, with their 256 KiB chunk hashes, and inspect the \
                  manifests that the backend exports for a migration: show a manifest (verifying \
                  its root) and compare two manifests.\n\n\
                  Exit codes: 0 success (diff: identical), 1 diff: the manifests differ, \
                  2 bad input (unreadable file, undecodable text, manifest that does not verify) \
                  or bad usage.",
    after_help = INPUTS
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print each file's blob hash (the value b3sum prints) and its chunk hashes.
    #[command(long_about = "Print each file's blob hash and its chunk hashes.\n\n\
        The first line for each file is exactly b3sum's: `<64 hex digits>  <path>` (paths with a \
        backslash or newline are escaped and the line starts with a backslash, as b3sum does). \
        Unless --no-chunks, the hashes of the file's 256 KiB chunks follow, one per line, as \
        `  chunk <index> <hash>`; a file of at most 256 KiB has one chunk whose hash is the blob \
        hash, the empty file has none. Files are streamed, never read whole into memory. `-` \
        reads standard input.")]
    Hash {
        /// Files to hash (`-` for standard input).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// Print only the b3sum-compatible lines.
        #[arg(long)]
        no_chunks: bool,
        /// Print a JSON array of {path, hash, size, chunk_size, chunks}.
        #[arg(long)]
        json: bool,
    },
    /// Read a manifest (candid text of its pages, or JSON), verify it and summarize it.
    #[command(long_about = "Read a manifest, verify it and print a summary: root, owner, \
        counts, bytes, section roots, then one line per connection, memory (with its blobs) and \
        blob. With --json print the whole manifest as JSON instead, which show and diff read \
        back. All FILEs together form one manifest (e.g. one file per page); with no FILE or \
        `-`, standard input is read.", after_help = INPUTS)]
    Show {
        /// Input files (`-` or nothing for standard input).
        #[arg(value_name = "FILE")]
        files: Vec<String>,
        /// Write the manifest's JSON form instead of the summary.
        #[arg(long)]
        json: bool,
        /// Do not verify (to inspect a manifest that fails verification).
        #[arg(long)]
        no_verify: bool,
    },
    /// Compare two manifests: exit 0 when identical, 1 when they differ, 2 on bad input.
    #[command(long_about = "Compare manifests A and B, each given as one file (candid text \
        of its pages, or JSON; `-` for standard input, on one side only). Both are verified \
        first (unless --no-verify). Prints `identical <root>` and exits 0 when the roots are equal; otherwise prints \
        one line per difference (roots, capsule metadata, connections added/removed/changed by \
        peer, memories added/removed/metadata changed by id, a memory's blob replaced with the \
        differing chunk indices, blobs added/removed) and exits 1. Exits 2 on bad input.",
        after_help = INPUTS)]
    Diff {
        /// Manifest A.
        a: String,
        /// Manifest B.
        b: String,
        /// Print the differences as a JSON array.
        #[arg(long)]
        json: bool,
        /// Do not verify the inputs (e.g. to see what was altered in a manifest that fails
        /// verification, against a good one).
        #[arg(long)]
        no_verify: bool,
    },
    /// Verify a capsule archive (tar): every blob's hash, the JSON files, the root.
    #[command(
        long_about = "Verify a capsule archive (the tar file \"download my capsule\" \
        writes; format in manifests/README.md): hash every blob file (its name must be the \
        hash b3sum prints for it, and match the manifest's leaf), compare capsule.json, \
        memories.json and connections.json with the manifest, and recompute the root from \
        those files. Prints `verified <root> (<n> blobs, <bytes> bytes)` and exits 0, or one \
        line per entry that differs (`<entry>: <why>`) and exits 1. Exits 2 when the file \
        cannot be read as an archive or holds no manifest.json."
    )]
    Verify {
        /// The archive (`-` for standard input).
        archive: String,
    },
}

fn cmd_verify(path: &str) -> ExitCode {
    let input: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(io::BufReader::new(f)),
            Err(e) => {
                eprintln!("manifest: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match manifests::archive::verify(input) {
        Ok(report) if report.is_ok() => {
            println!(
                "verified {} ({} blobs, {} bytes)",
                to_hex(&report.root),
                report.blobs,
                report.blob_bytes
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for d in &report.differences {
                println!("{}: {}", d.entry, d.reason);
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("manifest: {path}: {e}");
            ExitCode::from(2)
        }
    }
}

/// b3sum's escaping of a path in its output line: returns (escaped path, needs leading `\`).
fn b3sum_path(path: &str) -> (String, bool) {
    if path.contains('\\') || path.contains('\n') {
        (path.replace('\\', "\\\\").replace('\n', "\\n"), true)
    } else {
        (path.to_string(), false)
    }
}

struct FileHash {
    hash: [u8; 32],
    chunks: Vec<[u8; 32]>,
    size: u64,
}

fn hash_reader(mut r: impl Read) -> io::Result<FileHash> {
    let mut hasher = StreamHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let (hash, chunks, size) = hasher.finalize();
    Ok(FileHash { hash, chunks, size })
}

fn hash_path(path: &str) -> io::Result<FileHash> {
    if path == "-" {
        hash_reader(io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::other("is a directory"));
        }
        hash_reader(file)
    }
}

fn cmd_hash(files: &[String], no_chunks: bool, json: bool) -> ExitCode {
    let mut failed = false;
    let mut out = io::stdout().lock();
    let mut records = Vec::new();
    for path in files {
        let h = match hash_path(path) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("manifest hash: {path}: {e}");
                failed = true;
                continue;
            }
        };
        if json {
            let mut rec = serde_json::json!({
                "path": path,
                "hash": to_hex(&h.hash),
                "size": h.size,
                "chunk_size": CHUNK_SIZE,
            });
            if !no_chunks {
                rec["chunks"] = h.chunks.iter().map(to_hex).collect();
            }
            records.push(rec);
            continue;
        }
        let (shown, escaped) = b3sum_path(path);
        let _ = writeln!(
            out,
            "{}{}  {}",
            if escaped { "\\" } else { "" },
            to_hex(&h.hash),
            shown
        );
        if !no_chunks {
            for (i, c) in h.chunks.iter().enumerate() {
                let _ = writeln!(out, "  chunk {i} {}", to_hex(c));
            }
        }
    }
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&records).expect("json values serialize")
        );
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn read_input(path: &str) -> Result<String, String> {
    let mut text = String::new();
    if path == "-" {
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
    } else {
        text = std::fs::read_to_string(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(text)
}

fn load(paths: &[String], verify: bool) -> Result<Manifest, String> {
    let mut inputs: Vec<Input> = Vec::new();
    for path in paths {
        let text = read_input(path)?;
        inputs.extend(text::parse(&text).map_err(|e| format!("{path}: {e}"))?);
    }
    let name = paths.join(" ");
    text::assemble_with(inputs, verify).map_err(|e| format!("{name}: {e}"))
}

fn cmd_show(files: &[String], json: bool, verify: bool) -> ExitCode {
    let files = if files.is_empty() {
        vec!["-".to_string()]
    } else {
        files.to_vec()
    };
    if files.iter().filter(|f| *f == "-").count() > 1 {
        eprintln!("manifest show: standard input (-) can be given once");
        return ExitCode::from(2);
    }
    match load(&files, verify) {
        Ok(m) => {
            let text = if json {
                text::to_json(&m) + "\n"
            } else {
                text::summary(&m, verify)
            };
            let _ = io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("manifest show: {e}");
            ExitCode::from(2)
        }
    }
}

fn cmd_diff(a: &str, b: &str, json: bool, verify: bool) -> ExitCode {
    if a == "-" && b == "-" {
        eprintln!("manifest diff: standard input (-) can be only one of A and B");
        return ExitCode::from(2);
    }
    let (ma, mb) = match (
        load(&[a.to_string()], verify),
        load(&[b.to_string()], verify),
    ) {
        (Ok(ma), Ok(mb)) => (ma, mb),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("manifest diff: {e}");
            return ExitCode::from(2);
        }
    };
    let differences = diff(&ma, &mb);
    let mut out = io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&differences).expect("differences serialize")
        );
    } else if differences.is_empty() {
        let _ = writeln!(out, "identical {}", to_hex(&ma.header.root));
    } else {
        for d in &differences {
            let _ = writeln!(out, "{d}");
        }
    }
    if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Hash {
            files,
            no_chunks,
            json,
        } => cmd_hash(files, *no_chunks, *json),
        Command::Show {
            files,
            json,
            no_verify,
        } => cmd_show(files, *json, !*no_verify),
        Command::Diff {
            a,
            b,
            json,
            no_verify,
        } => cmd_diff(a, b, *json, !*no_verify),
        Command::Verify { archive } => cmd_verify(archive),
    }
}
