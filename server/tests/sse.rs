//! Server-Sent Events over a real socket: the origin check on every endpoint, a session
//! driven by POSTed commands (answers in order, every refusal), and how a session ends.
//! (Browsers reading these endpoints: bindings-wasm/tests/sse.test.mjs and
//! fallback.test.mjs.)

mod common;

use common::{Server, WAIT};
use eventsource_stream::{Event, Eventsource};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::{json, Value};

const SECRET: &str = "sse-test-token-secret";

fn config() -> String {
    format!(
        r#"
token_secret = "{SECRET}"
allowed_origins = ["https://good.example"]
max_message_size = 1024

[anonymous]
read = ["public:*"]
"#
    )
}

/// An open event stream.
struct Events(BoxStream<'static, Event>);

impl Events {
    async fn open(server: &Server, path: &str) -> Events {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200);
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|event| event.expect("a well-formed event"));
        Events(events.boxed())
    }

    async fn next(&mut self) -> Option<Event> {
        tokio::time::timeout(WAIT, self.0.next())
            .await
            .expect("an event in time")
    }

    /// The next event's data as JSON.
    async fn frame(&mut self) -> Value {
        let event = self.next().await.expect("an event");
        serde_json::from_str(&event.data).unwrap()
    }

    /// Opens a session: its name, and the welcome's client id.
    async fn session(server: &Server) -> (Events, String, String) {
        let mut events = Events::open(server, "/connection/sse").await;
        let named = events.next().await.unwrap();
        assert_eq!(named.event, "session");
        let welcome = events.frame().await;
        let client = welcome["connected"]["client"].as_str().unwrap().to_owned();
        assert_ne!(
            named.data, client,
            "the session's name is not its client id"
        );
        (events, named.data, client)
    }
}

async fn post(server: &Server, name: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/connection/sse/{name}")))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_origin_is_checked_on_every_endpoint() {
    let server = Server::with_config(&config(), &[]);
    let client = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/sse/public:a"),
        ("GET", "/connection/sse"),
        ("POST", "/connection/sse/any"),
    ] {
        let request = client.request(method.parse().unwrap(), server.url(path));
        let refused = request
            .try_clone()
            .unwrap()
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{path}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body,
            json!({"err": "ACCESS_DENIED", "reason": "origin not allowed"})
        );
        if method == "GET" {
            let allowed = request
                .header("origin", "https://good.example")
                .send()
                .await
                .unwrap();
            assert_eq!(allowed.status(), 200, "{path}");
            let allow = &allowed.headers()["access-control-allow-origin"];
            assert_eq!(allow, "https://good.example");
        }
    }
}

#[tokio::test]
async fn posted_commands_run_in_order_and_every_refusal_is_answered() {
    let server = Server::with_config(&config(), &[]);
    let (mut events, name, _) = Events::session(&server).await;
    let too_long = format!(r#"{{"ping": "{}"}}"#, "x".repeat(1100));
    let mut body = [
        r#"{"subscribe": {"channel": "public:news"}}"#,
        r#"{"ping": 1}"#,
        &too_long,
        r#"{"subscribe": {"channel": "secret:1"}}"#,
    ]
    .join("\n")
    .into_bytes();
    body.extend_from_slice(b"\n\xff\xfe\n{\"ping\": 2}\n");
    assert_eq!(post(&server, &name, body).await.0, 204);
    assert_eq!(events.frame().await, json!({"subscribed": "public:news"}));
    assert_eq!(events.frame().await, json!({"pong": 1}));
    assert_eq!(events.frame().await["err"], "LIMIT_EXCEEDED");
    assert_eq!(events.frame().await["err"], "ACCESS_DENIED");
    assert_eq!(events.frame().await["err"], "INVALID_PAYLOAD");
    assert_eq!(events.frame().await, json!({"pong": 2}));
    server.publish("public:news", json!({"n": 1})).await;
    let message = events.frame().await;
    assert_eq!(message["message"]["data"], json!({"n": 1}));

    let (status, body) = post(&server, "no-such-session", "{\"ping\": 1}").await;
    assert_eq!(status, 404);
    assert_eq!(body["err"], "INVALID_CLIENT");
    for body in ["{}\n".repeat(40_000), "{\"ping\": 0}\n".repeat(65)] {
        let (status, answer) = post(&server, &name, body).await;
        assert_eq!(status, 413);
        assert_eq!(answer["err"], "LIMIT_EXCEEDED");
    }
}

/// The close event that ends a stream, and the end.
async fn closed(events: &mut Events) -> Value {
    let close = events.next().await.expect("a close event");
    assert_eq!(close.event, "close");
    assert!(
        events.next().await.is_none(),
        "the stream ends after its close"
    );
    serde_json::from_str(&close.data).unwrap()
}

#[tokio::test]
async fn a_session_ends_as_a_websocket_would_close_and_is_forgotten() {
    let server = Server::with_config(&config(), &[]);

    let (mut events, name, client) = Events::session(&server).await;
    server.wait_for_connections(1).await;
    let (status, _) = server
        .post("/api/disconnect", json!({"client": client}))
        .await;
    assert_eq!(status, 200);
    let close = closed(&mut events).await;
    assert_eq!(close["code"], 4000);
    assert_eq!(post(&server, &name, "{\"ping\": 1}").await.0, 404);
    server.wait_for_connections(0).await;

    let (mut events, name, _) = Events::session(&server).await;
    assert_eq!(post(&server, &name, "{\"disconnect\": true}").await.0, 204);
    assert_eq!(closed(&mut events).await["code"], 1000);

    // A token that ends in a second: the session is closed at its `exp`.
    let token = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args([
            "token",
            "--token-secret",
            SECRET,
            "--user",
            "kim",
            "--ttl",
            "1s",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap();
    let (mut events, name, _) = Events::session(&server).await;
    let login = json!({"authenticate": {"token": token.trim()}}).to_string();
    assert_eq!(post(&server, &name, login).await.0, 204);
    assert_eq!(events.frame().await, json!({"authenticated": "kim"}));
    let close = closed(&mut events).await;
    assert_eq!(close, json!({"code": 4001, "reason": "token expired"}));

    // A reader that goes away is forgotten.
    let (events, _, _) = Events::session(&server).await;
    server.wait_for_connections(1).await;
    drop(events);
    server.wait_for_connections(0).await;
}
