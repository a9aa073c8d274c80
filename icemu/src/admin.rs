//! The admin channel between icemu processes and an `icemu serve` holding the state directory.
//!
//! `serve` writes `DIR/serve.json` ([`ServeInfo`]: URL, pid, a random token). Another icemu
//! process on DIR, finding the lock held and that file present, sends its parsed command (paths
//! made absolute, defaults resolved) as JSON to `POST /api/v1/admin` on 127.0.0.1 with the token
//! in `x-icemu-token`; the server runs it on its in-memory state (between its background rounds)
//! and answers `{"exit": N, "stdout": "...", "stderr": "..."}`, which the process prints and exits
//! with. Only loopback peers with the token are served, so a web page the browser opens cannot
//! drive the endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};

use crate::state::ServeInfo;

/// The path of the admin endpoint.
pub const PATH: &str = "/api/v1/admin";
/// The header carrying the token.
pub const TOKEN_HEADER: &str = "x-icemu-token";

/// The answer of the admin endpoint.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdminReply {
    /// The command's exit status (as if run here).
    pub exit: u8,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// Why forwarding failed.
pub enum ForwardError {
    /// No server answers at the address (it stopped): the caller may open the state itself.
    Unreachable(std::io::Error),
    /// The server answered with an error.
    Other(anyhow::Error),
}

/// A fresh random token (hex of 16 bytes from the OS).
pub fn new_token() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom")?;
    Ok(hex::encode(b))
}

/// Sends `cmd` (serialized) to the server of `info` and returns its answer.
pub fn forward<T: Serialize>(info: &ServeInfo, cmd: &T) -> Result<AdminReply, ForwardError> {
    let body = serde_json::to_vec(cmd).map_err(|e| ForwardError::Other(e.into()))?;
    let mut s = TcpStream::connect(("127.0.0.1", info.port)).map_err(ForwardError::Unreachable)?;
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/json\r\n{TOKEN_HEADER}: {}\r\nContent-Length: {}\r\n\r\n",
        info.port,
        info.token,
        body.len()
    );
    let io = |e: std::io::Error| {
        ForwardError::Other(anyhow!("talking to icemu serve at {}: {e}", info.url))
    };
    s.set_write_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(&body).map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            ForwardError::Other(anyhow!("icemu serve at {} sent no HTTP answer", info.url))
        })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = &raw[end + 4..];
    if status != 200 {
        return Err(ForwardError::Other(anyhow!(
            "icemu serve at {} answered {status}: {}",
            info.url,
            String::from_utf8_lossy(body).trim()
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        ForwardError::Other(anyhow!(
            "icemu serve at {} answered something else: {e}",
            info.url
        ))
    })
}
