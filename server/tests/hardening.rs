//! What a hostile or broken peer can do, each finding kept from coming back: clients that
//! never read, stalled HTTP clients, descriptor exhaustion, cross-site calls, expired
//! tokens, password guessing, deliveries lost at shutdown, order across publishers.

mod common;

use common::{Client, Server, WAIT};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::auth::{sign, Claims};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Reads until the peer closes the TCP connection; returns how long that took.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
}

async fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(server.url(path))
        .body(body.to_string());
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A client that sends large commands and never reads its answers is closed within two
/// ping intervals, holding no more than its answer budget meanwhile, and its memory comes
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_and_its_memory_returned() {
    let server = Server::dev_with(&["--ping-interval", "1s"]);
    let rss_before = server.rss_kib();
    let big = json!({"ping": "x".repeat(60_000)}).to_string();
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .unwrap();
        let (mut sink, unread) = ws.split();
        let big = big.clone();
        writers.push(tokio::spawn(async move {
            let _unread = unread;
            while sink.send(Message::text(big.clone())).await.is_ok() {}
        }));
    }
    server.wait_for_connections(8).await;
    let mut peak = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.wait_for_connections(0).await;
    let closed_after = started.elapsed();
    for w in writers {
        w.abort();
    }
    let rss_after = server.rss_kib();
    eprintln!(
        "never-reading clients: closed after {closed_after:?}; RSS {rss_before} KiB, peak {peak} KiB, after {rss_after} KiB"
    );
    // Two ping intervals after the socket stalls (once the kernel's buffers, a few MB on
    // loopback, are full), plus the time it takes to notice.
    assert!(
        closed_after < Duration::from_millis(4500),
        "{closed_after:?}"
    );
    let peak_growth_mib = peak.saturating_sub(rss_before) / 1024;
    assert!(peak_growth_mib < 64, "peak growth {peak_growth_mib} MiB");
    let growth_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(growth_mib < 32, "RSS grew by {growth_mib} MiB");
}

/// SIGTERM ends the process within the grace even while an HTTP client sits on a
/// half-sent request and a WebSocket client is connected.
#[tokio::test]
async fn sigterm_ends_the_process_despite_stalled_clients() {
    let mut server = Server::dev_with(&["--http-timeout", "60s"]);
    let mut stalled = TcpStream::connect(&server.addr).await.unwrap();
    stalled
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut ws = Client::connect(&server).await;
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ws.closed().await, Some(CloseCode::Away));
}

