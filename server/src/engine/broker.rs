//! The broker: how a publication reaches every subscriber of a channel on the cluster, and
//! the channel's stream (offsets, epoch, history) where its namespace keeps one.
//!
//! The broker never touches the hub. The node calls [`Broker::subscribe`] when a channel
//! gets its first local subscriber and [`Broker::unsubscribe`] when it loses its last,
//! and the broker hands every publication of a subscribed channel back through the
//! node's [`BrokerHandler`], in the channel's one order.

use super::EngineError;
use async_trait::async_trait;
use hubbub_core::api::NodeInfo;
use hubbub_core::protocol::{Message, PresentClient, StreamPosition};
use std::sync::Arc;
use std::time::Duration;

/// What a channel's namespace keeps: given with every publish and history call, since the
/// broker knows channels, not namespaces. (Core's, which the Redis publisher uses too.)
pub use hubbub_core::namespace::StreamOptions;

/// Which messages of a stream a history call wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryFilter {
    /// Only messages after this offset (the first `limit` of them); without it, the
    /// newest `limit`.
    pub since: Option<u64>,
    /// At most this many; `None` for all that are kept, `Some(0)` for just the position.
    pub limit: Option<usize>,
}

/// A stream's position and the messages a history call asked for, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryResult {
    pub position: StreamPosition,
    pub messages: Vec<Message>,
}

/// A message between the nodes of a cluster, not for subscribers: what the HTTP API and
/// `direct` ask of connections wherever they are, and the nodes' answers. (Core's, where
/// the Redis engine's layout is written down.)
pub use hubbub_core::engine::Control;

/// Where the broker hands back what it receives for the channels the node subscribed to.
pub trait BrokerHandler: Send + Sync + 'static {
    /// A publication, with its offset set where the channel keeps history. Called in the
    /// channel's one order, never for two publications of one channel at once.
    fn publication(&self, channel: &str, message: &Message);
    /// Someone subscribed to a channel with join/leave events.
    fn join(&self, channel: &str, client: &PresentClient);
    /// Someone left a channel with join/leave events.
    fn leave(&self, channel: &str, client: &PresentClient);
    /// A message between nodes (every node receives every one, its own included).
    fn control(&self, control: &Control);
    /// The broker lost the connection publications come by (it gets it back by itself,
    /// then calls [`BrokerHandler::resumed`]).
    fn interrupted(&self) {}
    /// The broker lost its connection and has it back (its subscriptions made again):
    /// publications may have gone by meanwhile without reaching this node. Those
    /// published before this call that did reach it arrive within `in_flight`.
    fn resumed(&self, in_flight: Duration) {
        let _ = in_flight;
    }
}

/// Publication across the cluster, and per-channel streams.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Starts handing publications to `handler`; called once, before anything else.
    async fn start(&self, handler: Arc<dyn BrokerHandler>) -> Result<(), EngineError>;

    /// Publishes `message` on `channel`. Where `options` keep history, appending to the
    /// stream and publishing are one atomic step, and the answer is the publication's
    /// position; otherwise `None`.
    async fn publish(
        &self,
        channel: &str,
        message: Message,
        options: &StreamOptions,
    ) -> Result<Option<StreamPosition>, EngineError>;

    /// Tells subscribers of `channel` (but `client` itself) that `client` joined.
    async fn publish_join(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError>;

    /// Tells subscribers of `channel` that `client` left.
    async fn publish_leave(&self, channel: &str, client: &PresentClient)
        -> Result<(), EngineError>;

    /// This node has a subscriber of `channel` now: hand its publications back.
    async fn subscribe(&self, channel: &str) -> Result<(), EngineError>;

    /// This node has no subscriber of `channel` any more.
    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError>;

    /// Whether any node of the cluster has a subscriber of `channel`.
    async fn has_subscribers(&self, channel: &str) -> Result<bool, EngineError>;

    /// Sends a message to every node of the cluster, this one included.
    async fn publish_control(&self, control: &Control) -> Result<(), EngineError>;

    /// Says that this node is alive, with its figures, for `ttl`.
    async fn announce(&self, node: &NodeInfo, ttl: Duration) -> Result<(), EngineError>;

    /// Says that this node is gone (it shuts down), so that it is not listed until its
    /// last announcement would have expired.
    async fn withdraw(&self, node_id: &str) -> Result<(), EngineError>;

    /// Every node alive (that announced itself within its ttl).
    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError>;

    /// The stream's position and the messages `filter` asks for. A channel with no stream
    /// yet gets one (a new epoch at offset 0), so that the position handed out now stays
    /// good for the next publication.
    async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
        options: &StreamOptions,
    ) -> Result<HistoryResult, EngineError>;

    /// Gives the stream of `channel` a new epoch, its offset and kept messages unchanged,
    /// where its epoch is still `epoch`; answers its position either way. For a stream
    /// that went back behind offsets already handed out (Redis came back from an older
    /// copy of its data, and the same offsets go to other publications now): a position
    /// in the old epoch must not be taken for one in the stream as it is now.
    async fn renew_epoch(
        &self,
        channel: &str,
        epoch: &str,
        options: &StreamOptions,
    ) -> Result<StreamPosition, EngineError>;
}
