//! One conformance suite for every engine. `engine_conformance!(factory)` expands into one
//! test per property below, each on a fresh engine made by `factory().await` (a broker
//! not yet started, and a presence manager), so that the memory engine and any other
//! pass exactly the same tests.

#![allow(dead_code)]

use hubbub_core::api::{NodeInfo, Target};
use hubbub_core::protocol::{Message, PresentClient, RawJson};
use hubbub_server::engine::{
    Broker, BrokerHandler, Control, HistoryFilter, PresenceManager, PresenceStats, StreamOptions,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// What an engine handed back to its node.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Publication(String, Message),
    Join(String, PresentClient),
    Leave(String, PresentClient),
    Control(Control),
}

struct Recorder(mpsc::UnboundedSender<Event>);

impl BrokerHandler for Recorder {
    fn publication(&self, channel: &str, message: &Message) {
        let _ = self
            .0
            .send(Event::Publication(channel.to_owned(), message.clone()));
    }
    fn join(&self, channel: &str, client: &PresentClient) {
        let _ = self.0.send(Event::Join(channel.to_owned(), client.clone()));
    }
    fn leave(&self, channel: &str, client: &PresentClient) {
        let _ = self
            .0
            .send(Event::Leave(channel.to_owned(), client.clone()));
    }
    fn control(&self, control: &Control) {
        let _ = self.0.send(Event::Control(control.clone()));
    }
}

/// An engine under test, its broker started, with what it hands back.
pub struct Engine {
    pub broker: Arc<dyn Broker>,
    pub presence: Arc<dyn PresenceManager>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Engine {
    pub async fn start(broker: Arc<dyn Broker>, presence: Arc<dyn PresenceManager>) -> Engine {
        let (tx, events) = mpsc::unbounded_channel();
        broker.start(Arc::new(Recorder(tx))).await.unwrap();
        Engine {
            broker,
            presence,
            events,
        }
    }

    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("the engine hands something back in time")
            .expect("the engine is alive")
    }

    pub async fn next_publication(&mut self) -> (String, Message) {
        match self.next().await {
            Event::Publication(channel, message) => (channel, message),
            other => panic!("expected a publication, got {other:?}"),
        }
    }

    pub async fn publish(&self, channel: &str, n: u64, options: &StreamOptions) -> Option<u64> {
        self.broker
            .publish(channel, message(channel, n), options)
            .await
            .unwrap()
            .map(|p| p.offset)
    }
}

pub fn message(channel: &str, n: u64) -> Message {
    Message {
        channel: channel.to_owned(),
        event: "e".to_owned(),
        data: RawJson::from_value(&n).unwrap(),
        offset: None,
        from: None,
    }
}

pub fn n_of(message: &Message) -> u64 {
    message.data.decode().unwrap()
}

pub fn history(size: usize) -> StreamOptions {
    StreamOptions {
        history_size: size,
        history_ttl: Duration::from_secs(60),
    }
}

pub const NO_HISTORY: StreamOptions = StreamOptions {
    history_size: 0,
    history_ttl: Duration::ZERO,
};

/// A channel name of its own for each test, so that engines shared between tests (one
/// Redis) never mix them up.
pub fn channel(name: &str) -> String {
    format!("{name}:{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{}", N.fetch_add(1, Ordering::Relaxed))
}

