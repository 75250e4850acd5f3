//! Streams over real sockets: offsets and epochs, history, recovery after a cut
//! connection, presence and join/leave (PROTOCOL.md sections 8 and 9).

mod common;

use common::{Client, Server};
use hubbub_core::auth::{sign, Claims};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::MaybeTlsStream;

const SECRET: &str = "streams-secret";

fn config() -> String {
    format!(
        r#"
token_secret = "{SECRET}"
client_queue = 4096

[anonymous]
read = ["room:*", "short:*", "brief:*", "plain:*", "quiet:*"]

[[namespaces]]
pattern = "room:*"
history_size = 2000
presence = true
join_leave = true

[[namespaces]]
pattern = "short:*"
history_size = 3

[[namespaces]]
pattern = "brief:*"
history_size = 10
history_ttl = "1s"

[[namespaces]]
pattern = "quiet:*"
history_size = 10
recover = false
"#
    )
}

fn token(user: &str, name: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let mut info = serde_json::Map::new();
    info.insert("name".into(), json!(name));
    sign(
        SECRET.as_bytes(),
        &Claims {
            exp: Some(exp),
            read: vec!["*".into()],
            info: Some(info),
            ..Claims::new(user)
        },
    )
    .unwrap()
}

async fn publish(server: &Server, channel: &str, data: Value) -> Value {
    let (status, body) = server
        .post("/api/publish", json!({"channel": channel, "data": data}))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Cuts a client's TCP connection with a reset: no close frame, no FIN.
fn cut(client: Client) {
    if let MaybeTlsStream::Plain(tcp) = client.ws.get_ref() {
        tcp.set_zero_linger().unwrap();
    }
    drop(client);
}

#[tokio::test]
async fn publications_get_offsets_within_one_epoch() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    c.subscribe("room:a").await;
    let first = publish(&server, "room:a", json!(1)).await;
    let second = publish(&server, "room:a", json!(2)).await;
    assert_eq!(first["published"], "room:a");
    assert_eq!(first["offset"], 1);
    assert_eq!(second["offset"], 2);
    assert!(first["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(first["epoch"], second["epoch"]);
    assert_eq!(
        c.recv().await,
        json!({"message": {"channel": "room:a", "event": "message", "data": 1, "offset": 1}})
    );
    assert_eq!(c.recv().await["message"]["offset"], 2);
    // A channel without history: no offset, no epoch.
    c.subscribe("plain:a").await;
    assert_eq!(
        publish(&server, "plain:a", json!(3)).await,
        json!({"published": "plain:a"})
    );
    assert_eq!(
        c.recv().await,
        json!({"message": {"channel": "plain:a", "event": "message", "data": 3}})
    );
}

#[tokio::test]
async fn history_by_command_and_by_http() {
    let server = Server::with_config(&config(), &[]);
    for n in 1..=5 {
        publish(&server, "room:h", json!(n)).await;
    }
    let mut c = Client::connect(&server).await;
    let h = c
        .ask(json!({"history": {"channel": "room:h", "limit": 2}}))
        .await;
    let epoch = h["history"]["epoch"].clone();
    assert_eq!(
        h,
        json!({"history": {"channel": "room:h", "epoch": epoch, "offset": 5, "messages": [
            {"channel": "room:h", "event": "message", "data": 4, "offset": 4},
            {"channel": "room:h", "event": "message", "data": 5, "offset": 5},
        ]}})
    );
    let h = c
        .ask(json!({"history": {"channel": "room:h", "since": 3}}))
        .await;
    assert_eq!(h["history"]["messages"].as_array().unwrap().len(), 2);
    let h = c
        .ask(json!({"history": {"channel": "room:h", "limit": 0}}))
        .await;
    assert_eq!(h["history"]["messages"], json!([]));
    assert_eq!(h["history"]["offset"], 5);

    let (status, h) = server.get("/api/history/room:h?limit=3&since=1").await;
    assert_eq!(status, 200);
    assert_eq!(h["channel"], "room:h");
    assert_eq!(h["epoch"], epoch);
    assert_eq!(h["offset"], 5);
    let offsets: Vec<i64> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [2, 3, 4]);
    let (status, h) = server.get("/api/history/room:h").await;
    assert_eq!((status, h["messages"].as_array().unwrap().len()), (200, 5));

    // Errors: no history kept, bad query, bad channel name, no read permission.
    let (status, e) = server.get("/api/history/plain:x").await;
    assert_eq!((status, e["err"].as_str()), (404, Some("INVALID_CHANNEL")));
    let (status, e) = server.get("/api/history/room:h?limit=lots").await;
    assert_eq!((status, e["err"].as_str()), (400, Some("INVALID_PAYLOAD")));
    let (status, e) = server.get("/api/history/room:h?colour=red").await;
    assert_eq!((status, e["err"].as_str()), (400, Some("INVALID_PAYLOAD")));
    let (status, e) = server.get("/api/history/bad%20name").await;
    assert_eq!((status, e["err"].as_str()), (400, Some("INVALID_PAYLOAD")));
    let r = c.ask(json!({"history": {"channel": "plain:x"}})).await;
    assert_eq!(r["err"], "INVALID_CHANNEL");
    let r = c.ask(json!({"history": {"channel": "secret:x"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

#[tokio::test]
async fn resubscribing_recovers_what_was_missed() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    let r = c
        .ask(json!({"subscribe": {"channel": "room:r", "since": "latest"}}))
        .await;
    let epoch = r["resubscribed"]["epoch"].clone();
    assert_eq!(
        r,
        json!({"resubscribed": {"channel": "room:r", "recovered": true, "epoch": epoch, "offset": 0}})
    );
    publish(&server, "room:r", json!(1)).await;
    assert_eq!(c.recv().await["message"]["offset"], 1);
    drop(c);
    for n in 2..=4 {
        publish(&server, "room:r", json!(n)).await;
    }
    let mut c = Client::connect(&server).await;
    c.send(json!({"subscribe": {"channel": "room:r", "since": {"epoch": epoch, "offset": 1}}}))
        .await;
    for n in 2..=4 {
        let m = c.recv().await;
        assert_eq!(m["message"]["data"], n);
        assert_eq!(m["message"]["offset"], n);
    }
    assert_eq!(
        c.recv().await,
        json!({"resubscribed": {"channel": "room:r", "recovered": true, "epoch": epoch, "offset": 4}})
    );
    c.assert_quiet().await;
    // Nothing missed: recovered, nothing delivered.
    let mut d = Client::connect(&server).await;
    d.expect(
        json!({"subscribe": {"channel": "room:r", "since": {"epoch": epoch, "offset": 4}}}),
        json!({"resubscribed": {"channel": "room:r", "recovered": true, "epoch": epoch, "offset": 4}}),
    )
    .await;
    // Another epoch, or a position from the future: not recovered, nothing delivered.
    for since in [
        json!({"epoch": "other", "offset": 1}),
        json!({"epoch": epoch, "offset": 99}),
    ] {
        let mut e = Client::connect(&server).await;
        e.expect(
            json!({"subscribe": {"channel": "room:r", "since": since}}),
            json!({"resubscribed": {"channel": "room:r", "recovered": false, "epoch": epoch, "offset": 4}}),
        )
        .await;
        e.assert_quiet().await;
        // Subscribed all the same: what comes next arrives.
    }
    let mut f = Client::connect(&server).await;
    let r = f
        .ask(json!({"subscribe": {"channel": "room:r", "since": "soon"}}))
        .await;
    assert_eq!(r["err"], "INVALID_PAYLOAD");
}

#[tokio::test]
async fn a_gap_that_cannot_be_filled_is_reported() {
    let server = Server::with_config(&config(), &[]);
    // Trimmed: the channel keeps 3 messages.
    let first = publish(&server, "short:t", json!(1)).await;
    let epoch = first["epoch"].clone();
    for n in 2..=6 {
        publish(&server, "short:t", json!(n)).await;
    }
    let mut c = Client::connect(&server).await;
    c.expect(
        json!({"subscribe": {"channel": "short:t", "since": {"epoch": epoch, "offset": 1}}}),
        json!({"resubscribed": {"channel": "short:t", "recovered": false, "epoch": epoch, "offset": 6}}),
    )
    .await;
    // Still there: 3 of 3 missed ones.
    c.send(json!({"subscribe": {"channel": "short:t", "since": {"epoch": epoch, "offset": 3}}}))
        .await;
    for n in 4..=6 {
        assert_eq!(c.recv().await["message"]["data"], n);
    }
    assert_eq!(c.recv().await["resubscribed"]["recovered"], true);

    // Expired: the stream lives 1s after its last publication.
    let old = publish(&server, "brief:e", json!(1)).await;
    // Expiry is a matter of time passing: there is no event to wait for.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = c
        .ask(json!({"subscribe": {"channel": "brief:e", "since": {"epoch": old["epoch"], "offset": 1}}}))
        .await;
    assert_eq!(r["resubscribed"]["recovered"], false);
    assert_ne!(r["resubscribed"]["epoch"], old["epoch"]);
    assert_eq!(r["resubscribed"]["offset"], 0);

    // A namespace that keeps history but does not recover.
    let p = publish(&server, "quiet:q", json!(1)).await;
    let r = c
        .ask(json!({"subscribe": {"channel": "quiet:q", "since": {"epoch": p["epoch"], "offset": 0}}}))
        .await;
    assert_eq!(
        r,
        json!({"resubscribed": {"channel": "quiet:q", "recovered": false, "epoch": p["epoch"], "offset": 1}})
    );

    // A channel without history.
    c.expect(
        json!({"subscribe": {"channel": "plain:p", "since": {"epoch": "E", "offset": 1}}}),
        json!({"resubscribed": {"channel": "plain:p", "recovered": false, "epoch": "", "offset": 0}}),
    )
    .await;
}

#[tokio::test]
async fn a_restarted_server_starts_a_new_epoch() {
    let mut server = Server::with_config(&config(), &[]);
    let p = publish(&server, "room:x", json!(1)).await;
    server.terminate();
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    let r = c
        .ask(json!({"subscribe": {"channel": "room:x", "since": {"epoch": p["epoch"], "offset": 1}}}))
        .await;
    assert_eq!(r["resubscribed"]["recovered"], false);
    assert_ne!(r["resubscribed"]["epoch"], p["epoch"]);
}

/// A subscriber whose TCP connection is cut while 1,000 publications go out at full
/// speed reconnects and ends with all of them, in order, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_subscriber_recovers_everything_in_order() {
    const N: u64 = 1000;
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    let r = c
        .ask(json!({"subscribe": {"channel": "room:cut", "since": "latest"}}))
        .await;
    let mut epoch = r["resubscribed"]["epoch"].as_str().unwrap().to_owned();
    let url = server.url("/api/publish");
    let publisher = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for n in 1..=N {
            let r = http
                .post(&url)
                .header("content-type", "application/json")
                .body(json!({"channel": "room:cut", "data": n}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    });
    let mut got: Vec<u64> = Vec::new();
    let mut cuts = 0;
    while got.len() < N as usize {
        let frame = c.recv().await;
        if let Some(m) = frame.get("message") {
            let n = m["data"].as_u64().unwrap();
            assert_eq!(m["offset"].as_u64(), Some(n));
            got.push(n);
        } else if let Some(r) = frame.get("resubscribed") {
            assert_eq!(r["recovered"], true, "{frame}");
            assert_eq!(r["epoch"], epoch.as_str());
            epoch = r["epoch"].as_str().unwrap().to_owned();
        } else {
            panic!("unexpected {frame}");
        }
        // Cut the connection three times mid-stream, and resubscribe from the last seen.
        if cuts < 3 && got.len() == 150 + cuts * 250 {
            cuts += 1;
            cut(c);
            c = Client::connect(&server).await;
            let last = *got.last().unwrap();
            c.send(json!({"subscribe": {"channel": "room:cut", "since": {"epoch": epoch, "offset": last}}}))
                .await;
        }
    }
    publisher.await.unwrap();
    assert_eq!(cuts, 3);
    assert_eq!(got, (1..=N).collect::<Vec<_>>());
    c.assert_quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_join_leave_with_a_hundred_clients() {
    let server = Server::with_config(&config(), &[]);
    let mut watcher = Client::connect(&server).await;
    watcher
        .expect(
            json!({"authenticate": {"token": token("w", "Watcher")}}),
            json!({"authenticated": "w"}),
        )
        .await;
    watcher.subscribe("room:p").await;
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut c = Client::connect(&server).await;
        // Half log in (20 distinct users), half stay anonymous.
        if i % 2 == 0 {
            let user = format!("u{}", i % 40);
            c.expect(
                json!({"authenticate": {"token": token(&user, &format!("User {user}"))}}),
                json!({"authenticated": user}),
            )
            .await;
        }
        c.subscribe("room:p").await;
        clients.push(c);
    }
    let mut joined = std::collections::HashSet::new();
    for _ in 0..100 {
        let j = watcher.recv().await;
        let join = &j["join"];
        assert_eq!(join["channel"], "room:p", "{j}");
        joined.insert(join["client"].as_str().unwrap().to_owned());
    }
    let ids: std::collections::HashSet<String> = clients.iter().map(|c| c.id.clone()).collect();
    assert_eq!(joined, ids);
    let p = watcher
        .ask(json!({"presence": {"channel": "room:p"}}))
        .await;
    let listed = p["presence"]["clients"].as_array().unwrap();
    assert_eq!(listed.len(), 101);
    let ann = listed
        .iter()
        .find(|c| c["client"] == watcher.id.as_str())
        .unwrap();
    assert_eq!(
        ann,
        &json!({"client": watcher.id, "user": "w", "info": {"name": "Watcher"}})
    );
    let (status, stats) = server.get("/api/presence/room:p?stats=1").await;
    assert_eq!(status, 200);
    assert_eq!(
        stats,
        json!({"channel": "room:p", "clients": 101, "users": 21})
    );

    // 30 vanish without a close frame, 10 unsubscribe, 10 disconnect politely.
    let mut gone = std::collections::HashSet::new();
    for _ in 0..30 {
        let c = clients.pop().unwrap();
        gone.insert(c.id.clone());
        cut(c);
    }
    for _ in 0..10 {
        let mut c = clients.pop().unwrap();
        gone.insert(c.id.clone());
        c.send(json!({"unsubscribe": {"channel": "room:p"}})).await;
        assert_eq!(answer(&mut c).await, json!({"unsubscribed": "room:p"}));
    }
    for _ in 0..10 {
        let mut c = clients.pop().unwrap();
        gone.insert(c.id.clone());
        c.send(json!({"disconnect": true})).await;
        assert!(c.closed().await.is_some());
    }
    let mut left = std::collections::HashSet::new();
    for _ in 0..50 {
        let l = watcher.recv().await;
        assert_eq!(l["leave"]["channel"], "room:p", "{l}");
        left.insert(l["leave"]["client"].as_str().unwrap().to_owned());
    }
    assert_eq!(left, gone);
    let (_, p) = server.get("/api/presence/room:p").await;
    assert_eq!(p["clients"].as_array().unwrap().len(), 51);
    assert!(p["clients"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| !gone.contains(c["client"].as_str().unwrap())));

    // Errors: no presence in the namespace, no read permission, a bad stats value.
    let (status, e) = server.get("/api/presence/short:x").await;
    assert_eq!((status, e["err"].as_str()), (404, Some("INVALID_CHANNEL")));
    let (status, e) = server.get("/api/presence/room:p?stats=maybe").await;
    assert_eq!((status, e["err"].as_str()), (400, Some("INVALID_PAYLOAD")));
    let mut anon = Client::connect(&server).await;
    let r = anon.ask(json!({"presence": {"channel": "short:x"}})).await;
    assert_eq!(r["err"], "INVALID_CHANNEL");
    let r = anon.ask(json!({"presence": {"channel": "secret:x"}})).await;
    assert_eq!(r["err"], "ACCESS_DENIED");
}

/// A client is not told of its own join; logging in shows the new identity in presence.
#[tokio::test]
async fn presence_follows_identity() {
    let server = Server::with_config(&config(), &[]);
    let mut c = Client::connect(&server).await;
    c.subscribe("room:i").await;
    c.assert_quiet().await;
    let p = c.ask(json!({"presence": {"channel": "room:i"}})).await;
    assert_eq!(
        p["presence"]["clients"],
        json!([{"client": c.id, "user": null}])
    );
    c.expect(
        json!({"authenticate": {"token": token("7", "Seven")}}),
        json!({"authenticated": "7"}),
    )
    .await;
    let p = c.ask(json!({"presence": {"channel": "room:i"}})).await;
    assert_eq!(
        p["presence"]["clients"],
        json!([{"client": c.id, "user": "7", "info": {"name": "Seven"}}])
    );
}

/// The next frame that is not a join or a leave.
async fn answer(c: &mut Client) -> Value {
    loop {
        let frame = c.recv().await;
        if frame.get("join").is_none() && frame.get("leave").is_none() {
            return frame;
        }
    }
}
