//! `icemu serve`: the IC HTTP interface (`crate::http`), names, the admin channel and static
//! files on 127.0.0.1 (README.md).
//!
//! Rounds run in the background at a steady pace (`--round-ms`), with time following the wall
//! clock, so timers progress; each request is handled on its own thread; an update call waits
//! for the background rounds to produce its reply. The state is saved every `--save-secs` and
//! when SIGINT or SIGTERM stops the server.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use emulator::Emulator;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::admin;
use crate::state::{self, ServeInfo, StateDir};

/// Options of `icemu serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = 4943)]
    port: u16,
    /// Serve the files of DIR at `/` (index.html for directories).
    #[arg(long = "static")]
    static_dir: Option<PathBuf>,
    /// Milliseconds between background rounds.
    #[arg(long, default_value_t = 50)]
    round_ms: u64,
    /// Seconds between saves of the state (also saved on SIGINT / SIGTERM).
    #[arg(long, default_value_t = 10)]
    save_secs: u64,
    /// Largest request body in bytes (larger requests get 413).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    max_body: usize,
    /// Seconds a synchronous call (`/api/v3|v4/.../call`) waits for its outcome before
    /// answering 202 (the agent then polls its status).
    #[arg(long, default_value_t = 10)]
    call_timeout_secs: u64,
    /// Print each IC interface request (path, sizes, status, time taken) to stderr.
    #[arg(long, env = "ICEMU_LOG_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    log_http: bool,
}

struct Shared {
    emu: Arc<Emulator>,
    /// The state, for forwarded commands (`POST /api/v1/admin`) and the names.
    st: Arc<Mutex<StateDir>>,
    token: String,
    static_dir: Option<PathBuf>,
    max_body: usize,
    /// The IC HTTP interface.
    ic: Arc<crate::http::Ic>,
    /// Log every IC interface request to stderr (`--log-http`).
    log_http: bool,
}

/// Runs the server until SIGINT / SIGTERM; saves the state on the way out.
pub fn serve(mut st: StateDir, args: ServeArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let server = Server::http(("127.0.0.1", args.port))
        .map_err(|e| anyhow!("binding 127.0.0.1:{}: {e}", args.port))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .unwrap_or(args.port);
    let static_dir = match &args.static_dir {
        Some(d) => Some(
            d.canonicalize()
                .with_context(|| format!("static folder {}", d.display()))?,
        ),
        None => None,
    };
    st.served = true;
    let dir = st.dir.clone();
    let emu = st.emu.clone();
    let ic = Arc::new(crate::http::Ic::new(
        &dir,
        emu.clone(),
        Duration::from_secs(args.call_timeout_secs),
    )?);
    let info = ServeInfo {
        url: format!("http://127.0.0.1:{port}"),
        port,
        pid: std::process::id(),
        token: admin::new_token()?,
    };
    write_serve_info(&dir, &info)?;
    let st = Arc::new(Mutex::new(st));
    let shared = Arc::new(Shared {
        emu: emu.clone(),
        st: st.clone(),
        token: info.token.clone(),
        static_dir,
        max_body: args.max_body,
        ic,
        log_http: args.log_http,
    });
    println!(
        "icemu: serving http://127.0.0.1:{port} (state {}, a round every {} ms)",
        dir.display(),
        args.round_ms
    );
    // Background rounds, time following the wall clock.
    let ticker = {
        let emu = emu.clone();
        let stop = stop.clone();
        let round = Duration::from_millis(args.round_ms.max(1));
        std::thread::spawn(move || {
            let per_round = emu.config().time_per_round;
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(round);
                let now = Instant::now();
                let elapsed = now - last;
                last = now;
                emu.advance_time(elapsed.saturating_sub(per_round));
                emu.tick();
            }
        })
    };
    let mut last_save = Instant::now();
    let save_every = Duration::from_secs(args.save_secs.max(1));
    while !stop.load(Ordering::Relaxed) {
        if last_save.elapsed() >= save_every {
            // A forwarded command holding the state saves when it is done; try again later.
            if let Ok(mut st) = st.try_lock() {
                if let Err(e) = st.save() {
                    eprintln!("icemu: saving failed: {e:#}");
                }
                last_save = Instant::now();
            }
        }
        let req = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                eprintln!("icemu: accept: {e}");
                continue;
            }
        };
        let shared = shared.clone();
        std::thread::spawn(move || handle(&shared, req));
    }
    eprintln!("icemu: stopping; saving the state");
    let _ = ticker.join();
    // Commands forwarded from here on wait for the lock and run in their own process.
    let _ = std::fs::remove_file(state::serve_info_path(&dir));
    lock(&st).save()?;
    Ok(())
}

fn lock(st: &Mutex<StateDir>) -> MutexGuard<'_, StateDir> {
    st.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `DIR/serve.json` readable by the owner only (it holds the admin token).