pub fn present(client: &str, user: Option<&str>) -> PresentClient {
    PresentClient {
        client: client.to_owned(),
        user: user.map(str::to_owned),
        info: None,
    }
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

pub async fn publications_come_back_only_for_subscribed_channels(mut e: Engine) {
    let quiet = channel("quiet");
    let heard = channel("heard");
    e.broker.subscribe(&heard).await.unwrap();
    e.publish(&quiet, 1, &NO_HISTORY).await;
    e.publish(&heard, 2, &NO_HISTORY).await;
    let (c, m) = e.next_publication().await;
    assert_eq!((c.as_str(), n_of(&m)), (heard.as_str(), 2));
    e.broker.unsubscribe(&heard).await.unwrap();
    e.broker.subscribe(&quiet).await.unwrap();
    e.publish(&heard, 3, &NO_HISTORY).await;
    e.publish(&quiet, 4, &NO_HISTORY).await;
    let (c, m) = e.next_publication().await;
    assert_eq!((c.as_str(), n_of(&m)), (quiet.as_str(), 4));
}

pub async fn without_history_there_is_no_position(mut e: Engine) {
    let c = channel("plain");
    e.broker.subscribe(&c).await.unwrap();
    assert_eq!(e.publish(&c, 1, &NO_HISTORY).await, None);
    let (_, m) = e.next_publication().await;
    assert_eq!(m.offset, None);
    assert_eq!(m, message(&c, 1));
}

pub async fn offsets_count_up_within_one_epoch(mut e: Engine) {
    let c = channel("stream");
    e.broker.subscribe(&c).await.unwrap();
    let options = history(10);
    let mut epochs = Vec::new();
    for n in 1..=3 {
        let p = e
            .broker
            .publish(&c, message(&c, n), &options)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.offset, n);
        epochs.push(p.epoch);
        let (_, m) = e.next_publication().await;
        assert_eq!((m.offset, n_of(&m)), (Some(n), n));
    }
    assert!(!epochs[0].is_empty());
    assert!(epochs.iter().all(|x| x == &epochs[0]));
}

pub async fn history_gives_what_the_filter_asks(e: Engine) {
    let c = channel("filtered");
    let options = history(10);
    for n in 1..=5 {
        e.publish(&c, n, &options).await;
    }
    let all = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap();
    assert_eq!(all.position.offset, 5);
    let offsets = |h: &hubbub_server::engine::HistoryResult| {
        h.messages
            .iter()
            .map(|m| m.offset.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(offsets(&all), [1, 2, 3, 4, 5]);
    assert_eq!(
        all.messages.iter().map(n_of).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let newest = HistoryFilter {
        since: None,
        limit: Some(2),
    };
    let h = e.broker.history(&c, newest, &options).await.unwrap();
    assert_eq!(offsets(&h), [4, 5]);
    let after = HistoryFilter {
        since: Some(2),
        limit: None,
    };
    let h = e.broker.history(&c, after, &options).await.unwrap();
    assert_eq!(offsets(&h), [3, 4, 5]);
    let page = HistoryFilter {
        since: Some(1),
        limit: Some(2),
    };
    let h = e.broker.history(&c, page, &options).await.unwrap();
    assert_eq!(offsets(&h), [2, 3]);
    let position = HistoryFilter {
        since: None,
        limit: Some(0),
    };
    let h = e.broker.history(&c, position, &options).await.unwrap();
    assert!(h.messages.is_empty());
    assert_eq!(h.position, all.position);
    let past_the_end = HistoryFilter {
        since: Some(5),
        limit: None,
    };
    let h = e.broker.history(&c, past_the_end, &options).await.unwrap();
    assert!(h.messages.is_empty());
}

pub async fn history_is_trimmed_to_its_size(e: Engine) {
    let c = channel("trimmed");
    let options = history(3);
    for n in 1..=10 {
        e.publish(&c, n, &options).await;
    }
    let h = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap();
    assert_eq!(h.position.offset, 10);
    assert_eq!(
        h.messages
            .iter()
            .map(|m| m.offset.unwrap())
            .collect::<Vec<_>>(),
        [8, 9, 10]
    );
    // After a position that was trimmed away: the oldest kept (the caller sees the gap).
    let gone = HistoryFilter {
        since: Some(2),
        limit: Some(2),
    };
    let h = e.broker.history(&c, gone, &options).await.unwrap();
    assert_eq!(
        h.messages
            .iter()
            .map(|m| m.offset.unwrap())
            .collect::<Vec<_>>(),
        [8, 9]
    );
}

pub async fn a_new_stream_keeps_the_position_it_handed_out(e: Engine) {
    let c = channel("fresh");
    let options = history(10);
    let h = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap();
    assert_eq!(h.position.offset, 0);
    assert!(h.messages.is_empty());
    let p = e
        .broker
        .publish(&c, message(&c, 1), &options)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.epoch, p.offset), (h.position.epoch, 1));
}

pub async fn an_expired_stream_comes_back_with_a_new_epoch(e: Engine) {
    let c = channel("expiring");
    let options = StreamOptions {
        history_size: 10,
        history_ttl: Duration::from_millis(300),
    };
    let first = e
        .broker
        .publish(&c, message(&c, 1), &options)
        .await
        .unwrap()
        .unwrap();
    // Expiry is a matter of time passing: there is no event to wait for.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let h = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap();
    assert_ne!(h.position.epoch, first.epoch);
    assert_eq!(h.position.offset, 0);
    assert!(h.messages.is_empty());
}

pub async fn a_renewed_stream_keeps_its_messages_under_a_new_epoch(e: Engine) {
    let c = channel("renewed");
    let options = history(10);
    for n in 1..=2 {
        e.publish(&c, n, &options).await;
    }
    let old = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap()
        .position;
    let renewed = e
        .broker
        .renew_epoch(&c, &old.epoch, &options)
        .await
        .unwrap();
    assert_ne!(renewed.epoch, old.epoch);
    assert_eq!(renewed.offset, 2);
    // Renewing from an epoch it no longer has changes nothing.
    let again = e
        .broker
        .renew_epoch(&c, &old.epoch, &options)
        .await
        .unwrap();
    assert_eq!(again, renewed);
    let h = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap();
    assert_eq!(h.position, renewed);
    assert_eq!(h.messages.iter().map(n_of).collect::<Vec<_>>(), [1, 2]);
    let p = e
        .broker
        .publish(&c, message(&c, 3), &options)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.epoch, p.offset), (renewed.epoch, 3));
}

