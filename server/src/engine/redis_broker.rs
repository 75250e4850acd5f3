//! The broker of the Redis engine: many hubbub nodes share one Redis. A publication goes
//! out on the channel's Redis topic, which a node listens to only while it has local
//! subscribers; where the channel keeps history, one Lua script takes the next offset,
//! appends to the stream and publishes, so that the offsets and the order subscribers see
//! are one and the same on every node.
//!
//! Keys, under the configured prefix `P`:
//! - `P:t:<channel>`: the channel's pub/sub topic;
//! - `P:m:<channel>`: the stream's epoch and last offset (a hash);
//! - `P:h:<channel>`: the stream's kept messages (a list), both expiring `history_ttl`
//!   after the last publication;
//! - `P:control`: the topic every node listens to, for messages between nodes;
//! - `P:nodes`, `P:nodes:expiry`: the live nodes and when each stops counting as alive.
//!
//! What travels on a topic (and sits in a stream) is one line of text: `m<offset> <json>`
//! for a publication (offset 0 where there is no stream), `j<json>` and `l<json>` for a
//! join and a leave.

use super::{
    new_epoch, Broker, BrokerHandler, Control, EngineError, HistoryFilter, HistoryResult,
    StreamOptions,
};
use async_trait::async_trait;
use hubbub_core::api::NodeInfo;
use hubbub_core::protocol::{Message, PresentClient, StreamPosition};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, PushKind, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Appends to a stream and publishes, atomically: KEYS meta, list; ARGV topic, message
/// JSON, history size, ttl in ms, an epoch for a new stream.
const PUBLISH: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local payload = 'm' .. offset .. ' ' .. ARGV[2]
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], payload)
return {offset, epoch}
"#;

/// A stream's position and kept messages, making the stream where there is none: KEYS
/// meta, list; ARGV an epoch for a new stream, ttl in ms.
const HISTORY: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
return {epoch, offset, redis.call('LRANGE', KEYS[2], 0, -1)}
"#;

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

/// Drops the nodes that stopped announcing themselves, then lists the rest: KEYS nodes,
/// expiries; ARGV now in ms.
const NODES: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
end
return redis.call('HVALS', KEYS[1])
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
        format!("{}:control", self.prefix)
    }

    fn topic(&self, channel: &str) -> String {
        format!("{}:t:{channel}", self.prefix)
    }

    fn stream_keys(&self, channel: &str) -> (String, String) {
        (
            format!("{}:m:{channel}", self.prefix),
            format!("{}:h:{channel}", self.prefix),
        )
    }
}

/// Adds `protocol=resp3` to a Redis URL that names no protocol.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// Reads what travels on a topic back into what the handler is given.
enum Payload {
    Message(Message),
    Join(PresentClient),
    Leave(PresentClient),
    Control(Control),
}

fn decode(payload: &[u8]) -> Option<Payload> {
    let text = std::str::from_utf8(payload).ok()?;
    match text.as_bytes().first()? {
        b'm' => {
            let (offset, json) = text[1..].split_once(' ')?;
            let offset: u64 = offset.parse().ok()?;
            let mut message: Message = serde_json::from_str(json).ok()?;
            message.offset = (offset > 0).then_some(offset);
            Some(Payload::Message(message))
        }
        b'j' => serde_json::from_str(&text[1..]).ok().map(Payload::Join),
        b'l' => serde_json::from_str(&text[1..]).ok().map(Payload::Leave),
        b'c' => serde_json::from_str(&text[1..]).ok().map(Payload::Control),
        _ => None,
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
    let topic_prefix = format!("{prefix}:t:");
    let control_topic = format!("{prefix}:control");
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
        let json = serde_json::to_string(&message).expect("messages serialize");
        let mut redis = self.commands.clone();
        if !options.keeps_history() {
            let _: i64 = redis
                .publish(self.topic(channel), format!("m0 {json}"))
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
        let json = serde_json::to_string(client).expect("clients serialize");
        let mut redis = self.commands.clone();
        let _: i64 = redis
            .publish(self.topic(channel), format!("j{json}"))
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn publish_leave(
        &self,
        channel: &str,
        client: &PresentClient,
    ) -> Result<(), EngineError> {
        let json = serde_json::to_string(client).expect("clients serialize");
        let mut redis = self.commands.clone();
        let _: i64 = redis
            .publish(self.topic(channel), format!("l{json}"))
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
        let json = serde_json::to_string(control).expect("control messages serialize");
        let mut redis = self.commands.clone();
        let _: i64 = redis
            .publish(self.control_topic(), format!("c{json}"))
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn announce(&self, node: &NodeInfo, ttl: Duration) -> Result<(), EngineError> {
        let json = serde_json::to_string(node).expect("node figures serialize");
        let nodes = format!("{}:nodes", self.prefix);
        let expiries = format!("{}:nodes:expiry", self.prefix);
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
        let _: () = redis::pipe()
            .atomic()
            .hdel(format!("{}:nodes", self.prefix), node_id)
            .ignore()
            .zrem(format!("{}:nodes:expiry", self.prefix), node_id)
            .ignore()
            .query_async(&mut self.commands.clone())
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        let values: Vec<String> = self
            .nodes
            .key(format!("{}:nodes", self.prefix))
            .key(format!("{}:nodes:expiry", self.prefix))
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
