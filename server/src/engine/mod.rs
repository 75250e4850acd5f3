//! The engine: how a node shares publications, history and presence with the rest of the
//! cluster, behind two async traits with their implementations side by side.
//!
//! - [`Broker`] (`broker.rs`): publication across the cluster, per-channel streams
//!   (offsets, epochs, history), join/leave; publications come back to the node through
//!   one [`BrokerHandler`], which encodes each once and fans it out to local subscribers.
//! - [`PresenceManager`] (`presence.rs`): who is subscribed to a channel, cluster-wide.
//! - `memory_broker.rs`, `memory_presence.rs`: the embedded engine, where the cluster is
//!   this node.
//! - `redis_broker.rs`, `redis_presence.rs`: the Redis engine, where many nodes share one
//!   Redis (pub/sub between nodes, streams and presence in Redis).
//! - `sharded.rs`: an engine over several Redis instances, each channel on one of them
//!   (`redis_url` listing several).
//!
//! Every implementation passes the one conformance suite in `server/tests/conformance/`.

mod broker;
mod memory_broker;
mod memory_presence;
mod presence;
mod redis_broker;
mod redis_presence;
mod sharded;

pub use broker::{Broker, BrokerHandler, Control, HistoryFilter, HistoryResult, StreamOptions};
pub use memory_broker::MemoryBroker;
pub use memory_presence::MemoryPresence;
pub use presence::{PresenceManager, PresenceStats};
pub use redis_broker::RedisBroker;
pub use redis_presence::{RedisPresence, PRESENCE_TTL};
pub use sharded::{ShardedBroker, ShardedPresence};

use std::fmt;

/// The engine could not do what was asked (Redis unreachable, a timeout, a bad answer).
/// Clients see `UNAVAILABLE`; the HTTP API answers 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError(pub String);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

impl From<EngineError> for hubbub_core::Rejection {
    fn from(e: EngineError) -> Self {
        crate::metrics::METRICS.engine_errors.inc();
        hubbub_core::Error::Unavailable.because(e.0)
    }
}

/// A new stream epoch: random, so that a position from a stream that was lost (a
/// restarted node, an expired stream) is never mistaken for one of the new stream.
pub fn new_epoch() -> String {
    let id = uuid::Uuid::new_v4();
    let mut random = [0; 6];
    random.copy_from_slice(&id.as_bytes()[..6]);
    hubbub_core::engine::epoch(random)
}