pub async fn one_channel_has_one_order_whatever_the_publishers(mut e: Engine) {
    let c = channel("ordered");
    e.broker.subscribe(&c).await.unwrap();
    let options = history(2000);
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let broker = e.broker.clone();
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..250 {
                    broker
                        .publish(&c, message(&c, p * 1000 + i), &options)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let (_, m) = e.next_publication().await;
        seen.push((m.offset.unwrap(), n_of(&m)));
    }
    let offsets: Vec<u64> = seen.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (1..=1000).collect::<Vec<_>>());
    // Each publisher's own publications keep their order.
    for p in 0..4 {
        let mine: Vec<u64> = seen
            .iter()
            .map(|(_, n)| *n)
            .filter(|n| n / 1000 == p)
            .collect();
        assert_eq!(mine, (0..250).map(|i| p * 1000 + i).collect::<Vec<_>>());
    }
    let h = e
        .broker
        .history(&c, HistoryFilter::default(), &options)
        .await
        .unwrap();
    let kept: Vec<(u64, u64)> = h
        .messages
        .iter()
        .map(|m| (m.offset.unwrap(), n_of(m)))
        .collect();
    assert_eq!(
        kept, seen,
        "history holds what was delivered, in the same order"
    );
}

pub async fn joins_and_leaves_come_back(mut e: Engine) {
    let c = channel("lobby");
    e.broker.subscribe(&c).await.unwrap();
    let ann = PresentClient {
        info: Some(RawJson::from_value(&serde_json::json!({"name": "ann"})).unwrap()),
        ..present("a1", Some("ann"))
    };
    e.broker.publish_join(&c, &ann).await.unwrap();
    assert_eq!(e.next().await, Event::Join(c.clone(), ann.clone()));
    e.broker.publish_leave(&c, &ann).await.unwrap();
    assert_eq!(e.next().await, Event::Leave(c.clone(), ann));
}

pub async fn subscribers_are_known_to_the_cluster(e: Engine) {
    let c = channel("known");
    assert!(!e.broker.has_subscribers(&c).await.unwrap());
    e.broker.subscribe(&c).await.unwrap();
    assert!(e.broker.has_subscribers(&c).await.unwrap());
    e.broker.unsubscribe(&c).await.unwrap();
    assert!(!e.broker.has_subscribers(&c).await.unwrap());
}