fn write_serve_info(dir: &Path, info: &ServeInfo) -> Result<()> {
    crate::http::keys::write_private(
        &state::serve_info_path(dir),
        &serde_json::to_vec_pretty(info)?,
    )
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn respond(req: Request, status: u16, content_type: &str, body: Vec<u8>) {
    let r = Response::from_data(body)
        .with_status_code(status)
        .with_header(header("content-type", content_type))
        .with_header(header("access-control-allow-origin", "*"));
    let _ = req.respond(r);
}

fn text(req: Request, status: u16, msg: &str) {
    respond(
        req,
        status,
        "text/plain; charset=utf-8",
        msg.as_bytes().to_vec(),
    );
}

fn handle(sh: &Shared, mut req: Request) {
    let url = req.url().to_string();
    let path = url.split(['?', '#']).next().unwrap_or("/").to_string();
    let method = req.method().clone();
    if method == Method::Options {
        let r = Response::empty(204)
            .with_header(header("access-control-allow-origin", "*"))
            .with_header(header("access-control-allow-methods", "GET, POST, OPTIONS"))
            .with_header(header("access-control-allow-headers", "content-type"))
            .with_header(header("access-control-max-age", "600"));
        let _ = req.respond(r);
        return;
    }
    match (&method, path.as_str()) {
        (Method::Post, admin::PATH) => {
            let loopback = req.remote_addr().is_some_and(|a| a.ip().is_loopback());
            let token_ok = req
                .headers()
                .iter()
                .any(|h| h.field.equiv(admin::TOKEN_HEADER) && h.value.as_str() == sh.token);
            if !loopback || !token_ok {
                return text(
                    req,
                    403,
                    "forbidden: the admin endpoint takes the token in DIR/serve.json",
                );
            }
            let body = match read_body(&mut req, sh.max_body) {
                Ok(b) => b,
                Err(status) => return text(req, status, "bad admin request body"),
            };
            let reply = crate::exec_forwarded(&mut lock(&sh.st), &body);
            let bytes = serde_json::to_vec(&reply).unwrap_or_default();
            // With a Content-Length, never chunked: the forwarding client reads the body whole.
            let r = Response::from_data(bytes)
                .with_status_code(200)
                .with_chunked_threshold(usize::MAX)
                .with_header(header("content-type", "application/json"));
            let _ = req.respond(r);
        }
        (Method::Post, p) if p.starts_with("/api/v") => {
            let body = match read_body(&mut req, sh.max_body) {
                Ok(b) => b,
                Err(status) => {
                    let msg = format!("request body larger than {} bytes", sh.max_body);
                    return text(req, status, &msg);
                }
            };
            let t0 = Instant::now();
            match sh.ic.post(p, &body) {
                Some(r) => {
                    if sh.log_http {
                        eprintln!(
                            "icemu: POST {p} ({} bytes) -> {} ({} bytes) in {} ms",
                            body.len(),
                            r.status,
                            r.body.len(),
                            t0.elapsed().as_millis()
                        );
                    }
                    respond(req, r.status, r.content_type, r.body)
                }
                None => text(req, 404, "unknown endpoint"),
            }
        }
        (Method::Post, _) => text(req, 404, "unknown endpoint"),
        (Method::Get | Method::Head, "/api/v2/status") => {
            let r = sh.ic.status();
            respond(req, r.status, r.content_type, r.body)
        }
        (Method::Get | Method::Head, "/api/v1/canisters") => {
            let names = lock(&sh.st).names.clone();
            let map: serde_json::Map<String, serde_json::Value> = names
                .canisters
                .iter()
                .filter(|(_, n)| sh.emu.canister_exists(n.id))
                .map(|(k, n)| (k.clone(), n.id.to_text().into()))
                .collect();
            let body = serde_json::to_vec(&map).unwrap_or_default();
            respond(req, 200, "application/json", body);
        }
        (Method::Get | Method::Head, p) if p.starts_with("/api/v1/identity/") => {
            let name = percent_decode(&p["/api/v1/identity/".len()..]);
            if name.is_empty() {
                return text(req, 400, "missing identity name");
            }
            text(req, 200, &state::identity(&name).to_text());
        }
        (Method::Get | Method::Head, p) if p.starts_with("/api/") => {
            text(req, 404, "unknown endpoint")
        }
        (Method::Get | Method::Head, p) => match &sh.static_dir {
            Some(dir) => serve_file(req, dir, p),
            None => text(req, 404, "not found (no --static folder)"),
        },
        _ => text(req, 405, "method not allowed"),
    }
}

/// Reads the body up to `max` bytes; `Err(413)` when larger, `Err(400)` on a read error.
fn read_body(req: &mut Request, max: usize) -> Result<Vec<u8>, u16> {
    if req.body_length().is_some_and(|n| n > max) {
        return Err(413);
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| 400u16)?;
    if body.len() > max {
        return Err(413);
    }
    Ok(body)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(h) = std::str::from_utf8(&b[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Content type by file extension.
pub fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        Some("did") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve_file(req: Request, root: &Path, url_path: &str) {
    let rel = percent_decode(url_path.trim_start_matches('/'));
    let rel = Path::new(&rel);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return text(req, 400, "bad path");
    }
    let mut path = root.join(rel);
    if path.is_dir() {
        path = path.join("index.html");
    }
    match std::fs::read(&path) {
        Ok(bytes) => {
            let r = Response::from_data(bytes)
                .with_header(header("content-type", content_type(&path)))
                .with_header(header("access-control-allow-origin", "*"))
                .with_header(header("cache-control", "no-cache"))
                .with_header(header("x-content-type-options", "nosniff"));
            let _ = req.respond(r);
        }
        Err(_) => text(req, 404, "not found"),
    }
}
