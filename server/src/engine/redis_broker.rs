//! The broker of the Redis engine: many hubbub nodes share one Redis. A publication goes
//! out on the channel's Redis topic, which a node listens to only while it has local
//! subscribers; where the channel keeps history, one Lua script takes the next offset,
//! appends to the stream and publishes, so that the offsets and the order subscribers see
//! are one and the same on every node.
//!
//! The keys, topics, scripts and lines are hubbub-core's `engine` module (where they are
//! written down), which hubbub-publisher's Redis transport shares: a publication made
//! straight into Redis is one made through a node.

use super::{
    new_epoch, Broker, BrokerHandler, Control, EngineError, HistoryFilter, HistoryResult,
    StreamOptions,
};
use async_trait::async_trait;
use hubbub_core::api::NodeInfo;
use hubbub_core::engine;
// What travels on a topic, read back into what the handler is given.
use hubbub_core::engine::{read_line as decode, with_resp3, Line as Payload};
use hubbub_core::engine::{
    HISTORY_SCRIPT as HISTORY, NODES_SCRIPT as NODES, PUBLISH_SCRIPT as PUBLISH,
};
use hubbub_core::protocol::{Message, PresentClient, StreamPosition};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, PushKind, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// The Redis engine's broker.
pub struct RedisBroker {
    /// Commands, scripts and publishing.
    commands: ConnectionManager,
    /// Subscriptions: its pushes carry the publications of the topics this node listens to.
    subscriber: ConnectionManager,
    pushes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<redis::PushInfo>>>,
    prefix: String,
    publish: redis::Script,
    history: redis::Script,
    nodes: redis::Script,
    handler: Arc<OnceLock<Arc<dyn BrokerHandler>>>,
}

