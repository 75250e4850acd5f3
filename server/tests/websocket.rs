//! The client protocol over a real socket: every command, every error name, permissions.

mod common;

use common::{Client, Server};
use futures_util::SinkExt;
use hubbub_core::auth::{sign, Claims};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "test-token-secret";

/// Users and tokens, anonymous clients reading `public:*` only.
fn config() -> String {
    format!(
        r#"
token_secret = "{SECRET}"
max_channels_per_client = 3

[anonymous]
read = ["public:*"]

[[users]]
name = "alice"
secret = "alice-secret"
read = ["*"]
write = ["chat:*", "public:*"]

[[users]]
name = "bob"
secret = "bob-secret"
read = ["chat:*", "public:*"]
"#
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(sub: &str, read: &[&str], write: &[&str], exp: Option<u64>) -> String {
    let claims = Claims {
        sub: sub.into(),
        exp,
        iat: Some(now()),
        nbf: None,
        read: read.iter().map(|s| s.to_string()).collect(),
        write: write.iter().map(|s| s.to_string()).collect(),
        info: None,
    };
    sign(SECRET.as_bytes(), &claims).unwrap()
}

async fn login(client: &mut Client, user: &str) {
    client
        .expect(
            json!({"authenticate": {"user": user, "secret": format!("{user}-secret")}}),
            json!({"authenticated": user}),
        )
        .await;
}

#[tokio::test]
async fn welcome_gives_a_unique_url_safe_client_id() {
    let server = Server::dev();
    let a = Client::connect(&server).await;
    let b = Client::connect(&server).await;
    assert_ne!(a.id, b.id);
    for id in [&a.id, &b.id] {
        assert!(!id.is_empty());
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}

#[tokio::test]
async fn ping_answers_pong_with_the_same_value() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    for value in [
        json!(1),
        json!("x"),
        json!({"n": [1, 2, null]}),
        json!(null),
    ] {
        c.expect(json!({"ping": value}), json!({"pong": value}))
            .await;
    }
}

#[tokio::test]
async fn published_data_arrives_byte_for_byte_on_every_channel_of_one_socket() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    c.subscribe("room:1").await;
    c.subscribe("room:2").await;
    // Subscribing twice answers again and does not deliver twice.
    c.subscribe("room:1").await;

    let body = r#"{"channel":"room:1","event":"chat","data":{ "text" : "hé \u00e9", "n": 1.50 }}"#;
    let (status, answer) = server.post_raw("/api/publish", body.into(), None).await;
    assert_eq!((status, answer), (200, json!({"published": "room:1"})));
    assert_eq!(
        c.recv_text().await,
        r#"{"message":{"channel":"room:1","event":"chat","data":{ "text" : "hé \u00e9", "n": 1.50 }}}"#
    );

    server.publish("room:2", json!([1, 2, 3])).await;
    assert_eq!(
        c.recv().await,
        json!({"message": {"channel": "room:2", "event": "message", "data": [1, 2, 3]}})
    );
    c.assert_quiet().await;

    c.expect(
        json!({"unsubscribe": {"channel": "room:1"}}),
        json!({"unsubscribed": "room:1"}),
    )
    .await;
    server.publish("room:1", json!("gone")).await;
    server.publish("room:2", json!("still here")).await;
    assert_eq!(c.recv().await["message"]["data"], "still here");
}

#[tokio::test]
async fn answers_come_in_command_order() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    let commands = [
        json!({"subscribe": {"channel": "a"}}),
        json!({"ping": 1}),
        json!({"nope": true}),
        json!({"subscribe": {"channel": "b"}}),
        json!({"unsubscribe": {"channel": "a"}}),
        json!({"logout": true}),
        json!({"ping": 2}),
    ];
    for cmd in &commands {
        c.ws.feed(Message::text(cmd.to_string())).await.unwrap();
    }
    c.ws.flush().await.unwrap();
    let mut answers = Vec::new();
    for _ in &commands {
        answers.push(c.recv().await);
    }
    assert_eq!(answers[0], json!({"subscribed": "a"}));
    assert_eq!(answers[1], json!({"pong": 1}));
    assert_eq!(answers[2]["err"], "UNKNOWN_COMMAND");
    assert_eq!(answers[3], json!({"subscribed": "b"}));
    assert_eq!(answers[4], json!({"unsubscribed": "a"}));
    assert_eq!(answers[5], json!({"loggedOut": true}));
    assert_eq!(answers[6], json!({"pong": 2}));
}

