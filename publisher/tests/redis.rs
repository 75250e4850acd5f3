//! Publishing straight into the Redis engine: a real `redis-server`, real `hubbub` nodes
//! with `engine = "redis"` sharing it, and real WebSocket subscribers on them. What the
//! publisher writes into Redis must be exactly what a node writes: the subscribers on
//! every node receive it, with its offset, and a node's history lists it.
#![cfg(feature = "redis")]

mod common;

use common::browser::Browser;
use common::redis::{shared_redis_url, Redis};
use hubbub_publisher::core::auth::{sign, Claims, DEFAULT_TOKEN_TTL};
use hubbub_publisher::core::namespace::NamespaceSpec;
use hubbub_publisher::{blocking, Options, Publisher, Target};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECRET: &str = "redis-publisher-test-secret";
const NAMESPACES: &str = r#"[{pattern="room:*", history_size=3, history_ttl="5m"}]"#;

/// The namespaces of the nodes, as the publisher is given them.
fn namespaces() -> Vec<NamespaceSpec> {
    vec![NamespaceSpec {
        pattern: "room:*".into(),
        history_size: Some(3),
        history_ttl: Some("5m".into()),
        ..Default::default()
    }]
}

/// A prefix of the test's own, so that tests sharing the Redis do not see one another.
fn prefix(test: &str) -> String {
    format!("t-{test}-{}", std::process::id())
}

/// A node of the cluster on `redis` under `prefix`.
fn node(redis: &str, prefix: &str) -> common::Hub {
    common::Hub::start(&[
        "--token-secret",
        SECRET,
        "--engine",
        "redis",
        "--redis-url",
        redis,
        "--redis-prefix",
        prefix,
        "--namespaces",
        NAMESPACES,
    ])
}

fn through_redis(redis: &str, prefix: &str) -> Options {
    Options::new()
        .url(redis)
        .redis_prefix(prefix)
        .namespaces(namespaces())
}

/// `GET` of a node's HTTP API.
async fn get(hub: &common::Hub, path: &str) -> Value {
    let http = Publisher::new(Options::new().url(&hub.url)).unwrap();
    match path.strip_prefix("/api/history/") {
        Some(channel) => serde_json::to_value(http.history(channel, None, None).await.unwrap()),
        None => serde_json::to_value(http.channels().await.unwrap()),
    }
    .unwrap()
}

#[tokio::test]
async fn subscribers_on_every_node_receive_what_is_published_through_redis() {
    let redis = shared_redis_url();
    let prefix = prefix("publish");
    let (a, b) = (node(redis, &prefix), node(redis, &prefix));
    let p = Publisher::new(through_redis(redis, &prefix)).unwrap();
    assert!(p.endpoint().is_redis());
    assert_eq!(p.url(), redis);

    let mut on_a = Browser::connect(&a).await;
    let mut on_b = Browser::connect(&b).await;
    for browser in [&mut on_a, &mut on_b] {
        browser.subscribe("room:1").await;
        browser.subscribe("plain").await;
    }

    // A channel that keeps history: offset and epoch, as a node answers them.
    let published = p
        .publish("room:1", "chat", &json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(
        (published.published.as_str(), published.offset),
        ("room:1", Some(1))
    );
    let epoch = published.epoch.clone().expect("an epoch");
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(
            browser.recv().await,
            json!({"message": {"channel": "room:1", "event": "chat", "data": {"text": "hi"}, "offset": 1}})
        );
    }
    // A publication through a node comes next in the same stream.
    let http = Publisher::new(Options::new().url(&b.url)).unwrap();
    let second = http.publish("room:1", "chat", &2).await.unwrap();
    assert_eq!(
        (second.offset, second.epoch.as_deref()),
        (Some(2), Some(epoch.as_str()))
    );
    assert_eq!(on_a.recv().await["message"]["offset"], 2);
    assert_eq!(on_b.recv().await["message"]["offset"], 2);

    // A node's history lists it; so does the history read through Redis.
    let history = get(&a, "/api/history/room:1").await;
    assert_eq!(
        history,
        json!({"channel": "room:1", "epoch": epoch, "offset": 2, "messages": [
            {"channel": "room:1", "event": "chat", "data": {"text": "hi"}, "offset": 1},
            {"channel": "room:1", "event": "chat", "data": 2, "offset": 2},
        ]})
    );
    assert_eq!(
        serde_json::to_value(p.history("room:1", None, None).await.unwrap()).unwrap(),
        history
    );
    let page = p.history("room:1", Some(1), Some(0)).await.unwrap();
    assert_eq!((page.offset, page.messages.len()), (2, 1));
    assert_eq!(page.messages[0].offset, Some(1));
    let page = p.history("room:1", Some(0), None).await.unwrap();
    assert_eq!((page.epoch.as_str(), page.offset), (epoch.as_str(), 2));
    assert!(page.messages.is_empty());

    // The stream is trimmed to the namespace's history_size, as a node trims it.
    for n in 3..=5 {
        p.publish("room:1", "n", &n).await.unwrap();
    }
    let history = get(&b, "/api/history/room:1").await;
    let offsets: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (history["offset"].as_u64(), offsets),
        (Some(5), vec![3, 4, 5])
    );
    for browser in [&mut on_a, &mut on_b] {
        for n in 3..=5 {
            assert_eq!(browser.recv().await["message"]["offset"], n);
        }
    }

    // A channel without history: no offset, on the answer or the frames.
    let published = p.publish("plain", "message", &"x").await.unwrap();
    assert_eq!((published.offset, published.epoch), (None, None));
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(
            browser.recv().await,
            json!({"message": {"channel": "plain", "event": "message", "data": "x"}})
        );
    }
    let err = p.history("plain", None, None).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_CHANNEL", "{err}");

    // Broadcast, a channel named twice published to once.
    let answer = p
        .broadcast(["room:1", "plain", "room:1"], "news", &json!([1]))
        .await
        .unwrap();
    assert_eq!(answer.published, ["room:1", "plain"]);
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(browser.recv().await["message"]["offset"], 6);
        assert_eq!(
            browser.recv().await,
            json!({"message": {"channel": "plain", "event": "news", "data": [1]}})
        );
    }
}

