//! The publishers' HTTP API over a real socket: every endpoint and status.

mod common;

use common::{Client, Server};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn publish_reaches_subscribers_and_succeeds_without_any() {
    let server = Server::dev();
    let (status, body) = server
        .post("/api/publish", json!({"channel": "empty", "data": 1}))
        .await;
    assert_eq!((status, body), (200, json!({"published": "empty"})));

    let mut c = Client::connect(&server).await;
    c.subscribe("news").await;
    let (status, body) = server
        .post(
            "/api/publish",
            json!({"channel": "news", "event": "headline", "data": {"t": "x"}}),
        )
        .await;
    assert_eq!((status, body), (200, json!({"published": "news"})));
    assert_eq!(
        c.recv().await,
        json!({"message": {"channel": "news", "event": "headline", "data": {"t": "x"}}})
    );
}

#[tokio::test]
async fn broadcast_publishes_on_every_channel() {
    let server = Server::dev();
    let mut c = Client::connect(&server).await;
    c.subscribe("a").await;
    c.subscribe("b").await;
    let (status, body) = server
        .post(
            "/api/broadcast",
            json!({"channels": ["a", "b", "c"], "data": "hi", "event": "e"}),
        )
        .await;
    assert_eq!((status, body), (200, json!({"published": ["a", "b", "c"]})));
    let mut got = vec![c.recv().await, c.recv().await];
    got.sort_by_key(|m| m["message"]["channel"].as_str().unwrap().to_owned());
    assert_eq!(
        got,
        [
            json!({"message": {"channel": "a", "event": "e", "data": "hi"}}),
            json!({"message": {"channel": "b", "event": "e", "data": "hi"}}),
        ]
    );
}

#[tokio::test]
async fn direct_reaches_a_client_or_every_connection_of_a_user() {
    let server = Server::with_config(
        r#"
[[users]]
name = "ann"
secret = "s"
read = ["*"]
"#,
        &[],
    );
    let mut by_id = Client::connect(&server).await;
    let (status, body) = server
        .post(
            "/api/direct",
            json!({"client": by_id.id.clone(), "event": "e", "data": [1]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"directSent": by_id.id.clone(), "delivered": 1}))
    );
    assert_eq!(
        by_id.recv().await,
        json!({"directMessage": {"event": "e", "data": [1]}})
    );

    let mut ann1 = Client::connect(&server).await;
    let mut ann2 = Client::connect(&server).await;
    for c in [&mut ann1, &mut ann2] {
        c.expect(
            json!({"authenticate": {"user": "ann", "secret": "s"}}),
            json!({"authenticated": "ann"}),
        )
        .await;
    }
    let (status, body) = server
        .post("/api/direct", json!({"user": "ann", "data": "hey"}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"directSent": "ann", "delivered": 2}))
    );
    for c in [&mut ann1, &mut ann2] {
        assert_eq!(
            c.recv().await,
            json!({"directMessage": {"event": "message", "data": "hey"}})
        );
    }

    for target in [json!({"client": "nobody"}), json!({"user": "nobody"})] {
        let mut req = target.clone();
        req["data"] = json!(1);
        let (status, body) = server.post("/api/direct", req).await;
        assert_eq!(status, 404, "{target}");
        assert_eq!(body["err"], "INVALID_CLIENT");
    }
}

#[tokio::test]
async fn disconnect_closes_a_client_or_a_user() {
    let server = Server::with_config(
        r#"
[[users]]
name = "ann"
secret = "s"
"#,
        &[],
    );
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    b.expect(
        json!({"authenticate": {"user": "ann", "secret": "s"}}),
        json!({"authenticated": "ann"}),
    )
    .await;
    let (status, body) = server
        .post("/api/disconnect", json!({"client": a.id.clone()}))
        .await;
    assert_eq!((status, body), (200, json!({"disconnected": 1})));
    // Gone at once: a second call finds nobody, even while the socket is still closing.
    let (status, body) = server
        .post("/api/disconnect", json!({"client": a.id.clone()}))
        .await;
    assert_eq!((status, body), (200, json!({"disconnected": 0})));
    assert_eq!(a.closed().await, Some(CloseCode::Library(4000)));
    let (status, body) = server.post("/api/disconnect", json!({"user": "ann"})).await;
    assert_eq!((status, body), (200, json!({"disconnected": 1})));
    assert_eq!(b.closed().await, Some(CloseCode::Library(4000)));
    let (status, body) = server
        .post("/api/disconnect", json!({"user": "nobody"}))
        .await;
    assert_eq!((status, body), (200, json!({"disconnected": 0})));
    server.wait_for_connections(0).await;
}

