//! Brokers: how a publication reaches every subscriber of a channel on the cluster.
//!
//! The `memory` broker is the embedded default: the cluster is this node, so publishing is
//! fanning out to the local hub. A Redis broker (pub/sub between nodes) plugs in behind the
//! same trait, with each node still fanning out to its own hub.

use crate::connection::{ClientHandle, Frame};
use hubbub_core::hub::Hub;
use parking_lot::RwLock;
use std::sync::Arc;

/// Publication across the cluster.
pub trait Broker: Send + Sync + 'static {
    /// Delivers an encoded frame to every subscriber of `channel` on the cluster; returns
    /// the number of local deliveries.
    fn publish(&self, channel: &str, frame: &Frame) -> usize;

    /// Whether `channel` has at least one subscriber on the cluster.
    fn has_subscribers(&self, channel: &str) -> bool;
}

/// The single-node broker: the local hub is the whole cluster.
pub struct MemoryBroker {
    hub: Arc<RwLock<Hub<ClientHandle>>>,
}

impl MemoryBroker {
    pub fn new(hub: Arc<RwLock<Hub<ClientHandle>>>) -> MemoryBroker {
        MemoryBroker { hub }
    }
}

impl Broker for MemoryBroker {
    fn publish(&self, channel: &str, frame: &Frame) -> usize {
        self.hub.read().publish(channel, frame)
    }

    fn has_subscribers(&self, channel: &str) -> bool {
        self.hub.read().has_subscribers(channel)
    }
}
