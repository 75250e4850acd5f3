//! What subscribers receive from the publisher, against a real hub and real WebSocket
//! clients; many calls in flight on one async publisher; one blocking publisher shared
//! by threads.

mod common;

use common::browser::Browser;
use hubbub_publisher::core::auth::{sign, Claims, DEFAULT_TOKEN_TTL};
use hubbub_publisher::{blocking, Options, Publisher, Target};
use serde_json::json;

const SECRET: &str = "publisher-test-secret";

fn hub() -> common::Hub {
    common::Hub::start(&["--token-secret", SECRET])
}

#[tokio::test]
async fn subscribers_receive_what_is_published() {
    let hub = hub();
    let p = Publisher::new(Options::new().url(&hub.url)).unwrap();
    let mut a = Browser::connect(&hub).await;
    let mut b = Browser::connect(&hub).await;
    a.subscribe("room:1").await;
    b.subscribe("room:2").await;

    #[derive(serde::Serialize)]
    struct Note<'a> {
        text: &'a str,
        n: u32,
    }
    let answer = p
        .publish("room:1", "chat", &Note { text: "hi", n: 1 })
        .await
        .unwrap();
    assert_eq!(answer.published, "room:1");
    assert_eq!(
        a.recv().await,
        json!({"message": {"channel": "room:1", "event": "chat", "data": {"text": "hi", "n": 1}}})
    );

    let answer = p
        .broadcast(["room:1", "room:2"], "news", &json!([1, "two"]))
        .await
        .unwrap();
    assert_eq!(answer.published, ["room:1", "room:2"]);
    for (browser, channel) in [(&mut a, "room:1"), (&mut b, "room:2")] {
        assert_eq!(
            browser.recv().await,
            json!({"message": {"channel": channel, "event": "news", "data": [1, "two"]}})
        );
    }

    let sent = p
        .direct(Target::Client(a.id.clone()), "psst", &"just you")
        .await
        .unwrap();
    assert_eq!(
        (sent.direct_sent.as_str(), sent.delivered),
        (a.id.as_str(), 1)
    );
    assert_eq!(
        a.recv().await,
        json!({"directMessage": {"event": "psst", "data": "just you"}})
    );

    let channels = p.channels().await.unwrap().channels;
    assert_eq!(channels["room:1"].subscribers, 1);
    assert_eq!(p.info().await.unwrap().connections, 2);

    // Every connection of a user, by a token minted with core.
    let token = sign(
        SECRET.as_bytes(),
        &Claims::new("ann").issued_now(Some(DEFAULT_TOKEN_TTL as f64)),
    )
    .unwrap();
    for browser in [&mut a, &mut b] {
        let answer = browser
            .command(json!({"authenticate": {"token": token}}))
            .await;
        assert_eq!(answer, json!({"authenticated": "ann"}));
    }
    let sent = p
        .direct(Target::User("ann".into()), "dm", &json!({"to": "ann"}))
        .await
        .unwrap();
    assert_eq!(sent.delivered, 2);
    for browser in [&mut a, &mut b] {
        assert_eq!(
            browser.recv().await,
            json!({"directMessage": {"event": "dm", "data": {"to": "ann"}}})
        );
    }

    let gone = p.disconnect(Target::User("ann".into())).await.unwrap();
    assert_eq!(gone.disconnected, 2);
    for browser in [&mut a, &mut b] {
        assert_eq!(browser.recv().await, json!({"closed": 4000}));
    }
}

#[tokio::test]
async fn many_calls_in_flight_on_one_publisher() {
    let hub = hub();
    let p = Publisher::new(Options::new().url(&hub.url)).unwrap();
    let mut browser = Browser::connect(&hub).await;
    browser.subscribe("flight").await;
    let calls = (0..64).map(|i| {
        let p = p.clone();
        tokio::spawn(async move { p.publish("flight", "n", &i).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap().unwrap().published, "flight");
    }
    let mut got: Vec<u64> = Vec::new();
    for _ in 0..64 {
        got.push(browser.recv().await["message"]["data"].as_u64().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (0..64).collect::<Vec<u64>>());
}

#[tokio::test]
async fn one_blocking_publisher_shared_by_threads() {
    let hub = hub();
    let p = blocking::Publisher::new(Options::new().url(&hub.url)).unwrap();
    let mut browser = Browser::connect(&hub).await;
    browser.subscribe("threads").await;
    let (threads, calls) = (4, 50);
    // Blocking calls run off the test's runtime, on threads of their own.
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..calls {
                    p.publish("threads", "n", &json!({"t": t, "i": i})).unwrap();
                }
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || workers.into_iter().for_each(|w| w.join().unwrap()))
        .await
        .unwrap();
    let mut seen = vec![Vec::new(); threads];
    for _ in 0..threads * calls {
        let data = browser.recv().await["message"]["data"].clone();
        seen[data["t"].as_u64().unwrap() as usize].push(data["i"].as_u64().unwrap());
    }
    // Everything arrived, and each thread's publications in the order it made them.
    for s in seen {
        assert_eq!(s, (0..calls as u64).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn data_without_a_json_form_is_refused_before_anything_is_sent() {
    // Nothing listens there: had the call been sent, it would be UNAVAILABLE.
    let p = Publisher::new(Options::new().url(common::unreachable_url())).unwrap();
    let data: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let err = p.publish("c", "m", &data).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_PAYLOAD");
    assert_eq!((err.url(), err.status()), (None, None));
    assert!(err.to_string().contains("data has no JSON form"), "{err}");
    let b = blocking::Publisher::for_endpoint(p.endpoint().clone());
    let err = tokio::task::spawn_blocking(move || b.direct(Target::User("u".into()), "m", &data))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_PAYLOAD");
}