#[tokio::test]
async fn direct_disconnect_and_channels_reach_every_node() {
    let redis = shared_redis_url();
    let prefix = prefix("control");
    let (a, b) = (node(redis, &prefix), node(redis, &prefix));
    let p = Publisher::new(through_redis(redis, &prefix)).unwrap();
    let mut on_a = Browser::connect(&a).await;
    let mut on_b = Browser::connect(&b).await;
    on_a.subscribe("room:1").await;
    on_b.subscribe("room:1").await;
    on_b.subscribe("lobby").await;

    let channels = serde_json::to_value(p.channels().await.unwrap()).unwrap();
    assert_eq!(
        channels,
        json!({"channels": {"lobby": {"subscribers": 1}, "room:1": {"subscribers": 2}}})
    );
    assert_eq!(channels, get(&a, "/api/channels").await);

    let sent = p
        .direct(Target::Client(on_b.id.clone()), "psst", &"just you")
        .await
        .unwrap();
    assert_eq!(
        (sent.direct_sent.as_str(), sent.delivered),
        (on_b.id.as_str(), 1)
    );
    assert_eq!(
        on_b.recv().await,
        json!({"directMessage": {"event": "psst", "data": "just you"}})
    );
    let err = p
        .direct(Target::User("nobody".into()), "m", &1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_CLIENT", "{err}");

    // Every connection of a user, on both nodes.
    let token = sign(
        SECRET.as_bytes(),
        &Claims::new("ann").issued_now(Some(DEFAULT_TOKEN_TTL as f64)),
    )
    .unwrap();
    for browser in [&mut on_a, &mut on_b] {
        let answer = browser
            .command(json!({"authenticate": {"token": token}}))
            .await;
        assert_eq!(answer, json!({"authenticated": "ann"}));
    }
    assert_eq!(
        p.direct(Target::User("ann".into()), "dm", &2)
            .await
            .unwrap()
            .delivered,
        2
    );
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(
            browser.recv().await,
            json!({"directMessage": {"event": "dm", "data": 2}})
        );
    }
    let gone = p.disconnect(Target::User("ann".into())).await.unwrap();
    assert_eq!(gone.disconnected, 2);
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(browser.recv().await, json!({"closed": 4000}));
    }
    assert_eq!(
        p.disconnect(Target::Client("gone".into()))
            .await
            .unwrap()
            .disconnected,
        0
    );

    // What Redis cannot answer is refused by name.
    for err in [
        p.info().await.unwrap_err(),
        p.presence("room:1").await.unwrap_err(),
        p.presence_stats("room:1").await.unwrap_err(),
    ] {
        assert_eq!(err.code(), "UNKNOWN_COMMAND", "{err}");
        assert!(
            err.to_string().contains("not available through Redis"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn without_a_running_hub_direct_reaches_nobody() {
    let redis = shared_redis_url();
    let p = Publisher::new(through_redis(redis, &prefix("nohub"))).unwrap();
    let err = p
        .direct(Target::Client("c".into()), "m", &1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_CLIENT");
    assert!(p.channels().await.unwrap().channels.is_empty());
    // Publishing needs no hub: whoever subscribes later reads the history.
    let published = p.publish("room:9", "m", &1).await.unwrap();
    assert_eq!(published.offset, Some(1));
}

#[tokio::test]
async fn bad_requests_are_refused_by_the_hubs_rules() {
    let p = Publisher::new(through_redis(shared_redis_url(), &prefix("bad"))).unwrap();
    for err in [
        p.publish("bad name", "m", &1).await.unwrap_err(),
        p.broadcast(Vec::<String>::new(), "m", &1)
            .await
            .unwrap_err(),
        p.broadcast(["ok", "not ok"], "m", &1).await.unwrap_err(),
        p.history("bad name", None, None).await.unwrap_err(),
    ] {
        assert_eq!(err.code(), "INVALID_PAYLOAD", "{err}");
    }
}

#[test]
fn options_that_cannot_publish_through_redis() {
    for (options, says) in [
        (
            Options::new().url("redis://127.0.0.1:1/0"),
            "needs the hubs' namespaces",
        ),
        (
            through_redis("redis://127.0.0.1:1/0", "a b"),
            "bad redis_prefix",
        ),
        (
            Options::new()
                .url("redis://127.0.0.1:1/0")
                .namespaces([NamespaceSpec {
                    pattern: "a".into(),
                    history_ttl: Some("soon".into()),
                    ..Default::default()
                }]),
            "namespaces[0].history_ttl",
        ),
        (
            Options::new()
                .url("redis://:hunter2@h:notaport/0")
                .namespaces([]),
            "bad Redis URL \"redis://:***@h:notaport/0\"",
        ),
        // Not until the workspace enables the redis crate's TLS (the hubs' too).
        (
            Options::new().url("rediss://h:6379/0").namespaces([]),
            "TLS",
        ),
    ] {
        let err = Publisher::new(options).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    // The password is never shown.
    let p = Publisher::new(
        Options::new()
            .url("redis://:hunter2@127.0.0.1:1/0")
            .namespaces([]),
    )
    .unwrap();
    assert_eq!(p.url(), "redis://:***@127.0.0.1:1/0");
    assert!(!format!("{p:?}").contains("hunter2"));
    // An HTTP URL ignores the Redis options; a Redis URL ignores the API key.
    let p = Publisher::new(
        Options::new()
            .url("http://h")
            .namespaces([])
            .redis_prefix("x"),
    )
    .unwrap();
    assert!(!p.endpoint().is_redis());
    let p = Publisher::new(through_redis("redis://h/0", "x").api_key("k")).unwrap();
    assert!(!p.endpoint().has_api_key());
}

#[tokio::test]
async fn a_redis_that_cannot_be_reached_is_unavailable_at_once() {
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("redis://127.0.0.1:{}/0", l.local_addr().unwrap().port())
    };
    let p = Publisher::new(through_redis(&nowhere, "x")).unwrap();
    let started = Instant::now();
    for err in [
        p.publish("room:1", "m", &1).await.unwrap_err(),
        p.publish("plain", "m", &1).await.unwrap_err(),
        p.history("room:1", None, None).await.unwrap_err(),
        p.direct(Target::User("u".into()), "m", &1)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), "UNAVAILABLE", "{err}");
        assert!(err.is_unavailable() && !err.is_timeout(), "{err}");
        assert_eq!(err.url(), Some(nowhere.as_str()));
        assert!(
            err.to_string().contains("cannot reach the Redis at"),
            "{err}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // A port that accepts and never answers: the publisher's time limit.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/0", silent.local_addr().unwrap());
    let p = Publisher::new(through_redis(&url, "x").timeout(Duration::from_millis(300))).unwrap();
    let err = p.publish("room:1", "m", &1).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // A wrong password, or none: Redis's own answer.
    let redis = Redis::start_with_args(&["--requirepass", "right"]);
    for password in ["wrong", ""] {
        let url = redis
            .url
            .replace("redis://", &format!("redis://:{password}@"));
        let p = Publisher::new(through_redis(&url, "x")).unwrap();
        let err = p.publish("room:1", "m", &1).await.unwrap_err();
        assert_eq!(err.code(), "UNAVAILABLE", "{err}");
        assert!(!err.to_string().contains("wrong@"), "{err}");
    }
    let url = redis.url.replace("redis://", "redis://:right@");
    let p = Publisher::new(through_redis(&url, "x")).unwrap();
    assert_eq!(p.publish("room:1", "m", &1).await.unwrap().offset, Some(1));
}

#[tokio::test]
async fn calls_after_redis_comes_back_succeed() {
    let redis = Redis::start();
    let (port, url) = (redis.port, redis.url.clone());
    let p = Publisher::new(through_redis(&url, "back")).unwrap();
    assert_eq!(p.publish("room:1", "m", &1).await.unwrap().offset, Some(1));
    drop(redis);
    let err = p.publish("room:1", "m", &2).await.unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    let _redis = Redis::start_on(port);
    // A new Redis, empty: a new stream (offset 1 again, with a new epoch).
    assert_eq!(p.publish("room:1", "m", &3).await.unwrap().offset, Some(1));
}

#[tokio::test]
async fn one_blocking_publisher_shared_by_threads_through_redis() {
    let redis = shared_redis_url();
    let prefix = prefix("blocking");
    let hub = node(redis, &prefix);
    let mut browser = Browser::connect(&hub).await;
    browser.subscribe("room:t").await;
    let p = blocking::Publisher::new(through_redis(redis, &prefix)).unwrap();
    let (threads, calls) = (3, 20);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                (0..calls)
                    .map(|i| {
                        p.publish("room:t", "n", &json!({"t": t, "i": i}))
                            .unwrap()
                            .offset
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut offsets: Vec<u64> = tokio::task::spawn_blocking(move || {
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
    .await
    .unwrap();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=threads * calls).collect::<Vec<u64>>());
    let mut seen = vec![Vec::new(); threads as usize];
    for n in 1..=threads * calls {
        let message = browser.recv().await["message"].clone();
        // Subscribers see the offsets in order.
        assert_eq!(message["offset"], n);
        let data = &message["data"];
        seen[data["t"].as_u64().unwrap() as usize].push(data["i"].as_u64().unwrap());
    }
    for s in seen {
        assert_eq!(s, (0..calls).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_redis_that_restarted_between_calls_costs_no_failed_call() {
    let redis = Redis::start();
    let (port, url) = (redis.port, redis.url.clone());
    let p = Publisher::new(through_redis(&url, "idle")).unwrap();
    let b = blocking::Publisher::new(through_redis(&url, "idle")).unwrap();
    // Each has a connection, which Redis then closes (the blocking publisher's runtime
    // sleeping meanwhile).
    p.publish("room:1", "m", &1).await.unwrap();
    let b = tokio::task::spawn_blocking(move || b.publish("room:1", "m", &2).map(|_| b))
        .await
        .unwrap()
        .unwrap();
    drop(redis);
    let _redis = Redis::start_on(port);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(p.publish("room:1", "m", &3).await.unwrap().offset, Some(1));
    let answer = tokio::task::spawn_blocking(move || b.publish("room:1", "m", &4))
        .await
        .unwrap();
    assert_eq!(answer.unwrap().offset, Some(2));
}

/// The ACL user docs/rust.md (and the Python and Node guides) suggest for publishers: the
/// hubs' keys and topics under the default prefix, and the commands the publisher and the
/// hubs' scripts run, nothing else.
const PUBLISHER_ACL: &[&str] = &[
    "--user",
    "publisher",
    "on",
    ">publisher-password",
    "~hubbub:*",
    "&hubbub:*",
    "+@connection",
    "+publish",
    "+subscribe",
    "+evalsha",
    "+script|load",
    "+hget",
    "+hset",
    "+hincrby",
    "+rpush",
    "+ltrim",
    "+pexpire",
    "+lrange",
    "+llen",
    "+zrangebyscore",
    "+hdel",
    "+zremrangebyscore",
    "+hvals",
];

#[tokio::test]
async fn an_acl_user_with_the_documented_rights_can_make_every_call() {
    let redis = Redis::start_with_args(PUBLISHER_ACL);
    // The node connects as the default user; the publisher as the restricted one.
    let hub = common::Hub::start(&[
        "--engine",
        "redis",
        "--redis-url",
        &redis.url,
        "--namespaces",
        NAMESPACES,
    ]);
    let url = redis
        .url
        .replace("redis://", "redis://publisher:publisher-password@");
    let p = Publisher::new(Options::new().url(&url).namespaces(namespaces())).unwrap();
    let mut browser = Browser::connect(&hub).await;
    browser.subscribe("room:acl").await;
    browser.subscribe("plain").await;
    assert_eq!(
        p.publish("room:acl", "m", &1).await.unwrap().offset,
        Some(1)
    );
    assert_eq!(browser.recv().await["message"]["offset"], 1);
    p.broadcast(["plain"], "m", &2).await.unwrap();
    assert_eq!(browser.recv().await["message"]["data"], 2);
    assert_eq!(p.history("room:acl", None, None).await.unwrap().offset, 1);
    let sent = p
        .direct(Target::Client(browser.id.clone()), "m", &3)
        .await
        .unwrap();
    assert_eq!(sent.delivered, 1);
    assert_eq!(p.channels().await.unwrap().channels["plain"].subscribers, 1);
    assert_eq!(
        p.disconnect(Target::User("nobody".into()))
            .await
            .unwrap()
            .disconnected,
        0
    );
    // Anything else is refused by Redis: UNAVAILABLE, with Redis's reason.
    let p = Publisher::new(
        Options::new()
            .url(&url)
            .namespaces(namespaces())
            .redis_prefix("other"),
    )
    .unwrap();
    let err = p.publish("room:acl", "m", &1).await.unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE");
    assert!(err.to_string().contains("no permissions"), "{err}");
}

#[tokio::test]
async fn several_redis_instances_are_written_as_the_nodes_spread_them() {
    let (one, two) = (Redis::start(), Redis::start());
    let urls = format!("{},{}", one.url, two.url);
    let node = |urls: &str| {
        common::Hub::start(&[
            "--engine",
            "redis",
            "--redis-url",
            urls,
            "--namespaces",
            NAMESPACES,
        ])
    };
    let (a, b) = (node(&urls), node(&urls));
    let p = Publisher::new(Options::new().url(&urls).namespaces(namespaces())).unwrap();
    // A channel on each instance.
    let on = |shard: usize| {
        (0..)
            .map(|i| format!("room:s{i}"))
            .find(|c| hubbub_publisher::core::shard::index(c, 2) == shard)
            .unwrap()
    };
    let channels = [on(0), on(1)];
    let mut on_a = Browser::connect(&a).await;
    let mut on_b = Browser::connect(&b).await;
    for channel in &channels {
        on_a.subscribe(channel).await;
        on_b.subscribe(channel).await;
    }
    for (n, channel) in channels.iter().enumerate() {
        let published = p.publish(channel.as_str(), "m", &n).await.unwrap();
        assert_eq!(published.offset, Some(1));
        for browser in [&mut on_a, &mut on_b] {
            let message = browser.recv().await["message"].clone();
            assert_eq!(
                (message["channel"].as_str(), message["offset"].as_u64()),
                (Some(channel.as_str()), Some(1))
            );
        }
        // The node reads the stream where the publisher wrote it.
        let history = get(&b, &format!("/api/history/{channel}")).await;
        assert_eq!(history["messages"][0]["data"], n);
        assert_eq!(p.history(channel, None, None).await.unwrap().offset, 1);
    }
    // Each stream is on its channel's instance only.
    let alone = Publisher::new(Options::new().url(&one.url).namespaces(namespaces())).unwrap();
    assert_eq!(
        alone
            .history(&channels[0], Some(0), None)
            .await
            .unwrap()
            .offset,
        1
    );
    assert_eq!(
        alone
            .history(&channels[1], Some(0), None)
            .await
            .unwrap()
            .offset,
        0
    );
    // The nodes' messages go over the first instance.
    let sent = p
        .direct(Target::Client(on_b.id.clone()), "psst", &1)
        .await
        .unwrap();
    assert_eq!(sent.delivered, 1);
    assert_eq!(on_b.recv().await["directMessage"]["data"], 1);
    assert_eq!(p.channels().await.unwrap().channels.len(), 2);
    // The list must be the hubs' list: Redis URLs, each once.
    for (urls, says) in [
        (
            format!("{},http://h", one.url),
            "\"http://h\": is not a redis:// URL",
        ),
        (format!("{0},{0}", one.url), "listed twice"),
    ] {
        let err = Publisher::new(Options::new().url(urls).namespaces([])).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
}
