//! Several hubbub nodes sharing one Redis behave as one hub.

mod common;

use common::redis::{redis_url, second_redis_url};
use common::{Client, Server};
use serde_json::json;

/// A node of the cluster named `prefix` (each test has its own, on the one Redis).
fn node(prefix: &str) -> Server {
    node_on(prefix, redis_url())
}

/// A node of the cluster named `prefix` whose engine is the Redis instances `redis`
/// (`redis_url`: one URL, or several comma-separated).
fn node_on(prefix: &str, redis: &str) -> Server {
    let config = format!(
        r#"
engine = "redis"
redis_url = "{redis}"
redis_prefix = "{prefix}"

[anonymous]
read = ["*"]

[[namespaces]]
pattern = "room:*"
history_size = 100
presence = true
join_leave = true
"#
    );
    Server::with_config(&config, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_are_one_hub() {
    one_hub("two-nodes", redis_url()).await;
}

/// The same over two Redis instances, the channels spread over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_two_redis_are_one_hub() {
    let both = format!("{},{}", redis_url(), second_redis_url());
    one_hub("two-nodes-sharded", &both).await;
}

async fn one_hub(prefix: &str, redis: &str) {
    let a = node_on(prefix, redis);
    let b = node_on(prefix, redis);
    let mut on_a = Client::connect(&a).await;
    let mut on_b = Client::connect(&b).await;
    on_a.subscribe("room:1").await;
    on_b.subscribe("room:1").await;
    // on_a hears that on_b joined, through Redis.
    let join = on_a.recv().await;
    assert_eq!(join["join"]["client"], on_b.id.as_str(), "{join}");
    // Published on one node, delivered on both, with one offset.
    let (status, published) = b
        .post("/api/publish", json!({"channel": "room:1", "data": "hi"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(published["offset"], 1);
    for c in [&mut on_a, &mut on_b] {
        let m = c.recv().await;
        assert_eq!(m["message"]["data"], "hi");
        assert_eq!(m["message"]["offset"], 1);
    }
    // History and presence are the cluster's, whichever node is asked.
    let (_, history) = a.get("/api/history/room:1").await;
    assert_eq!(history["epoch"], published["epoch"]);
    assert_eq!(history["messages"][0]["data"], "hi");
    let (_, presence) = a.get("/api/presence/room:1?stats=1").await;
    assert_eq!(presence["clients"], 2);
    // Anonymous clients never write, whichever node they are on.
    let r = on_b
        .ask(json!({"broadcast": {"event": "e", "channel": "plain", "data": 1}}))
        .await;
    assert_eq!(r["err"], "ACCESS_DENIED");
    // Recovery across nodes: missed on a, recovered from b's publications.
    drop(on_a);
    for n in 2..=4 {
        b.publish("room:1", json!(n)).await;
    }
    let mut back = Client::connect(&a).await;
    back.send(json!({"subscribe": {"channel": "room:1", "since": {"epoch": published["epoch"], "offset": 1}}}))
        .await;
    for n in 2..=4 {
        assert_eq!(back.recv().await["message"]["data"], n);
    }
    assert_eq!(back.recv().await["resubscribed"]["recovered"], true);

    // The HTTP API of either node sees the whole cluster.
    let (_, info) = a.get("/api/info").await;
    assert_eq!(info["nodes"].as_array().unwrap().len(), 2, "{info}");
    let (_, channels) = a.get("/api/channels").await;
    assert_eq!(
        channels["channels"]["room:1"]["subscribers"], 2,
        "{channels}"
    );
    // Direct messages and disconnects reach connections on the other node.
    let (status, sent) = a
        .post("/api/direct", json!({"client": on_b.id, "data": "psst"}))
        .await;
    assert_eq!(
        (status, sent["delivered"].as_u64()),
        (200, Some(1)),
        "{sent}"
    );
    loop {
        let f = on_b.recv().await;
        if let Some(d) = f.get("directMessage") {
            assert_eq!(d["data"], "psst");
            break;
        }
    }
    let (status, _) = a
        .post("/api/direct", json!({"client": "nobody", "data": 1}))
        .await;
    assert_eq!(status, 404);
    let (status, gone) = a.post("/api/disconnect", json!({"client": on_b.id})).await;
    assert_eq!((status, gone["disconnected"].as_u64()), (200, Some(1)));
    assert_eq!(
        on_b.closed().await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Library(4000))
    );
}

/// Publications lost on their way to a node (here, appended to the stream behind the
/// node's back, as if their pub/sub message had been lost while Redis was unreachable)
/// are noticed at the next one: its subscribers are closed with 4002 and recover the gap
/// from history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_publications_makes_its_subscribers_resync() {
    let a = node("gap");
    let mut c = Client::connect(&a).await;
    let r = c
        .ask(json!({"subscribe": {"channel": "room:gap", "since": "latest"}}))
        .await;
    let epoch = r["resubscribed"]["epoch"].as_str().unwrap().to_owned();
    a.publish("room:gap", json!(1)).await;
    assert_eq!(c.recv().await["message"]["offset"], 1);
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let lost = json!({"channel": "room:gap", "event": "message", "data": "lost"});
    let _: () = redis::pipe()
        .hincr("gap:m:room:gap", "o", 1)
        .ignore()
        .rpush("gap:h:room:gap", format!("m2 {lost}"))
        .ignore()
        .query_async(&mut redis)
        .await
        .unwrap();
    a.publish("room:gap", json!(3)).await;
    assert_eq!(
        c.closed().await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Library(4002))
    );
    let mut back = Client::connect(&a).await;
    back.send(
        json!({"subscribe": {"channel": "room:gap", "since": {"epoch": epoch, "offset": 1}}}),
    )
    .await;
    // The first client's leave may come at any point among these.
    for expected in [json!("lost"), json!(3)] {
        let m = back.recv_skipping_presence().await;
        assert_eq!(m["message"]["data"], expected, "{m}");
    }
    let r = back.recv_skipping_presence().await;
    assert_eq!(r["resubscribed"]["recovered"], true, "{r}");
}
