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

/// Gives a stream a new epoch where it still has the one given, making the stream where
/// there is none: KEYS meta; ARGV the old epoch, the new one, ttl in ms.
const RENEW: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif epoch == ARGV[1] then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'o') or '0')}
"#;

/// The Redis engine's broker.
pub struct RedisBroker {
    /// Commands, scripts and publishing.
    commands: ConnectionManager,
    /// Subscriptions: its pushes carry the publications of the topics this node listens to.
    subscriber: Arc<ConnectionManager>,
    /// Woken when the subscriber connection dropped.
    dropped: Arc<tokio::sync::Notify>,
    pushes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<redis::PushInfo>>>,
    prefix: String,
    publish: redis::Script,
    history: redis::Script,
    renew: redis::Script,
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

/// How long a connection to Redis may take, and an answer: past them a command fails
/// (publishing answers 503) rather than wait.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the first connection is tried for when the node starts.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the subscriber connection is tried while Redis is unreachable (at most): how
/// long after Redis is back the node may take to hear publications again.
const RESUBSCRIBE_EVERY: Duration = Duration::from_millis(250);

/// How long publications already on their way to this node may take to arrive, when it
/// checks after a reconnect whether it missed any.
const IN_FLIGHT: Duration = Duration::from_secs(1);

impl RedisBroker {
    /// Connects to the Redis at `url` (RESP3 is needed for pub/sub on a managed
    /// connection: `?protocol=resp3` is added where the URL gives none).
    ///
    /// While Redis is unreachable every command fails at once (or after
    /// [`CONNECT_TIMEOUT`] or [`RESPONSE_TIMEOUT`] where Redis does not answer at all),
    /// and tries to connect again, rather than wait for Redis to come back: a publisher
    /// hears 503 promptly. The subscriber connection is brought back by
    /// [`watch_subscriber`], its subscriptions made again, and then the handler is told
    /// ([`BrokerHandler::resumed`]) that publications may have gone by meanwhile. TCP
    /// keepalives find a connection that died without a word (a network partition).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBroker, EngineError> {
        use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
        use redis::IntoConnectionInfo;
        let keepalive = TcpKeepalive::new()
            .with_time(Duration::from_secs(10))
            .with_interval(Duration::from_secs(5))
            .with_retries(3);
        let info = with_resp3(url)
            .into_connection_info()
            .map_err(failed)?
            .set_tcp_settings(
                TcpSettings::default()
                    .set_nodelay(true)
                    .set_keepalive(keepalive)
                    .set_user_timeout(Duration::from_secs(10)),
            );
        let client = redis::Client::open(info).map_err(failed)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(0);
        let (tx, pushes) = mpsc::unbounded_channel();
        let subscriber_config = config
            .clone()
            .set_push_sender(tx)
            .set_automatic_resubscription();
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        let (commands, subscriber) = loop {
            let connected = async {
                let commands =
                    ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                let subscriber =
                    ConnectionManager::new_with_config(client.clone(), subscriber_config.clone())
                        .await?;
                Ok::<_, redis::RedisError>((commands, subscriber))
            };
            match connected.await {
                Ok(connected) => break connected,
                Err(e) if started.elapsed() + delay > START_TIMEOUT => return Err(failed(e)),
                Err(e) => {
                    tracing::warn!("cannot connect to Redis yet: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        };
        Ok(RedisBroker {
            commands,
            subscriber: Arc::new(subscriber),
            dropped: Arc::new(tokio::sync::Notify::new()),
            pushes: std::sync::Mutex::new(Some(pushes)),
            prefix: prefix.to_owned(),
            publish: redis::Script::new(PUBLISH),
            history: redis::Script::new(HISTORY),
            renew: redis::Script::new(RENEW),
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

/// Hands what arrives on the topics to the handler, in the order it arrives; wakes
/// [`watch_subscriber`] when the connection dropped.
async fn deliver(
    prefix: String,
    handler: Arc<dyn BrokerHandler>,
    mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    dropped: Arc<tokio::sync::Notify>,
) {
    let topic_prefix = engine::topic_prefix(&prefix);
    let control_topic = engine::control_topic(&prefix);
    while let Some(push) = pushes.recv().await {
        if push.kind == PushKind::Disconnection {
            handler.interrupted();
            dropped.notify_one();
            continue;
        }
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
    } // The broker is gone: so is its watch.
    dropped.notify_one();
}

/// Brings the subscriber connection back each time it drops (the connection manager makes
/// one attempt per command, so this keeps sending one until Redis answers; the
/// subscriptions are made again on the new connection before it answers), then tells the
/// handler. Ends with the broker.
async fn watch_subscriber(
    subscriber: std::sync::Weak<ConnectionManager>,
    dropped: Arc<tokio::sync::Notify>,
    handler: Arc<dyn BrokerHandler>,
) {
    loop {
        dropped.notified().await;
        tracing::warn!("lost the Redis connection that brings publications: reconnecting");
        let mut delay = Duration::from_millis(50);
        loop {
            let Some(subscriber) = subscriber.upgrade() else {
                return;
            };
            let mut connection = (*subscriber).clone();
            drop(subscriber);
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
            if pong.is_ok() {
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RESUBSCRIBE_EVERY);
        }
        tracing::info!("reconnected to Redis: looking for publications missed meanwhile");
        handler.resumed(IN_FLIGHT);
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
        tokio::spawn(deliver(
            self.prefix.clone(),
            handler.clone(),
            pushes,
            self.dropped.clone(),
        ));
        tokio::spawn(watch_subscriber(
            Arc::downgrade(&self.subscriber),
            self.dropped.clone(),
            handler,
        ));
        (*self.subscriber)
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
        (*self.subscriber)
            .clone()
            .subscribe(self.topic(channel))
            .await
            .map_err(failed)
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        (*self.subscriber)
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
        let (since, limit) = hubbub_core::engine::history_range(filter.since, filter.limit);
        let (epoch, offset, entries): (String, u64, Vec<Vec<u8>>) = self
            .history
            .key(meta)
            .key(list)
            .arg(new_epoch())
            .arg(options.history_ttl.as_millis() as u64)
            .arg(since)
            .arg(limit)
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
        Ok(HistoryResult {
            position: StreamPosition { epoch, offset },
            messages: hubbub_core::engine::select_history(kept, filter.since, filter.limit),
        })
    }

    async fn renew_epoch(
        &self,
        channel: &str,
        epoch: &str,
        options: &StreamOptions,
    ) -> Result<StreamPosition, EngineError> {
        let (meta, _) = self.stream_keys(channel);
        let (epoch, offset): (String, u64) = self
            .renew
            .key(meta)
            .arg(epoch)
            .arg(new_epoch())
            .arg(options.history_ttl.as_millis() as u64)
            .invoke_async(&mut self.commands.clone())
            .await
            .map_err(failed)?;
        Ok(StreamPosition { epoch, offset })
    }
}
