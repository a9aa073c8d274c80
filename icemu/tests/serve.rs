//! `icemu serve`: the IC HTTP interface's status and refusals at the HTTP level (agents'
//! calls are in tests/agent.rs), CORS preflight, size limit, static files, names, forwarded
//! commands and a clean stop on SIGTERM.

mod common;

use std::process::Command;

use common::{Served, http, ok, with_backend};

/// `icemu call` arguments: `webuser` creates the capsule "Web" on the backend.
const CREATE_WEB_CAPSULE: &[&str] = &[
    "call",
    "--as",
    "webuser",
    "backend",
    "create_capsule",
    r#"(record { name = "Web"; bio = "b"; settings = null })"#,
];

#[test]
fn serve_answers_status_refusals_preflights_static_files_and_stops_cleanly() {
    let t = with_backend("serve");
    let static_dir = t.0.join("www");
    std::fs::create_dir_all(&static_dir).unwrap();
    std::fs::write(static_dir.join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(static_dir.join("app.js"), "console.log(1)").unwrap();
    let backend = ok(&t.0, &["canisters"])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let mut served = Served::start(
        &t.0,
        &[std::ffi::OsStr::new("--static"), static_dir.as_os_str()],
    );
    let port = served.port;

    // Status: CBOR with the DER-wrapped BLS root key, readable from any origin.
    let r = http(port, "GET", "/api/v2/status", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/cbor"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let v: serde_cbor::Value = serde_cbor::from_slice(&r.body).unwrap();
    let serde_cbor::Value::Map(m) = v else {
        panic!("{v:?}")
    };
    let root_key = m
        .get(&serde_cbor::Value::Text("root_key".into()))
        .cloned()
        .unwrap();
    assert!(matches!(root_key, serde_cbor::Value::Bytes(b) if b.len() == 133));

    // A body that is not a CBOR envelope: 400 with the reason; an unknown endpoint: 404.
    let call_path = format!("/api/v3/canister/{backend}/call");
    let r = http(
        port,
        "POST",
        &call_path,
        &[("content-type", "application/cbor")],
        b"nope",
    );
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("not a CBOR request envelope"));
    let r = http(
        port,
        "POST",
        &format!("/api/v3/canister/{backend}/nope"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);

    // Preflight.
    let r = http(
        port,
        "OPTIONS",
        &call_path,
        &[
            ("origin", "http://localhost:5173"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );

    // Identity and canisters.
    let r = http(port, "GET", "/api/v1/identity/webuser", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        ok(&t.0, &["identity", "webuser"]).trim()
    );
    let r = http(port, "GET", "/api/v1/canisters", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["backend"], backend.as_str());

    // Too large a body: 413.
    let big = vec![0u8; 3 * 1024 * 1024 + 1];
    let r = http(
        port,
        "POST",
        &call_path,
        &[("content-type", "application/cbor")],
        &big,
    );
    assert_eq!(r.status, 413);

    // Static files with content types.
    let r = http(port, "GET", "/", &[], b"");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/html; charset=utf-8"))
    );
    let r = http(port, "GET", "/app.js", &[], b"");
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(http(port, "GET", "/missing.css", &[], b"").status, 404);
    assert_eq!(http(port, "GET", "/../etc/passwd", &[], b"").status, 400);

    // A command while serving runs on the server's state (forwarded) ...
    let out = ok(&t.0, CREATE_WEB_CAPSULE);
    assert!(out.contains("\"Web\""), "{out}");
    // ... and a clean stop on SIGTERM saves it: the capsule is there for the next process.
    let status = served.terminate();
    assert!(status.success(), "{status}");
    let out = ok(&t.0, &["call", "--as", "webuser", "backend", "get_capsule"]);
    assert!(out.contains("\"Web\""), "{out}");
}

/// `icemu` with a short lock timeout: a command that waited for serve's lock would fail.
fn icemu_nowait(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_icemu"))
        .current_dir(common::repo())
        .env("ICEMU_LOCK_TIMEOUT", "1")
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn commands_on_a_served_state_dir_are_forwarded_to_serve() {
    let t = with_backend("forward");
    let mut served = Served::start::<&str>(&t.0, &[]);
    let port = served.port;
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.0.join("serve.json")).unwrap()).unwrap();
    assert_eq!(info["port"], port);
    assert_eq!(info["url"], format!("http://127.0.0.1:{port}"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(t.0.join("serve.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "serve.json holds the admin token: owner only"
    );
    // A fault injected by another process takes effect in the server at once.
    let out = icemu_nowait(
        &t.0,
        &[
            "fault",
            "reject",
            "--canister",
            "backend",
            "--method",
            "create_capsule",
            "--code",
            "4",
            "--count",
            "1",
            "--message",
            "forwarded fault",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(icemu_nowait(&t.0, &["fault", "list"]).stdout).unwrap();
    assert!(list.contains("forwarded fault"), "{list}");
    let create = || icemu_nowait(&t.0, CREATE_WEB_CAPSULE);
    let out = create();
    assert_eq!(
        out.status.code(),
        Some(14),
        "the forwarded fault did not reject"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("forwarded fault"));
    // Cleared from another process: the next call goes through.
    assert!(icemu_nowait(&t.0, &["fault", "clear"]).status.success());
    assert!(create().status.success());

    // Calls (typed by the remembered .did), rejects with their exit status, rounds, status.
    let out = icemu_nowait(&t.0, &["call", "--as", "webuser", "backend", "get_capsule"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("name = \"Web\""),
        "{stdout}"
    );
    let out = icemu_nowait(&t.0, &["call", "backend", "no_such"]);
    assert_eq!(out.status.code(), Some(15));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IC0536"));
    let out = icemu_nowait(
        &t.0,
        &[
            "call",
            "--as",
            "webuser",
            "backend",
            "create_capsule",
            r#"(record { name = "Again"; bio = ""; settings = null })"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&icemu_nowait(&t.0, &["tick", "3"]).stdout).starts_with("round ")
    );
    assert!(icemu_nowait(&t.0, &["advance", "1"]).status.success());
    let out = icemu_nowait(&t.0, &["status", "backend"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("module hash: 0x"));
    // A relative wasm path is the caller's, not the server's.
    let out = icemu_nowait(&t.0, &["deploy", "backend", "target/wasm/backend.wasm.gz"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Usage errors stay local.
    assert_eq!(
        icemu_nowait(&t.0, &["fault", "reject"]).status.code(),
        Some(2)
    );

    // The admin endpoint wants the token.
    let r = http(
        port,
        "POST",
        "/api/v1/admin",
        &[("content-type", "application/json")],
        b"\"Canisters\"",
    );
    assert_eq!(r.status, 403);
    let r = http(
        port,
        "POST",
        "/api/v1/admin",
        &[
            ("content-type", "application/json"),
            ("x-icemu-token", "wrong"),
        ],
        b"\"Canisters\"",
    );
    assert_eq!(r.status, 403);

    // Stopped: serve.json is gone and commands open the state themselves.
    assert!(served.terminate().success());
    assert!(!t.0.join("serve.json").exists());
    let out = ok(&t.0, &["call", "--as", "webuser", "backend", "get_capsule"]);
    assert!(out.contains("\"Web\""), "{out}");
}

#[test]
fn a_stale_serve_json_is_ignored() {
    let t = with_backend("stale");
    // What a killed server leaves: serve.json, but no lock held and nobody on the port.
    std::fs::write(
        t.0.join("serve.json"),
        r#"{"url":"http://127.0.0.1:9","port":9,"pid":1,"token":"x"}"#,
    )
    .unwrap();
    let out = icemu_nowait(&t.0, &["fault", "fail-install-code", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!t.0.join("serve.json").exists());
    assert!(ok(&t.0, &["fault", "list"]).contains("\"fail_install_code\": 1"));
}
