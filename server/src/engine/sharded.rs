//! An engine spread over several instances (Redis shards): each channel lives on one of
//! them, picked by `hubbub_core::shard::index`, so that one Redis is not the ceiling.
//!
//! Everything about a channel (its publications, stream, history, presence, join/leave)
//! goes to the channel's shard, so its one order and its atomic publish-and-append hold as
//! on one instance. What is about the cluster rather than a channel (messages between
//! nodes, the list of live nodes) goes to the first shard.

use super::broker::{Broker, BrokerHandler, Control, HistoryFilter, HistoryResult, StreamOptions};
use super::presence::{PresenceManager, PresenceStats};
use super::EngineError;
use async_trait::async_trait;
use hubbub_core::api::NodeInfo;
use hubbub_core::protocol::{Message, PresentClient, StreamPosition};
use hubbub_core::shard;
use std::sync::Arc;
use std::time::Duration;

/// A broker over several brokers, one per shard.
pub struct ShardedBroker {
    shards: Vec<Arc<dyn Broker>>,
}

impl ShardedBroker {
    /// At least one shard.
    pub fn new(shards: Vec<Arc<dyn Broker>>) -> ShardedBroker {
        assert!(!shards.is_empty(), "a sharded broker needs a shard");
        ShardedBroker { shards }
    }

    fn of(&self, channel: &str) -> &dyn Broker {
        self.shards[shard::index(channel, self.shards.len())].as_ref()
    }

    fn first(&self) -> &dyn Broker {
        self.shards[0].as_ref()
    }
}

#[async_trait]
impl Broker for ShardedBroker {
    async fn start(&self, handler: Arc<dyn BrokerHandler>) -> Result<(), EngineError> {
        // Every shard hands its channels' publications to the same node; messages between
        // nodes travel on the first shard only, so only its control topic carries any.
        for broker in &self.shards {
            broker.start(handler.clone()).await?;
        }
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        message: Message,
        options: &StreamOptions,
    ) -> Result<Option<StreamPosition>, EngineError> {
        self.of(channel).publish(channel, message, options).await
    }

    async fn publish_join(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError> {
        self.of(channel).publish_join(channel, client).await
    }

    async fn publish_leave(
        &self,
        channel: &str,
        client: &PresentClient,
    ) -> Result<(), EngineError> {
        self.of(channel).publish_leave(channel, client).await
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.of(channel).subscribe(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.of(channel).unsubscribe(channel).await
    }

    async fn has_subscribers(&self, channel: &str) -> Result<bool, EngineError> {
        self.of(channel).has_subscribers(channel).await
    }

    async fn publish_control(&self, control: &Control) -> Result<(), EngineError> {
        self.first().publish_control(control).await
    }

    async fn announce(&self, node: &NodeInfo, ttl: Duration) -> Result<(), EngineError> {
        self.first().announce(node, ttl).await
    }

    async fn withdraw(&self, node_id: &str) -> Result<(), EngineError> {
        self.first().withdraw(node_id).await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        self.first().nodes().await
    }

    async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
        options: &StreamOptions,
    ) -> Result<HistoryResult, EngineError> {
        self.of(channel).history(channel, filter, options).await
    }

    async fn renew_epoch(
        &self,
        channel: &str,
        epoch: &str,
        options: &StreamOptions,
    ) -> Result<StreamPosition, EngineError> {
        self.of(channel).renew_epoch(channel, epoch, options).await
    }
}

/// Presence over several presence managers, one per shard, each channel on its shard.
pub struct ShardedPresence {
    shards: Vec<Arc<dyn PresenceManager>>,
}

impl ShardedPresence {
    /// At least one shard.
    pub fn new(shards: Vec<Arc<dyn PresenceManager>>) -> ShardedPresence {
        assert!(!shards.is_empty(), "sharded presence needs a shard");
        ShardedPresence { shards }
    }

    fn of(&self, channel: &str) -> &dyn PresenceManager {
        self.shards[shard::index(channel, self.shards.len())].as_ref()
    }
}

#[async_trait]
impl PresenceManager for ShardedPresence {
    async fn add(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError> {
        self.of(channel).add(channel, client).await
    }

    async fn remove(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        self.of(channel).remove(channel, client).await
    }

    async fn list(&self, channel: &str) -> Result<Vec<PresentClient>, EngineError> {
        self.of(channel).list(channel).await
    }

    async fn stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        self.of(channel).stats(channel).await
    }

    fn refresh_every(&self) -> Option<Duration> {
        self.shards[0].refresh_every()
    }
}
