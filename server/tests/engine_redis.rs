//! The Redis engine against the conformance suite every engine passes, on a real
//! `redis-server` started for these tests on a free port.

mod common;
mod conformance;

use common::redis::redis_url;
use conformance::Engine;
use hubbub_server::engine::{RedisBroker, RedisPresence};
use std::sync::Arc;

async fn redis() -> Engine {
    let broker = RedisBroker::connect(redis_url(), "conformance")
        .await
        .unwrap();
    let presence = RedisPresence::new(broker.commands(), "conformance");
    Engine::start(Arc::new(broker), Arc::new(presence)).await
}

engine_conformance!(redis);