#[tokio::test]
async fn channels_info_and_health() {
    let server = Server::dev();
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.subscribe("x").await;
    b.subscribe("x").await;
    b.subscribe("y").await;
    let (status, body) = server.get("/api/channels").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"channels": {"x": {"subscribers": 2}, "y": {"subscribers": 1}}})
    );
    let (status, info) = server.get("/api/info").await;
    assert_eq!(status, 200);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["connections"], 2);
    assert_eq!(info["channels"], 2);
    assert!(info["uptime_s"].is_u64());
    assert_eq!(server.get("/health").await, (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn bad_bodies_are_400_with_a_reason() {
    let server = Server::dev();
    let cases = [
        ("/api/publish", "not json"),
        ("/api/publish", "[]"),
        ("/api/publish", r#"{"channel":"c"}"#),
        ("/api/publish", r#"{"channel":"bad name","data":1}"#),
        ("/api/publish", r#"{"channel":"c","data":1,"event":5}"#),
        ("/api/broadcast", r#"{"channels":[],"data":1}"#),
        ("/api/broadcast", r#"{"channels":"c","data":1}"#),
        ("/api/direct", r#"{"data":1}"#),
        ("/api/direct", r#"{"client":"a","user":"b","data":1}"#),
        ("/api/disconnect", r#"{}"#),
    ];
    for (path, body) in cases {
        let (status, answer) = server.post_raw(path, body.into(), None).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(answer["err"], "INVALID_PAYLOAD", "{path} {body}");
        assert!(answer["reason"].is_string(), "{path} {body}: {answer}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = Server::dev_with(&["--max-message-size", "1000"]);
    let body = json!({"channel": "c", "data": "x".repeat(2000)}).to_string();
    let (status, answer) = server.post_raw("/api/publish", body, None).await;
    assert_eq!(status, 413);
    assert_eq!(answer["err"], "LIMIT_EXCEEDED");
}

#[tokio::test]
async fn api_keys_are_required_when_configured() {
    let server = Server::with_config(r#"api_keys = ["k1", "k2"]"#, &[]);
    let body = || json!({"channel": "c", "data": 1}).to_string();
    for key in [None, Some("wrong")] {
        let (status, answer) = server.post_raw("/api/publish", body(), key).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(answer["err"], "INVALID_CREDENTIALS");
    }
    for key in ["k1", "k2"] {
        let (status, _) = server.post_raw("/api/publish", body(), Some(key)).await;
        assert_eq!(status, 200);
    }
    let (status, answer) = server.get("/api/info").await;
    assert_eq!(
        (status, &answer["err"]),
        (401, &json!("INVALID_CREDENTIALS"))
    );
    // Health needs no key.
    assert_eq!(server.get("/health").await.0, 200);
}

#[tokio::test]
async fn callers_outside_allowed_ips_are_403() {
    let server = Server::with_config(r#"allowed_ips = ["10.0.0.0/8"]"#, &[]);
    let (status, answer) = server
        .post("/api/publish", json!({"channel": "c", "data": 1}))
        .await;
    assert_eq!((status, &answer["err"]), (403, &json!("ACCESS_DENIED")));
    let allowed = Server::with_config(r#"allowed_ips = ["127.0.0.1/32"]"#, &[]);
    let (status, _) = allowed
        .post("/api/publish", json!({"channel": "c", "data": 1}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = Server::dev();
    let (status, answer) = server.get("/api/nothing").await;
    assert_eq!(status, 404);
    assert!(answer["err"].is_string());
}

#[tokio::test]
async fn the_hello_page_is_served() {
    let server = Server::dev();
    let page = reqwest::get(server.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("hello"));
    assert!(page.contains("/ws"));
}