/// An HTTP client that sends nothing, or its headers too slowly, is closed after
/// `http_timeout`.
#[tokio::test]
async fn http_clients_have_a_deadline() {
    let server = Server::dev_with(&["--http-timeout", "500ms"]);
    let mut idle = TcpStream::connect(&server.addr).await.unwrap();
    let took = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let mut slow = TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    closed_within(&mut slow, Duration::from_secs(5)).await;
    // A keep-alive connection that went idle after a request is closed too.
    let mut kept = TcpStream::connect(&server.addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_within(&mut kept, Duration::from_secs(5)).await;
}

async fn ws_from(server: &Server, local: &str) -> Result<Client, String> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let tcp = socket
        .connect(server.addr.parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(
        server.ws_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut client = Client {
        ws,
        id: String::new(),
    };
    let welcome = client.recv().await;
    client.id = welcome["connected"]["client"].as_str().unwrap().to_owned();
    Ok(client)
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_all() {
    let server = Server::dev_with(&["--max-connections-per-ip", "3", "--max-connections", "5"]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(ws_from(&server, "127.0.0.1").await.unwrap());
    }
    assert!(ws_from(&server, "127.0.0.1").await.is_err());
    // Another address has its own share, up to the total.
    held.push(ws_from(&server, "127.0.0.2").await.unwrap());
    held.push(ws_from(&server, "127.0.0.2").await.unwrap());
    assert!(ws_from(&server, "127.0.0.3").await.is_err());
    // A closed connection gives its place back.
    let mut gone = held.pop().unwrap();
    gone.send(json!({"disconnect": true})).await;
    gone.closed().await;
    drop(gone);
    let deadline = Instant::now() + WAIT;
    loop {
        match ws_from(&server, "127.0.0.3").await {
            Ok(c) => {
                held.push(c);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With 256 descriptors, 300 idle connections neither crash the server nor keep
/// `/health` from answering for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_is_survived() {
    let server = Server::start_configured(None, &["--http-timeout", "1s"], &[], |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit between fork and exec touches nothing but the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: 256,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(tcp) = TcpStream::connect(&server.addr).await {
            idle.push(tcp);
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = reqwest::Client::new()
            .get(server.url("/health"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if let Ok(r) = answer {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "/health never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A web page cannot publish through its visitor's browser: bodies must be JSON, and
/// without an API key a cross-site request is refused.
#[tokio::test]
async fn the_api_refuses_cross_site_requests() {
    let server = Server::with_config("", &[]);
    let body = json!({"channel": "c", "data": 1});
    let (status, e) = post(
        &server,
        "/api/publish",
        &[("content-type", "text/plain")],
        body.clone(),
    )
    .await;
    assert_eq!((status, e["err"].as_str()), (415, Some("INVALID_PAYLOAD")));
    let (status, _) = post(&server, "/api/publish", &[], body.clone()).await;
    assert_eq!(status, 415);
    let json_ct = ("content-type", "application/json; charset=utf-8");
    let (status, e) = post(
        &server,
        "/api/publish",
        &[json_ct, ("origin", "https://evil.example")],
        body.clone(),
    )
    .await;
    assert_eq!((status, e["err"].as_str()), (403, Some("ACCESS_DENIED")));
    let (status, _) = post(
        &server,
        "/api/disconnect",
        &[json_ct, ("sec-fetch-site", "cross-site")],
        json!({"user": "42"}),
    )
    .await;
    assert_eq!(status, 403);
    let same_origin = format!("http://{}", server.addr);
    let (status, _) = post(
        &server,
        "/api/publish",
        &[
            json_ct,
            ("origin", &same_origin),
            ("sec-fetch-site", "same-origin"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&server, "/api/publish", &[json_ct], body.clone()).await;
    assert_eq!(status, 200);
    // With a key, the key is what counts: a browser cannot send it cross-site.
    let keyed = Server::with_config("api_keys = [\"k\"]", &[]);
    let (status, _) = post(
        &keyed,
        "/api/publish",
        &[
            json_ct,
            ("origin", "https://app.example"),
            ("authorization", "Bearer k"),
        ],
        body,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_expired_session_is_closed_at_exp() {
    let server = Server::with_config("token_secret = \"s\"\n[anonymous]\nread = []", &[]);
    let token = sign(
        b"s",
        &Claims {
            exp: Some(now() + 2),
            read: vec!["*".into()],
            ..Claims::new("42")
        },
    )
    .unwrap();
    let mut c = Client::connect(&server).await;
    c.expect(
        json!({"authenticate": {"token": token}}),
        json!({"authenticated": "42"}),
    )
    .await;
    c.subscribe("news").await;
    let started = Instant::now();
    assert_eq!(c.closed().await, Some(CloseCode::Library(4001)));
    assert!(started.elapsed() < Duration::from_secs(4));
    // A fresh token on the open connection moves the deadline.
    let mut d = Client::connect(&server).await;
    let short = sign(
        b"s",
        &Claims {
            exp: Some(now() + 1),
            ..Claims::new("42")
        },
    )
    .unwrap();
    let long = sign(
        b"s",
        &Claims {
            exp: Some(now() + 600),
            ..Claims::new("42")
        },
    )
    .unwrap();
    d.expect(
        json!({"authenticate": {"token": short}}),
        json!({"authenticated": "42"}),
    )
    .await;
    d.expect(
        json!({"authenticate": {"token": long}}),
        json!({"authenticated": "42"}),
    )
    .await;
    // Well past the first token's exp, the connection still answers.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    d.assert_quiet().await;
}

#[tokio::test]
async fn guessing_secrets_gets_the_connection_closed() {
    let server = Server::with_config(
        "[[users]]\nname = \"alice\"\nsecret = \"right\"\nread = [\"*\"]",
        &[],
    );
    let mut c = Client::connect(&server).await;
    for _ in 0..5 {
        let r = c
            .ask(json!({"authenticate": {"user": "alice", "secret": "wrong"}}))
            .await;
        assert_eq!(r["err"], "INVALID_CREDENTIALS");
    }
    // The sixth failure is answered, then the connection closes.
    let r = c
        .ask(json!({"authenticate": {"user": "alice", "secret": "wrong"}}))
        .await;
    assert_eq!(r["err"], "INVALID_CREDENTIALS");
    assert_eq!(c.closed().await, Some(CloseCode::Policy));
    // A right secret on a new connection still works.
    let mut d = Client::connect(&server).await;
    d.expect(
        json!({"authenticate": {"user": "alice", "secret": "right"}}),
        json!({"authenticated": "alice"}),
    )
    .await;
}

#[test]
fn configs_that_open_the_server_are_refused_or_warned_about() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("HUBBUB_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dev-public"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args(["--config", "/dev/null"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--users",
            "[{name=\"a\", secret=\"\"}]",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty secret"));
    let open = Server::with_config("", &[]);
    assert!(open.wait_for_log("open to every address").is_some());
    let mut public = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args(["--listen", "0.0.0.0:0", "--dev-public"])
        .env_remove("HUBBUB_CONFIG")
        .env("HUBBUB_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(public.stderr.take().unwrap());
    let line = std::io::BufRead::lines(stderr)
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"))
        .unwrap();
    assert!(line.contains("http://0.0.0.0:"), "{line}");
    public.kill().unwrap();
    public.wait().unwrap();
}

/// What is queued for a subscriber when the server shuts down, or when the app
/// disconnects it, is delivered before the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_drain_before_the_close() {
    for how in ["shutdown", "disconnect"] {
        let mut server = Server::dev();
        let mut c = Client::connect(&server).await;
        c.subscribe("drain").await;
        for n in 0..600 {
            server.publish("drain", json!(n)).await;
        }
        if how == "shutdown" {
            unsafe {
                libc::kill(server.pid() as i32, libc::SIGTERM);
            }
        } else {
            let (status, _) = server
                .post("/api/disconnect", json!({"client": c.id}))
                .await;
            assert_eq!(status, 200);
        }
        for n in 0..600 {
            let m = c.recv().await;
            assert_eq!(m["message"]["data"], n, "{how}");
        }
        let code = if how == "shutdown" {
            CloseCode::Away
        } else {
            CloseCode::Library(4000)
        };
        assert_eq!(c.closed().await, Some(code), "{how}");
        if how == "shutdown" {
            assert!(server.terminate().success());
        }
    }
}

/// Two publishers on one channel: every subscriber sees the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_per_channel_whatever_the_publishers() {
    let server = Server::dev();
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.subscribe("order").await;
    b.subscribe("order").await;
    let publishers: Vec<_> = (0..2)
        .map(|p| {
            let url = server.url("/api/publish");
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0..1500 {
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(json!({"channel": "order", "data": p * 10_000 + i}).to_string())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..3000 {
        seen_a.push(a.recv().await["message"]["data"].as_u64().unwrap());
        seen_b.push(b.recv().await["message"]["data"].as_u64().unwrap());
    }
    for p in publishers {
        p.await.unwrap();
    }
    assert_eq!(seen_a, seen_b);
}

#[tokio::test]
async fn deep_data_and_repeated_channels() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    c.subscribe("a").await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    c.send_text(format!(
        r#"{{"broadcast":{{"event":"e","channel":"a","data":{deep}}}}}"#
    ))
    .await;
    assert_eq!(c.recv().await["err"], "INVALID_PAYLOAD");
    let (status, e) = server
        .post_raw(
            "/api/publish",
            format!(r#"{{"channel":"a","data":{deep}}}"#),
            None,
        )
        .await;
    assert_eq!((status, e["err"].as_str()), (400, Some("INVALID_PAYLOAD")));
    let (status, r) = server
        .post(
            "/api/broadcast",
            json!({"channels": ["a", "a", "b", "a"], "data": 1}),
        )
        .await;
    assert_eq!((status, r), (200, json!({"published": ["a", "b"]})));
    assert_eq!(c.recv().await["message"]["data"], 1);
    c.assert_quiet().await;
    // Unknown methods answer JSON like every other error.
    let r = reqwest::get(server.url("/api/publish")).await.unwrap();
    assert_eq!(r.status(), 405);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["err"], "UNKNOWN_COMMAND");
}