#[tokio::test]
async fn users_authenticate_and_broadcast_where_they_may_write() {
    let server = Server::with_config(&config(), &[]);
    let mut alice = Client::connect(&server).await;
    let mut bob = Client::connect(&server).await;
    login(&mut alice, "alice").await;
    login(&mut bob, "bob").await;

    // Nobody listens yet: the channel does not exist.
    let r = alice
        .ask(json!({"broadcast": {"event": "chat", "channel": "chat:1", "data": {"t": "hi"}}}))
        .await;
    assert_eq!(r["err"], "INVALID_CHANNEL");

    alice.subscribe("chat:1").await;
    bob.subscribe("chat:1").await;
    alice
        .send(json!({"broadcast": {"event": "chat", "channel": "chat:1", "data": {"t": "hi"}}}))
        .await;
    let message = json!({"message": {"channel": "chat:1", "event": "chat", "data": {"t": "hi"}, "from": "alice"}});
    // The sender gets its own broadcast (it is subscribed), then the answer.
    assert_eq!(alice.recv().await, message);
    assert_eq!(alice.recv().await, json!({"broadcasted": "chat:1"}));
    assert_eq!(bob.recv().await, message);

    // Bob may read chat:* but not write.
    let r = bob
        .ask(json!({"broadcast": {"event": "chat", "channel": "chat:1", "data": 1}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

#[tokio::test]
async fn user_credentials_are_checked() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    let r = c
        .ask(json!({"authenticate": {"user": "alice", "secret": "wrong"}}))
        .await;
    assert_eq!(r["err"], "INVALID_CREDENTIALS");
    let r = c
        .ask(json!({"authenticate": {"user": "mallory", "secret": "x"}}))
        .await;
    assert_eq!(r["err"], "INVALID_USER");
    let r = c.ask(json!({"authenticate": {"user": "alice"}})).await;
    assert_eq!(r["err"], "INVALID_PAYLOAD");
}

#[tokio::test]
async fn anonymous_sessions_read_their_patterns_and_never_write() {
    let server = Server::with_config(&config(), &[]);
    let mut anon = Client::connect(&server).await;
    anon.subscribe("public:news").await;
    let r = anon.ask(json!({"subscribe": {"channel": "chat:1"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
    let r = anon
        .ask(json!({"broadcast": {"event": "e", "channel": "public:news", "data": 1}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED");
    let r = anon
        .ask(json!({"direct": {"event": "e", "client": anon.id.clone(), "data": 1}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

#[tokio::test]
async fn tokens_grant_their_claims_and_bad_tokens_are_refused() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    let good = token("42", &["room:*"], &["room:1"], Some(now() + 60));
    c.expect(
        json!({"authenticate": {"token": good}}),
        json!({"authenticated": "42"}),
    )
    .await;
    c.subscribe("room:7").await;
    let r = c.ask(json!({"subscribe": {"channel": "chat:1"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
    c.send(json!({"broadcast": {"event": "e", "channel": "room:7", "data": 1}}))
        .await;
    assert_eq!(c.recv().await["err"], "ACCESS_DENIED");

    let expired = token("42", &["*"], &[], Some(now() - 10));
    let forged = sign(
        b"another secret",
        &Claims {
            exp: Some(now() + 60),
            ..Claims::new("42")
        },
    )
    .unwrap();
    let no_exp = token("42", &["*"], &[], None);
    let payload = good.split('.').nth(1).unwrap();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let cases = [
        (expired, "TOKEN_EXPIRED"),
        (forged, "INVALID_CREDENTIALS"),
        (no_exp, "INVALID_CREDENTIALS"),
        (alg_none, "INVALID_CREDENTIALS"),
        ("garbage".to_owned(), "INVALID_CREDENTIALS"),
    ];
    let mut fresh = Client::connect(&server).await;
    for (token, err) in cases {
        let r = fresh.ask(json!({"authenticate": {"token": token}})).await;
        assert_eq!(r["err"], err, "{token}");
    }
    // A failed authentication leaves the session anonymous.
    let r = fresh.ask(json!({"subscribe": {"channel": "room:1"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

#[tokio::test]
async fn tokens_are_refused_without_a_secret() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    let r = c
        .ask(json!({"authenticate": {"token": token("42", &[], &[], Some(now() + 60))}}))
        .await;
    assert_eq!(r["err"], "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn logout_drops_what_the_anonymous_session_may_not_read() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    login(&mut c, "alice").await;
    c.subscribe("chat:1").await;
    c.subscribe("public:news").await;
    c.expect(json!({"logout": true}), json!({"loggedOut": true}))
        .await;
    server.publish("chat:1", json!("private")).await;
    server.publish("public:news", json!("public")).await;
    assert_eq!(c.recv().await["message"]["data"], "public");
    let (_, channels) = server.get("/api/channels").await;
    assert_eq!(
        channels,
        json!({"channels": {"public:news": {"subscribers": 1}}})
    );
    // Anonymous again: no writing, no direct messages.
    let r = c
        .ask(json!({"broadcast": {"event": "e", "channel": "public:news", "data": 1}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

#[tokio::test]
async fn authenticate_replaces_the_identity() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    login(&mut c, "alice").await;
    c.subscribe("secret:1").await;
    login(&mut c, "bob").await;
    // Bob may not read secret:*: the subscription went with Alice.
    let (_, channels) = server.get("/api/channels").await;
    assert_eq!(channels, json!({"channels": {}}));
    let r = c
        .ask(json!({"broadcast": {"event": "e", "channel": "chat:1", "data": 1}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

#[tokio::test]
async fn direct_messages_reach_a_client_by_id() {
    let server = Server::with_config(&config(), &[]);
    let mut alice = Client::connect(&server).await;
    let mut anon = Client::connect(&server).await;
    login(&mut alice, "alice").await;
    alice
        .expect(
            json!({"direct": {"event": "poke", "client": anon.id.clone(), "data": {"x": 1}}}),
            json!({"directSent": anon.id.clone()}),
        )
        .await;
    assert_eq!(
        anon.recv().await,
        json!({"directMessage": {"event": "poke", "data": {"x": 1}, "from": "alice"}})
    );
    let r = alice
        .ask(json!({"direct": {"event": "poke", "client": "nobody", "data": 1}}))
        .await;
    assert_eq!(r["err"], "INVALID_CLIENT");
    // A client that has left is unknown too.
    let gone = anon.id.clone();
    drop(anon);
    server.wait_for_connections(1).await;
    let r = alice
        .ask(json!({"direct": {"event": "poke", "client": gone, "data": 1}}))
        .await;
    assert_eq!(r["err"], "INVALID_CLIENT");
}

#[tokio::test]
async fn disconnect_closes_with_1000() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    c.send(json!({"disconnect": true})).await;
    assert_eq!(c.closed().await, Some(CloseCode::Normal));
    server.wait_for_connections(0).await;
}

#[tokio::test]
async fn bad_input_is_answered_and_the_connection_kept() {
    let server = Server::dev();
    let mut bystander = Client::connect(&server).await;
    bystander.subscribe("news").await;
    let mut c = Client::connect(&server).await;
    let cases = [
        ("not json", "INVALID_PAYLOAD"),
        ("[1,2]", "INVALID_PAYLOAD"),
        ("42", "INVALID_PAYLOAD"),
        ("{}", "INVALID_PAYLOAD"),
        (
            r#"{"ping":1,"subscribe":{"channel":"a"}}"#,
            "INVALID_PAYLOAD",
        ),
        (r#"{"subscribe":{"channel":42}}"#, "INVALID_PAYLOAD"),
        (r#"{"subscribe":{}}"#, "INVALID_PAYLOAD"),
        (r#"{"subscribe":"news"}"#, "INVALID_PAYLOAD"),
        (
            r#"{"subscribe":{"channel":"no spaces"}}"#,
            "INVALID_PAYLOAD",
        ),
        (r#"{"subscribe":{"channel":""}}"#, "INVALID_PAYLOAD"),
        (
            r#"{"broadcast":{"channel":"news","data":1}}"#,
            "INVALID_PAYLOAD",
        ),
        (r#"{"logout":false}"#, "INVALID_PAYLOAD"),
        (r#"{"disconnect":"now"}"#, "INVALID_PAYLOAD"),
        (r#"{"fly":{"to":"moon"}}"#, "UNKNOWN_COMMAND"),
        (r#"{"presence":{"channel":"news"}}"#, "INVALID_CHANNEL"),
        (r#"{"history":{"channel":"news"}}"#, "INVALID_CHANNEL"),
        (r#"{"rpc":{"method":"m","data":1}}"#, "UNKNOWN_COMMAND"),
    ];
    for (text, err) in cases {
        c.send_text(text).await;
        let answer = c.recv().await;
        assert_eq!(answer["err"], err, "{text}");
        assert!(answer["reason"].is_string(), "{text}: {answer}");
    }
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(c.recv().await["err"], "INVALID_PAYLOAD");
    c.assert_quiet().await;
    // The bystander was not disturbed.
    server.publish("news", json!("fine")).await;
    assert_eq!(bystander.recv().await["message"]["data"], "fine");
}

#[tokio::test]
async fn frames_over_the_limit_close_with_1009() {
    let server = Server::dev_with(&["--max-message-size", "1024"]);
    let mut bystander = Client::connect(&server).await;
    let mut c = Client::connect(&server).await;
    let big = format!(r#"{{"ping":"{}"}}"#, "x".repeat(2000));
    c.send_text(big).await;
    assert_eq!(c.closed().await, Some(CloseCode::Size));
    bystander.assert_quiet().await;
}

#[tokio::test]
async fn subscriptions_are_limited_per_connection() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    login(&mut c, "alice").await;
    for ch in ["a", "b", "c"] {
        c.subscribe(ch).await;
    }
    let r = c.ask(json!({"subscribe": {"channel": "d"}})).await;
    assert_eq!(r["err"], "LIMIT_EXCEEDED");
    // Resubscribing to a held channel is not a new subscription.
    c.subscribe("a").await;
}

#[tokio::test]
async fn command_floods_are_rate_limited() {
    let server = Server::dev_with(&["--client-rate", "5"]);
    let mut c = Client::connect(&server).await;
    for i in 0..20 {
        c.ws.feed(Message::text(json!({"ping": i}).to_string()))
            .await
            .unwrap();
    }
    c.ws.flush().await.unwrap();
    let mut limited = 0;
    for i in 0..20 {
        let answer = c.recv().await;
        if answer["err"] == "RATE_LIMITED" {
            limited += 1;
        } else {
            assert_eq!(answer, json!({"pong": i}));
        }
    }
    assert!(limited >= 10, "only {limited} of 20 were limited");
}

#[tokio::test]
async fn silent_peers_are_closed_and_live_ones_kept() {
    let server = Server::dev_with(&["--ping-interval", "100ms"]);
    let mut live = Client::connect(&server).await;
    // This one never reads, so it never answers the server's pings.
    let _silent = Client::connect(&server).await;
    server.wait_for_connections(2).await;
    // While it waits for the silent one to go, `live` keeps reading (and answering pings).
    let watch = async {
        server.wait_for_connections(1).await;
    };
    let read = async {
        // Reading is what answers pings: tungstenite replies to each as it reads it.
        while let Some(frame) = futures_util::StreamExt::next(&mut live.ws).await {
            assert!(frame.unwrap().is_ping(), "only pings arrive");
        }
    };
    tokio::select! {
        _ = watch => {}
        _ = read => unreachable!(),
    }
    live.assert_quiet().await;
}

#[tokio::test]
async fn origins_are_checked() {
    let server = Server::dev_with(&[
        "--allowed-origins",
        "https://app.example,https://*.example.org",
    ]);
    let request = |origin: &str| {
        let mut r = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.ws_url(),
        )
        .unwrap();
        r.headers_mut().insert("Origin", origin.parse().unwrap());
        r
    };
    assert!(
        tokio_tungstenite::connect_async(request("https://app.example"))
            .await
            .is_ok()
    );
    assert!(
        tokio_tungstenite::connect_async(request("https://eu.example.org"))
            .await
            .is_ok()
    );
    assert!(
        tokio_tungstenite::connect_async(request("HTTPS://EU.Example.ORG"))
            .await
            .is_ok()
    );
    // A refused origin gets a close a browser can read: 4403, and no welcome.
    for origin in [
        "https://evil.example",
        "https://evil.com/.example.org",
        "https://a.b.example.org",
    ] {
        let (ws, _) = tokio_tungstenite::connect_async(request(origin))
            .await
            .unwrap();
        let mut refused = Client {
            ws,
            id: String::new(),
        };
        assert_eq!(
            refused.closed().await,
            Some(CloseCode::Library(4403)),
            "{origin}"
        );
    }
}