pub async fn presence_lists_who_is_there(e: Engine) {
    let c = channel("room");
    let p = &e.presence;
    assert!(p.list(&c).await.unwrap().is_empty());
    assert_eq!(p.stats(&c).await.unwrap(), PresenceStats::default());
    p.add(&c, &present("a1", Some("ann"))).await.unwrap();
    p.add(&c, &present("a2", Some("ann"))).await.unwrap();
    p.add(&c, &present("b1", Some("bob"))).await.unwrap();
    p.add(&c, &present("x1", None)).await.unwrap();
    let mut ids: Vec<String> = p
        .list(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client)
        .collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a2", "b1", "x1"]);
    assert_eq!(
        p.stats(&c).await.unwrap(),
        PresenceStats {
            clients: 4,
            users: 2
        }
    );
    // Adding again replaces: a new identity is shown, nobody is counted twice.
    let ann = PresentClient {
        info: Some(RawJson::from_value(&serde_json::json!({"name": "Ann"})).unwrap()),
        ..present("x1", Some("ann"))
    };
    p.add(&c, &ann).await.unwrap();
    let listed = p.list(&c).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.contains(&ann));
    p.remove(&c, "a1").await.unwrap();
    p.remove(&c, "a1").await.unwrap();
    p.remove(&c, "nobody").await.unwrap();
    assert_eq!(
        p.stats(&c).await.unwrap(),
        PresenceStats {
            clients: 3,
            users: 2
        }
    );
    for id in ["a2", "b1", "x1"] {
        p.remove(&c, id).await.unwrap();
    }
    assert!(p.list(&c).await.unwrap().is_empty());
    // Another channel was never touched.
    assert!(p.list(&channel("other")).await.unwrap().is_empty());
}

pub async fn messages_between_nodes_come_back(mut e: Engine) {
    let request = Control::Direct {
        request: channel("request"),
        target: Target::User("42".into()),
        frame: r#"{"directMessage":{"event":"e","data":1}}"#.into(),
    };
    e.broker.publish_control(&request).await.unwrap();
    // Other tests may share the engine (one Redis): wait for this one.
    loop {
        if let Event::Control(c) = e.next().await {
            if c == request {
                break;
            }
        }
    }
}

pub async fn nodes_announce_themselves(e: Engine) {
    let node = NodeInfo {
        id: channel("node"),
        connections: 7,
        uptime_s: 3,
    };
    e.broker
        .announce(&node, Duration::from_secs(60))
        .await
        .unwrap();
    let nodes = e.broker.nodes().await.unwrap();
    assert!(nodes.contains(&node), "{nodes:?}");
    let again = NodeInfo {
        connections: 8,
        ..node.clone()
    };
    e.broker
        .announce(&again, Duration::from_secs(60))
        .await
        .unwrap();
    let nodes = e.broker.nodes().await.unwrap();
    assert!(
        nodes.contains(&again) && !nodes.contains(&node),
        "{nodes:?}"
    );
    // A node that shuts down is no longer listed, long before its ttl.
    e.broker.withdraw(&node.id).await.unwrap();
    let nodes = e.broker.nodes().await.unwrap();
    assert!(!nodes.iter().any(|n| n.id == node.id), "{nodes:?}");
}

/// One test per property, each on a fresh engine from `$factory().await`.
#[macro_export]
macro_rules! engine_conformance {
    ($factory:expr) => {
        $crate::engine_conformance!(@tests $factory;
            publications_come_back_only_for_subscribed_channels,
            without_history_there_is_no_position,
            offsets_count_up_within_one_epoch,
            history_gives_what_the_filter_asks,
            history_is_trimmed_to_its_size,
            a_new_stream_keeps_the_position_it_handed_out,
            an_expired_stream_comes_back_with_a_new_epoch,
            a_renewed_stream_keeps_its_messages_under_a_new_epoch,
            one_channel_has_one_order_whatever_the_publishers,
            joins_and_leaves_come_back,
            subscribers_are_known_to_the_cluster,
            presence_lists_who_is_there,
            messages_between_nodes_come_back,
            nodes_announce_themselves,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let engine = $factory().await;
                conformance::$name(engine).await;
            }
        )*
    };
}
