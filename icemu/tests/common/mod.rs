//! Helpers: run the built `icemu` binary on a temporary state directory.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The backend wasm built by `scripts/build.sh` (a clear failure when missing).
pub fn backend_wasm() -> PathBuf {
    let p = repo().join("target/wasm/backend.wasm.gz");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build.sh first",
        p.display()
    );
    p
}

/// A temporary state directory, removed on drop.
pub struct Temp(pub PathBuf);

impl Temp {
    /// A fresh directory.
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "icemu-test-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `icemu --state STATE ARGS...` in the repository root.
pub fn icemu(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icemu"))
        .current_dir(repo())
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("run icemu")
}

/// Runs icemu and asserts success; returns stdout.
pub fn ok(state: &Path, args: &[&str]) -> String {
    let out = icemu(state, args);
    assert!(
        out.status.success(),
        "icemu {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A state with the backend deployed as `backend`.
pub fn with_backend(tag: &str) -> Temp {
    let t = Temp::new(tag);
    let wasm = backend_wasm();
    ok(
        &t.0,
        &[
            "deploy",
            "backend",
            wasm.to_str().unwrap(),
            "--cycles",
            "500_000_000_000_000",
        ],
    );
    t
}

/// Candid text of a blob literal.
pub fn blob_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3 + 8);
    s.push_str("blob \"");
    for b in bytes {
        s.push_str(&format!("\\{b:02x}"));
    }
    s.push('"');
    s
}

/// Deterministic pseudo-random bytes (the workspace's test fixture).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    test_support::bytes::noise(n, seed)
}

/// A running `icemu serve`, killed on drop if it still runs.
pub struct Served {
    pub child: Child,
    pub port: u16,
}

impl Served {
    /// Starts `icemu --state STATE serve --port 0 --round-ms 10 EXTRA...` and waits until it
    /// listens: its first line on stdout is the address it bound.
    pub fn start<S: AsRef<OsStr>>(state: &Path, extra: &[S]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_icemu"))
            .arg("--state")
            .arg(state)
            .args(["serve", "--port", "0", "--round-ms", "10"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn icemu serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no port in {line:?}");
        };
        Served { child, port }
    }

    /// Stops the server with SIGTERM (a clean stop) and waits for it; returns its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -TERM {}", self.child.id());
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP reply: status, headers, body.
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request to the local `port` over a fresh connection (`Connection: close`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}
