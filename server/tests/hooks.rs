//! App hooks against a real application: an HTTP server in the test process that checks
//! every signature and answers as an app would (PROTOCOL.md section 10).

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use common::{Client, Server, WAIT};
use futures_util::{SinkExt, StreamExt};
use hubbub_core::hooks::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "hook-secret";

/// What the app saw: every hook request, in order, as (path, body).
type Seen = mpsc::UnboundedSender<(String, Value)>;

#[derive(Clone)]
struct App {
    seen: Seen,
    /// The hub, for the app to call its HTTP API from inside a hook.
    hub: Arc<Mutex<String>>,
    /// Event notices to fail before accepting one (to see retries).
    fail_events: Arc<std::sync::atomic::AtomicUsize>,
}

fn checked(headers: &HeaderMap, body: &Bytes) -> Value {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    verify(
        SECRET.as_bytes(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        hubbub_core::auth::unix_now(),
    )
    .expect("every hook request is signed");
    serde_json::from_slice(body).unwrap()
}

async fn connect(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let request = checked(&headers, &body);
    app.seen.send(("connect".into(), request.clone())).unwrap();
    let cookie = request["headers"]["cookie"].as_str().unwrap_or("");
    match cookie {
        "session=ann" => axum::Json(json!({
            "user": "ann", "read": ["room:*", "gated:*"], "write": ["room:*"],
            "info": {"name": "Ann"}, "expires_in": 3600
        }))
        .into_response(),
        "session=brief" => axum::Json(json!({"user": "bo", "expires_in": 1})).into_response(),
        "session=banned" => StatusCode::FORBIDDEN.into_response(),
        "session=boom" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "session=garbage" => "<html>".into_response(),
        "session=slow" => {
            tokio::time::sleep(Duration::from_secs(4)).await;
            axum::Json(json!({})).into_response()
        }
        _ => axum::Json(json!({})).into_response(),
    }
}

async fn subscribe(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let request = checked(&headers, &body);
    app.seen
        .send(("subscribe".into(), request.clone()))
        .unwrap();
    let channel = request["channel"].as_str().unwrap().to_owned();
    if channel == "gated:busy" {
        // The app calls the hub from inside the hook: nothing in the hub waits on it.
        let hub = app.hub.lock().await.clone();
        let http = reqwest::Client::new();
        let published = http
            .post(format!("http://{hub}/api/publish"))
            .header("content-type", "application/json")
            .body(json!({"channel": "room:side", "data": "from the hook"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 200);
        let presence = http
            .get(format!("http://{hub}/api/presence/gated:busy"))
            .send()
            .await
            .unwrap();
        assert_eq!(presence.status(), 200);
    }
    let answer = match channel.as_str() {
        "gated:closed" => json!({"allow": false, "reason": "members only"}),
        _ => json!({"allow": true, "messages": [
            {"event": "welcome", "data": {"to": channel}},
            {"data": [1, 2]}
        ]}),
    };
    axum::Json(answer).into_response()
}

async fn rpc(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let request = checked(&headers, &body);
    app.seen.send(("rpc".into(), request.clone())).unwrap();
    match request["method"].as_str().unwrap() {
        "echo" => axum::Json(json!({"data": {"you": request["user"], "sent": request["data"]}}))
            .into_response(),
        "refuse" => {
            axum::Json(json!({"error": {"code": "NOT_ALLOWED", "reason": "no"}})).into_response()
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            axum::Json(json!({"data": "late"})).into_response()
        }
        "garbage" => axum::Json(json!({"neither": 1})).into_response(),
        "boom" => StatusCode::BAD_GATEWAY.into_response(),
        _ => axum::Json(json!({"data": null})).into_response(),
    }
}

async fn events(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let request = checked(&headers, &body);
    let left = app.fail_events.load(std::sync::atomic::Ordering::SeqCst);
    if left > 0 {
        app.fail_events
            .store(left - 1, std::sync::atomic::Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    app.seen.send(("events".into(), request)).unwrap();
    StatusCode::NO_CONTENT.into_response()
}

struct Harness {
    server: Server,
    seen: mpsc::UnboundedReceiver<(String, Value)>,
    app_addr: String,
}

impl Harness {
    async fn start(extra: &str, fail_events: usize) -> Harness {
        let (tx, seen) = mpsc::unbounded_channel();
        let hub = Arc::new(Mutex::new(String::new()));
        let app = App {
            seen: tx,
            hub: hub.clone(),
            fail_events: Arc::new(fail_events.into()),
        };
        let router = Router::new()
            .route("/hubbub/connect", post(connect))
            .route("/hubbub/subscribe", post(subscribe))
            .route("/hubbub/rpc", post(rpc))
            .route("/hubbub/events", post(events))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app_addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let config = format!(
            r#"
[anonymous]
read = ["public:*"]

[[namespaces]]
pattern = "gated:*"
subscribe_hook = true
presence = true

[hooks]
connect_url = "http://{app_addr}/hubbub/connect"
subscribe_url = "http://{app_addr}/hubbub/subscribe"
rpc_url = "http://{app_addr}/hubbub/rpc"
events_url = "http://{app_addr}/hubbub/events"
secret = "{SECRET}"
timeout = "2500ms"
{extra}
"#
        );
        let server = Server::with_config(&config, &[]);
        *hub.lock().await = server.addr.clone();
        Harness {
            server,
            seen,
            app_addr,
        }
    }

    async fn next_seen(&mut self, path: &str) -> Value {
        loop {
            let (p, body) = tokio::time::timeout(WAIT, self.seen.recv())
                .await
                .expect("the app hears from the hub")
                .unwrap();
            if p == path {
                return body;
            }
        }
    }
}

/// A WebSocket client sending `cookie`, and its first frame or close.
async fn open(
    server: &Server,
    cookie: Option<&str>,
) -> (common::Socket, Result<Value, Option<CloseCode>>) {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.ws_url(),
        )
        .unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("Cookie", cookie.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => break Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => break Err(frame.map(|f| f.code)),
            Some(Ok(_)) => continue,
            _ => break Err(None),
        }
    };
    (ws, first)
}

fn client(ws: common::Socket, welcome: &Value) -> Client {
    Client {
        ws,
        id: welcome["connected"]["client"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_identifies_connections_by_their_cookie() {
    let mut h = Harness::start("", 0).await;
    let (ws, first) = open(&h.server, Some("session=ann")).await;
    let welcome = first.unwrap();
    assert_eq!(welcome["connected"]["user"], "ann");
    let seen = h.next_seen("connect").await;
    assert_eq!(seen["client"], welcome["connected"]["client"]);
    assert_eq!(seen["ip"], "127.0.0.1");
    assert_eq!(seen["headers"]["cookie"], "session=ann");
    let mut ann = client(ws, &welcome);
    // The app's permissions hold: no token needed.
    ann.subscribe("room:1").await;
    let r = ann.ask(json!({"subscribe": {"channel": "public:x"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
    let p = ann
        .ask(json!({"broadcast": {"event": "e", "channel": "room:1", "data": 1}}))
        .await;
    assert_eq!(p["message"]["from"], "ann");
    assert_eq!(ann.recv().await, json!({"broadcasted": "room:1"}));
    // authenticate still works afterwards (and replaces the identity).
    let r = ann
        .ask(json!({"authenticate": {"user": "nobody", "secret": "x"}}))
        .await;
    assert_eq!(r["err"], "INVALID_USER");

    // No cookie: anonymous.
    let (_, first) = open(&h.server, None).await;
    let welcome = first.unwrap();
    assert!(welcome["connected"].get("user").is_none(), "{welcome}");

    // An identity that expires ends the connection (4001) even if it never sends a
    // command.
    let (mut ws, first) = open(&h.server, Some("session=brief")).await;
    assert_eq!(first.unwrap()["connected"]["user"], "bo");
    let closed = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(closed, Some(CloseCode::Library(4001)));

    // Refused: 4403. Failed, garbage, too slow, down: 4503.
    for (cookie, code) in [
        ("session=banned", 4403),
        ("session=boom", 4503),
        ("session=garbage", 4503),
        ("session=slow", 4503),
    ] {
        let started = Instant::now();
        let (_, first) = open(&h.server, Some(cookie)).await;
        assert_eq!(
            first.unwrap_err(),
            Some(CloseCode::Library(code)),
            "{cookie}"
        );
        // Within the hook timeout (2.5 s), whatever the app does.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{cookie}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn an_app_that_is_down_fails_fast() {
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = free.local_addr().unwrap();
    drop(free);
    let config = format!(
        "[hooks]\nconnect_url = \"http://{down}/c\"\nrpc_url = \"http://{down}/r\"\nsecret = \"s\"\ntimeout = \"5s\""
    );
    let server = Server::with_config(&config, &[]);
    let started = Instant::now();
    let (_, first) = open(&server, None).await;
    assert_eq!(first.unwrap_err(), Some(CloseCode::Library(4503)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_decides_subscriptions_in_its_namespaces() {
    let mut h = Harness::start("", 0).await;
    let (ws, first) = open(&h.server, Some("session=ann")).await;
    let mut ann = client(ws, &first.unwrap());
    let (ws, first) = open(&h.server, None).await;
    let mut anon = client(ws, &first.unwrap());
    // Allowed, with messages for this subscriber alone, right after the answer.
    anon.expect(
        json!({"subscribe": {"channel": "gated:open"}}),
        json!({"subscribed": "gated:open"}),
    )
    .await;
    assert_eq!(
        anon.recv().await,
        json!({"message": {"channel": "gated:open", "event": "welcome", "data": {"to": "gated:open"}}})
    );
    assert_eq!(
        anon.recv().await,
        json!({"message": {"channel": "gated:open", "event": "message", "data": [1, 2]}})
    );
    let first_ask = h.next_seen("subscribe").await;
    assert_eq!(first_ask["clients_count"], 0);
    ann.subscribe("gated:open").await;
    let second_ask = h.next_seen("subscribe").await;
    assert_eq!(second_ask["user"], "ann");
    assert_eq!(second_ask["info"], json!({"name": "Ann"}));
    assert_eq!(second_ask["clients_count"], 1);
    assert_eq!(second_ask["clients_in_channel"], json!([anon.id]));
    let _ = ann.recv().await;
    let _ = ann.recv().await;
    anon.assert_quiet().await;
    // Denied, with the app's reason.
    let r = anon
        .ask(json!({"subscribe": {"channel": "gated:closed"}}))
        .await;
    assert_eq!(r, json!({"err": "ACCESS_DENIED", "reason": "members only"}));
    // Where the app decides, read patterns do not open presence (or history): ann may read
    // `gated:*` by her identity, but only a subscriber the app allowed may look.
    let r = ann
        .ask(json!({"presence": {"channel": "gated:closed"}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED", "{r}");
    let r = anon
        .ask(json!({"presence": {"channel": "gated:open"}}))
        .await;
    assert_eq!(
        r["presence"]["clients"].as_array().map(Vec::len),
        Some(2),
        "{r}"
    );
    // The app calls the hub's API from inside its hook: no deadlock.
    ann.subscribe("room:side").await;
    ann.send(json!({"subscribe": {"channel": "gated:busy"}}))
        .await;
    let mut frames = vec![ann.recv().await, ann.recv().await];
    frames.sort_by_key(|f| f.to_string());
    assert!(
        frames.contains(&json!({"subscribed": "gated:busy"})),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["message"]["data"] == "from the hook"),
        "{frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_goes_to_the_app_and_answers_come_in_order() {
    let mut h = Harness::start("", 0).await;
    let (ws, first) = open(&h.server, Some("session=ann")).await;
    let mut ann = client(ws, &first.unwrap());
    ann.send(json!({"rpc": {"method": "slow", "data": 1}}))
        .await;
    ann.send(json!({"rpc": {"method": "echo", "data": {"x": 1}}}))
        .await;
    ann.send(json!({"ping": 3})).await;
    assert_eq!(
        ann.recv().await,
        json!({"rpcResult": {"method": "slow", "data": "late"}})
    );
    assert_eq!(
        ann.recv().await,
        json!({"rpcResult": {"method": "echo", "data": {"you": "ann", "sent": {"x": 1}}}})
    );
    assert_eq!(ann.recv().await, json!({"pong": 3}));
    let seen = h.next_seen("rpc").await;
    assert_eq!(seen["client"], ann.id.as_str());
    ann.expect(
        json!({"rpc": {"method": "refuse", "data": null}}),
        json!({"rpcResult": {"method": "refuse", "error": {"code": "NOT_ALLOWED", "reason": "no"}}}),
    )
    .await;
    for method in ["garbage", "boom"] {
        let r = ann
            .ask(json!({"rpc": {"method": method, "data": null}}))
            .await;
        assert_eq!(r["err"], "UNAVAILABLE", "{method}: {r}");
        // Where the app lives stays in the server's log.
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(
            !reason.contains("127.0.0.1") && !reason.contains("http"),
            "{method}: the app's address reached the client: {reason}"
        );
    }
    let _ = h.app_addr;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_hears_of_unsubscribes_logouts_and_disconnects() {
    // The first two notices fail: retries bring them through.
    let mut h = Harness::start("", 2).await;
    let (ws, first) = open(&h.server, Some("session=ann")).await;
    let mut ann = client(ws, &first.unwrap());
    ann.subscribe("room:1").await;
    ann.expect(
        json!({"unsubscribe": {"channel": "room:1"}}),
        json!({"unsubscribed": "room:1"}),
    )
    .await;
    let e = h.next_seen("events").await;
    assert_eq!(
        e,
        json!({"event": "unsubscribe", "client": ann.id, "user": "ann", "channel": "room:1", "clients_count": 0})
    );
    ann.expect(json!({"logout": true}), json!({"loggedOut": true}))
        .await;
    let e = h.next_seen("events").await;
    assert_eq!(e["event"], "logout");
    assert_eq!(e["user"], "ann");
    ann.send(json!({"disconnect": true})).await;
    ann.closed().await;
    let e = h.next_seen("events").await;
    assert_eq!(e["event"], "disconnect");
    assert_eq!(e["client"], ann.id.as_str());
}

/// A hook that takes 2 s for 500 clients at once delays none of the others' deliveries,
/// and those 500 connections keep answering pings meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_hook_stalls_nobody_else() {
    let h = Harness::start("concurrency = 1000", 0).await;
    let mut waiting = Vec::new();
    for _ in 0..500 {
        let (ws, first) = open(&h.server, None).await;
        let mut c = client(ws, &first.unwrap());
        c.send(json!({"rpc": {"method": "slow", "data": null}}))
            .await;
        waiting.push(c);
    }
    let mut others = Vec::new();
    for _ in 0..10 {
        let (ws, first) = open(&h.server, None).await;
        let mut c = client(ws, &first.unwrap());
        c.subscribe("public:news").await;
        others.push(c);
    }
    // While the 500 wait on the app: deliveries to the others, timed.
    let mut latencies = Vec::new();
    for n in 0..20 {
        let sent = Instant::now();
        h.server.publish("public:news", json!(n)).await;
        for c in &mut others {
            assert_eq!(c.recv().await["message"]["data"], n);
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!("deliveries while 500 rpcs wait on the app: p99 {p99:?}");
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
    // The waiting connections answer WebSocket pings (checked while the rpcs still wait:
    // the app answers 2 s after they were sent).
    let mut answered = 0;
    for c in waiting.iter_mut().take(50) {
        c.ws.send(Message::Ping(b"alive".to_vec().into()))
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(1), c.ws.next())
                .await
                .expect("a pong while the rpc waits")
            {
                Some(Ok(Message::Pong(p))) => {
                    assert_eq!(&p[..], b"alive");
                    break;
                }
                Some(Ok(Message::Ping(_))) => continue,
                Some(Ok(Message::Text(t))) => {
                    // Only once the app has answered.
                    assert!(t.contains("late"), "{t}");
                    answered += 1;
                }
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    }
    for (i, mut c) in waiting.into_iter().enumerate() {
        if i < 50 && answered > 0 {
            continue;
        }
        assert_eq!(c.recv().await["rpcResult"]["data"], "late");
    }
}
