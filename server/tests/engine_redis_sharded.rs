//! The Redis engine spread over two `redis-server`s (`redis_url` listing both) against the
//! conformance suite every engine passes: each channel on one of them, messages between
//! nodes and the node list on the first.

mod common;
mod conformance;

use common::redis::{redis_url, second_redis_url};
use conformance::Engine;
use hubbub_server::engine::{
    Broker, PresenceManager, RedisBroker, RedisPresence, ShardedBroker, ShardedPresence,
};
use std::sync::Arc;

async fn sharded() -> Engine {
    let mut brokers: Vec<Arc<dyn Broker>> = Vec::new();
    let mut presences: Vec<Arc<dyn PresenceManager>> = Vec::new();
    for url in [redis_url(), second_redis_url()] {
        let broker = RedisBroker::connect(url, "conformance-sharded")
            .await
            .unwrap();
        presences.push(Arc::new(RedisPresence::new(
            broker.commands(),
            "conformance-sharded",
        )));
        brokers.push(Arc::new(broker));
    }
    Engine::start(
        Arc::new(ShardedBroker::new(brokers)),
        Arc::new(ShardedPresence::new(presences)),
    )
    .await
}

engine_conformance!(sharded);

/// Each channel's stream is on the instance `hubbub_core::shard::index` names, and only
/// there.
#[tokio::test]
async fn channels_live_on_their_instance() {
    use hubbub_core::protocol::{Message, RawJson};
    use hubbub_server::engine::StreamOptions;
    let urls = [redis_url(), second_redis_url()];
    let engine = sharded_with_prefix("placement").await;
    let options = StreamOptions {
        history_size: 10,
        history_ttl: std::time::Duration::from_secs(60),
    };
    // Channels until both instances have some.
    let channels: Vec<String> = (0..16).map(|i| format!("placed:{i}")).collect();
    for channel in &channels {
        let message = Message {
            channel: channel.clone(),
            event: "e".into(),
            data: RawJson::from_string("1".into()).unwrap(),
            from: None,
            offset: None,
        };
        engine.publish(channel, message, &options).await.unwrap();
    }
    for (i, url) in urls.iter().enumerate() {
        let mut redis = redis::Client::open(*url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("placement:*placed:*")
            .query_async(&mut redis)
            .await
            .unwrap();
        for channel in &channels {
            let here = keys.iter().any(|k| k.ends_with(&format!(":{channel}")));
            let home = hubbub_core::shard::index(channel, urls.len()) == i;
            assert_eq!(here, home, "{channel} on instance {i}: {keys:?}");
        }
    }
}

async fn sharded_with_prefix(prefix: &str) -> ShardedBroker {
    let mut brokers: Vec<Arc<dyn Broker>> = Vec::new();
    for url in [redis_url(), second_redis_url()] {
        brokers.push(Arc::new(RedisBroker::connect(url, prefix).await.unwrap()));
    }
    ShardedBroker::new(brokers)
}