fn failed(e: redis::RedisError) -> EngineError {
    EngineError(format!("redis: {e}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RedisBroker {
    /// Connects to the Redis at `url` (RESP3 is needed for pub/sub on a managed
    /// connection: `?protocol=resp3` is added where the URL gives none); both connections
    /// reconnect by themselves, and the subscriptions are made again after a reconnect.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBroker, EngineError> {
        let client = redis::Client::open(with_resp3(url)).map_err(failed)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(1));
        let commands = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(failed)?;
        let (tx, pushes) = mpsc::unbounded_channel();
        let subscriber = ConnectionManager::new_with_config(
            client,
            config.set_push_sender(tx).set_automatic_resubscription(),
        )
        .await
        .map_err(failed)?;
        Ok(RedisBroker {
            commands,
            subscriber,
            pushes: std::sync::Mutex::new(Some(pushes)),
            prefix: prefix.to_owned(),
            publish: redis::Script::new(PUBLISH),
            history: redis::Script::new(HISTORY),
            nodes: redis::Script::new(NODES),
            handler: Arc::new(OnceLock::new()),
        })
    }

    /// The connection commands go over, for the presence manager to share.
    pub fn commands(&self) -> ConnectionManager {
        self.commands.clone()
    }

    fn control_topic(&self) -> String {
        engine::control_topic(&self.prefix)
    }

    fn topic(&self, channel: &str) -> String {
        engine::topic(&self.prefix, channel)
    }

    fn stream_keys(&self, channel: &str) -> (String, String) {
        engine::stream_keys(&self.prefix, channel)
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Hands what arrives on the topics to the handler, in the order it arrives.
async fn deliver(
    prefix: String,
    handler: Arc<dyn BrokerHandler>,
    mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
) {
    let topic_prefix = engine::topic_prefix(&prefix);
    let control_topic = engine::control_topic(&prefix);
    while let Some(push) = pushes.recv().await {
        if push.kind != PushKind::Message {
            continue;
        }
        let (Some(topic), Some(payload)) = (
            push.data.first().and_then(bytes),
            push.data.get(1).and_then(bytes),
        ) else {
            continue;
        };
        let Ok(topic) = std::str::from_utf8(topic) else {
            continue;
        };
        if topic == control_topic {
            match decode(payload) {
                Some(Payload::Control(control)) => handler.control(&control),
                _ => tracing::warn!("unreadable message between nodes"),
            }
            continue;
        }
        let Some(channel) = topic.strip_prefix(&topic_prefix) else {
            continue;
        };
        match decode(payload) {
            Some(Payload::Message(message)) => handler.publication(channel, &message),
            Some(Payload::Join(client)) => handler.join(channel, &client),
            Some(Payload::Leave(client)) => handler.leave(channel, &client),
            Some(Payload::Control(_)) | None => {
                tracing::warn!(channel, "unreadable publication on the Redis topic")
            }
        }
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn start(&self, handler: Arc<dyn BrokerHandler>) -> Result<(), EngineError> {
        let pushes = self
            .pushes
            .lock()
            .expect("not poisoned")
            .take()
            .ok_or_else(|| EngineError("the broker was started twice".into()))?;
        let _ = self.handler.set(handler.clone());
        tokio::spawn(deliver(self.prefix.clone(), handler, pushes));
        self.subscriber
            .clone()
            .subscribe(self.control_topic())
            .await
            .map_err(failed)
    }

    async fn publish(
        &self,
        channel: &str,
        message: Message,
        options: &StreamOptions,
    ) -> Result<Option<StreamPosition>, EngineError> {
        let json = engine::message_json(&message);
        let mut redis = self.commands.clone();
        if !options.keeps_history() {
            let _: i64 = redis
                .publish(self.topic(channel), engine::publication_line(&json))
                .await
                .map_err(failed)?;
            return Ok(None);
        }
        let (meta, list) = self.stream_keys(channel);
        let (offset, epoch): (u64, String) = self
            .publish
            .key(meta)
            .key(list)
            .arg(self.topic(channel))
            .arg(json)
            .arg(options.history_size)
            .arg(options.history_ttl.as_millis() as u64)
            .arg(new_epoch())
            .invoke_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(Some(StreamPosition { epoch, offset }))
    }

    async fn publish_join(&self, channel: &str, client: &PresentClient) -> Result<(), EngineError> {
        let mut redis = self.commands.clone();
        let _: i64 = redis
            .publish(self.topic(channel), engine::join_line(client))
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn publish_leave(
        &self,
        channel: &str,
        client: &PresentClient,
    ) -> Result<(), EngineError> {
        let mut redis = self.commands.clone();
        let _: i64 = redis
            .publish(self.topic(channel), engine::leave_line(client))
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.subscriber
            .clone()
            .subscribe(self.topic(channel))
            .await
            .map_err(failed)
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.subscriber
            .clone()
            .unsubscribe(self.topic(channel))
            .await
            .map_err(failed)
    }

    async fn has_subscribers(&self, channel: &str) -> Result<bool, EngineError> {
        let mut redis = self.commands.clone();
        let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(self.topic(channel))
            .query_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(counts.first().is_some_and(|(_, n)| *n > 0))
    }

    async fn publish_control(&self, control: &Control) -> Result<(), EngineError> {
        let mut redis = self.commands.clone();
        let _: i64 = redis
            .publish(self.control_topic(), engine::control_line(control))
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn announce(&self, node: &NodeInfo, ttl: Duration) -> Result<(), EngineError> {
        let json = serde_json::to_string(node).expect("node figures serialize");
        let (nodes, expiries) = engine::nodes_keys(&self.prefix);
        let _: () = redis::pipe()
            .atomic()
            .hset(&nodes, &node.id, json)
            .ignore()
            .zadd(&expiries, &node.id, now_ms() + ttl.as_millis() as u64)
            .ignore()
            .query_async(&mut self.commands.clone())
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn withdraw(&self, node_id: &str) -> Result<(), EngineError> {
        let (nodes, expiries) = engine::nodes_keys(&self.prefix);
        let _: () = redis::pipe()
            .atomic()
            .hdel(nodes, node_id)
            .ignore()
            .zrem(expiries, node_id)
            .ignore()
            .query_async(&mut self.commands.clone())
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        let (nodes, expiries) = engine::nodes_keys(&self.prefix);
        let values: Vec<String> = self
            .nodes
            .key(nodes)
            .key(expiries)
            .arg(now_ms())
            .invoke_async(&mut self.commands.clone())
            .await
            .map_err(failed)?;
        let mut nodes: Vec<NodeInfo> = values
            .iter()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
        options: &StreamOptions,
    ) -> Result<HistoryResult, EngineError> {
        let (meta, list) = self.stream_keys(channel);
        let mut redis = self.commands.clone();
        let (epoch, offset, entries): (String, u64, Vec<Vec<u8>>) = self
            .history
            .key(meta)
            .key(list)
            .arg(new_epoch())
            .arg(options.history_ttl.as_millis() as u64)
            .invoke_async(&mut redis)
            .await
            .map_err(failed)?;
        let kept: Vec<Message> = entries
            .iter()
            .filter_map(|e| match decode(e) {
                Some(Payload::Message(m)) => Some(m),
                _ => None,
            })
            .collect();
        let messages = match filter.since {
            Some(since) => kept
                .into_iter()
                .filter(|m| m.offset.is_some_and(|o| o > since))
                .take(filter.limit.unwrap_or(usize::MAX))
                .collect(),
            None => {
                let n = filter.limit.unwrap_or(kept.len()).min(kept.len());
                let skip = kept.len() - n;
                kept.into_iter().skip(skip).collect()
            }
        };
        Ok(HistoryResult {
            position: StreamPosition { epoch, offset },
            messages,
        })
    }
}
