//! The Redis transport: with a `redis://` URL, calls are made straight in the hubs' Redis
//! engine rather than through a hub's HTTP API.
//!
//! Everything about the engine's layout is hubbub-core's (`engine`: the keys, topics, Lua
//! scripts and lines; `namespace`: what each channel keeps; `shard`: which of several Redis
//! instances a channel lives on), the code the hubs run: a publication made here runs the
//! hubs' own publish script on the hubs' own keys, so its offset, epoch and place in the
//! history are those a publication through a hub gets, and every subscriber on every node
//! receives it.
//!
//! Where the hubs' `redis_url` lists several instances, the publisher is given the same
//! list, in the same order: what is about a channel goes to the channel's instance, what
//! is about the cluster (the messages between nodes, the list of live nodes) to the first.
//!
//! - `publish`, `broadcast`: the channel's topic, through the publish script where its
//!   namespace keeps history.
//! - `history`: the hubs' history script.
//! - `direct`, `disconnect`, `channels`: a request on the control topic, which every node
//!   answers (as a node does for its own HTTP API), waiting at most
//!   [`CLUSTER_WAIT`](hubbub_core::engine::CLUSTER_WAIT) for their replies.
//! - `info`, `presence`, `presence_stats`: not through Redis (`UNKNOWN_COMMAND`).
//!
//! The hubs' `max_message_size` is a limit on their HTTP bodies and WebSocket frames and
//! is not applied here.

use crate::client::Publisher;
use crate::endpoint::{shown_url, ConfigError};
use crate::error::{Cause, Error};
use futures_util::StreamExt;
use hubbub_core::api::{
    BroadcastPublished, BroadcastRequest, ChannelStats, Channels, DirectDelivered, DirectRequest,
    DisconnectRequest, Disconnected, HistoryPage, PublishRequest, Published, Request,
};
use hubbub_core::engine::{self, Control, Line};
use hubbub_core::namespace::{self, Namespace, NamespaceSpec};
use hubbub_core::protocol::{DirectMessage, Message, RawJson, ServerFrame};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

static PUBLISH: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(engine::PUBLISH_SCRIPT));
static HISTORY: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(engine::HISTORY_SCRIPT));
static NODES: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(engine::NODES_SCRIPT));

/// The hubs' Redis, and what the publisher must know of the hubs' config to write into it
/// as they do.
pub(crate) struct RedisTarget {
    /// The hubs' Redis instances, in the hubs' order (one, unless they shard).
    shards: Vec<Shard>,
    /// The hubs' `redis_prefix`.
    pub(crate) prefix: String,
    /// The hubs' namespaces, checked.
    pub(crate) namespaces: Vec<Namespace>,
}

/// One Redis instance of the hubs.
struct Shard {
    client: redis::Client,
    /// The URL as given, password included: the pool's key, never shown.
    url: String,
}

impl RedisTarget {
    /// Checks the Redis URL, or the comma-separated list of them (without connecting), the
    /// prefix and the namespaces.
    pub(crate) fn new(
        urls: &str,
        namespaces: Option<Vec<NamespaceSpec>>,
        prefix: Option<String>,
    ) -> Result<RedisTarget, ConfigError> {
        let mut shards = Vec::new();
        for url in urls.split(',').map(str::trim) {
            let shown = shown_url(url);
            if let Err(why) = engine::check_redis_url(url) {
                return Err(ConfigError::new(format!("bad Redis URL {shown:?}: {why}")));
            }
            if shards.iter().any(|s: &Shard| s.url == url) {
                return Err(ConfigError::new(format!(
                    "{shown:?} is listed twice: list the hubs' redis_url as they do"
                )));
            }
            // RESP3, as the hubs' connections: Redis tells a connection at once that it
            // goes away, and the next call makes a new one.
            let client = redis::Client::open(engine::with_resp3(url))
                .map_err(|e| ConfigError::new(format!("bad Redis URL {shown:?}: {e}")))?;
            shards.push(Shard {
                client,
                url: url.to_owned(),
            });
        }
        let prefix = prefix.unwrap_or_else(|| engine::DEFAULT_PREFIX.to_owned());
        engine::check_prefix(&prefix)
            .map_err(|e| ConfigError::new(format!("bad redis_prefix {prefix:?}: {e}")))?;
        let Some(specs) = namespaces else {
            return Err(ConfigError::new(
                "publishing through Redis needs the hubs' namespaces (the `namespaces` of \
                 their config; an empty list where no channel keeps history), to keep each \
                 channel's history as the hubs do",
            ));
        };
        let namespaces = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                Namespace::from_spec(spec)
                    .map_err(|e| ConfigError::new(format!("namespaces[{i}].{e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisTarget {
            shards,
            prefix,
            namespaces,
        })
    }

    /// How many Redis instances the channels are spread over.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The instance `channel` lives on, as the hubs pick it.
    fn shard_of(&self, channel: &str) -> &Shard {
        &self.shards[hubbub_core::shard::index(channel, self.shards.len())]
    }

    /// The instance of what is about the cluster: the messages between nodes, the nodes.
    fn first(&self) -> &Shard {
        &self.shards[0]
    }

    /// A call of `publisher`, whose endpoint this is.
    pub(crate) fn call<'a>(&'a self, publisher: &'a Publisher) -> Call<'a> {
        Call {
            target: self,
            url: publisher.url(),
            timeout: publisher.endpoint().timeout(),
            pool: &publisher.connections().redis,
            started: tokio::time::Instant::now(),
        }
    }

    fn stream(&self, channel: &str) -> &namespace::StreamOptions {
        &namespace::find(&self.namespaces, channel).stream
    }
}

/// The Redis connections of one [`Connections`](crate::Connections): one multiplexed
/// connection per Redis (and time limit), made on first use, made again by itself when
/// Redis goes away. A connection belongs to the runtime that made it, as the pool does.
#[derive(Clone, Default)]
pub(crate) struct Pool(Arc<Mutex<HashMap<(String, Duration), ConnectionManager>>>);

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Pool({n} Redis connection(s))")
    }
}

impl Pool {
    /// The connection to `target`, made (lazily: it connects on its first command) where
    /// there is none. Called on the runtime the connection is to belong to.
    fn get(
        &self,
        shard: &Shard,
        timeout: Duration,
    ) -> Result<ConnectionManager, redis::RedisError> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (shard.url.clone(), timeout);
        if let Some(connection) = pool.get(&key) {
            return Ok(connection.clone());
        }
        // One attempt per call: a Redis that is down is UNAVAILABLE at once, and the next
        // call tries again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(shard.client.clone(), config)?;
        pool.insert(key, connection.clone());
        Ok(connection)
    }

    /// Forgets the connection to `shard` (it could not connect, or broke), so that the
    /// next call makes a new one rather than wait on the one that failed.
    fn forget(&self, shard: &Shard, timeout: Duration) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.remove(&(shard.url.clone(), timeout));
    }
}

/// One call through Redis.
pub(crate) struct Call<'a> {
    target: &'a RedisTarget,
    /// The URL as shown.
    url: &'a str,
    timeout: Duration,
    pool: &'a Pool,
    /// When the call began: it ends within its time limit from then.
    started: tokio::time::Instant,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new stream's epoch, as a hub makes one.
fn new_epoch() -> String {
    let mut random = [0; 6];
    random.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..6]);
    engine::epoch(random)
}

impl Call<'_> {
    /// Checks a request as the hub checks its body: the same code, on the same JSON.
    fn checked<R: Request + Serialize>(&self, request: &R) -> Result<R, Error> {
        let body = serde_json::to_vec(request).map_err(|e| {
            Error::Invalid(hubbub_core::Error::InvalidPayload.because(e.to_string()))
        })?;
        R::from_body(&body).map_err(|r| self.declined(r))
    }

    fn declined(&self, rejection: hubbub_core::Rejection) -> Error {
        Error::Declined {
            rejection,
            url: self.url.to_owned(),
        }
    }

    fn unavailable(&self, cause: Cause) -> Error {
        Error::Unavailable {
            url: self.url.to_owned(),
            cause,
        }
    }

    /// A failure of Redis `shard`.
    fn failed(&self, shard: &Shard, e: redis::RedisError) -> Error {
        let cause = if e.is_timeout() {
            Cause::Timeout(self.timeout)
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            self.pool.forget(shard, self.timeout);
            Cause::Unreachable(e.to_string())
        } else {
            Cause::Redis(e.to_string())
        };
        self.unavailable(cause)
    }

    /// Runs `call` within the time limit.
    async fn run<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(self.unavailable(Cause::Timeout(self.timeout))))
    }

    /// The pool's connection to Redis `shard`.
    async fn connection(&self, shard: &Shard) -> Result<ConnectionManager, Error> {
        // A connection Redis closed while the runtime slept (the blocking publisher's
        // runtime runs only during its calls) is found out by the connection's own task,
        // which tells the manager, which starts a new one: let both run first, so that a
        // Redis that restarted meanwhile costs no failed call.
        tokio::task::yield_now().await;
        self.pool
            .get(shard, self.timeout)
            .map_err(|e| self.failed(shard, e))
    }

    /// Publishes one message as a hub does (`Broker::publish` of the Redis engine): a plain
    /// `PUBLISH` where the channel keeps no history, else the publish script. Answers the
    /// publication's offset and epoch where there is a stream.
    async fn publish_one(
        &self,
        channel: &str,
        event: String,
        data: RawJson,
    ) -> Result<Option<(u64, String)>, Error> {
        let shard = self.target.shard_of(channel);
        let mut redis = self.connection(shard).await?;
        let prefix = &self.target.prefix;
        let message = Message {
            channel: channel.to_owned(),
            event,
            data,
            offset: None,
            from: None,
        };
        let json = engine::message_json(&message);
        let topic = engine::topic(prefix, channel);
        let stream = self.target.stream(channel);
        if !stream.keeps_history() {
            let _: i64 = redis
                .publish(topic, engine::publication_line(&json))
                .await
                .map_err(|e| self.failed(shard, e))?;
            return Ok(None);
        }
        let (meta, list) = engine::stream_keys(prefix, channel);
        let (offset, epoch): (u64, String) = PUBLISH
            .key(meta)
            .key(list)
            .arg(topic)
            .arg(json)
            .arg(stream.history_size)
            .arg(stream.history_ttl.as_millis() as u64)
            .arg(new_epoch())
            .invoke_async(&mut redis)
            .await
            .map_err(|e| self.failed(shard, e))?;
        Ok(Some((offset, epoch)))
    }

    pub(crate) async fn publish(&self, request: PublishRequest) -> Result<Published, Error> {
        let request = self.checked(&request)?;
        self.run(async {
            let position = self
                .publish_one(&request.channel, request.event, request.data)
                .await?;
            let (offset, epoch) = position.unzip();
            Ok(Published {
                published: request.channel,
                offset,
                epoch,
            })
        })
        .await
    }

    pub(crate) async fn broadcast(
        &self,
        request: BroadcastRequest,
    ) -> Result<BroadcastPublished, Error> {
        let mut request = self.checked(&request)?;
        // A channel named twice is published to once, as a hub does.
        let mut seen = std::collections::HashSet::new();
        request.channels.retain(|c| seen.insert(c.clone()));
        self.run(async {
            for channel in &request.channels {
                self.publish_one(channel, request.event.clone(), request.data.clone())
                    .await?;
            }
            Ok(BroadcastPublished {
                published: request.channels,
            })
        })
        .await
    }

    pub(crate) async fn history(
        &self,
        channel: &str,
        limit: Option<u64>,
        since: Option<u64>,
    ) -> Result<HistoryPage, Error> {
        hubbub_core::channel::validate(channel).map_err(|r| self.declined(r))?;
        let stream = *self.target.stream(channel);
        if !stream.keeps_history() {
            return Err(
                self.declined(hubbub_core::Error::InvalidChannel.because(format!(
                    "{channel:?} keeps no history (no namespace with history_size matches it)"
                ))),
            );
        }
        self.run(async {
            let shard = self.target.shard_of(channel);
            let mut redis = self.connection(shard).await?;
            let (meta, list) = engine::stream_keys(&self.target.prefix, channel);
            let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let (since_arg, limit_arg) = engine::history_range(since, limit);
            let (epoch, offset, lines): (String, u64, Vec<Vec<u8>>) = HISTORY
                .key(meta)
                .key(list)
                .arg(new_epoch())
                .arg(stream.history_ttl.as_millis() as u64)
                .arg(since_arg)
                .arg(limit_arg)
                .invoke_async(&mut redis)
                .await
                .map_err(|e| self.failed(shard, e))?;
            let kept = lines
                .iter()
                .filter_map(|line| match engine::read_line(line) {
                    Some(Line::Message(message)) => Some(message),
                    _ => None,
                })
                .collect();
            Ok(HistoryPage {
                channel: channel.to_owned(),
                epoch,
                offset,
                messages: engine::select_history(kept, since, limit),
            })
        })
        .await
    }

    pub(crate) async fn direct(&self, request: DirectRequest) -> Result<DirectDelivered, Error> {
        let request = self.checked(&request)?;
        let target = request.target().map_err(|r| self.declined(r))?;
        let frame = ServerFrame::DirectMessage(DirectMessage {
            event: request.event,
            data: request.data,
            from: None,
        })
        .to_json();
        let replies = self
            .run(self.ask_every_node(Control::Direct {
                request: request_id(),
                target: target.clone(),
                frame,
            }))
            .await?;
        let delivered = replies.iter().map(|r| r.0).sum();
        if delivered == 0 {
            return Err(self.declined(
                hubbub_core::Error::InvalidClient
                    .because(format!("nobody matched {:?}", target.name())),
            ));
        }
        Ok(DirectDelivered {
            direct_sent: target.name().to_owned(),
            delivered,
        })
    }

    pub(crate) async fn disconnect(
        &self,
        request: DisconnectRequest,
    ) -> Result<Disconnected, Error> {
        let request = self.checked(&request)?;
        let target = request.target().map_err(|r| self.declined(r))?;
        let replies = self
            .run(self.ask_every_node(Control::Disconnect {
                request: request_id(),
                target,
            }))
            .await?;
        Ok(Disconnected {
            disconnected: replies.iter().map(|r| r.0).sum(),
        })
    }

    pub(crate) async fn channels(&self) -> Result<Channels, Error> {
        let replies = self
            .run(self.ask_every_node(Control::Channels {
                request: request_id(),
            }))
            .await?;
        let mut channels: BTreeMap<String, ChannelStats> = BTreeMap::new();
        for (_, counts) in replies {
            for (channel, n) in counts.unwrap_or_default() {
                channels
                    .entry(channel)
                    .or_insert(ChannelStats { subscribers: 0 })
                    .subscribers += n;
            }
        }
        Ok(Channels { channels })
    }

    /// Sends a request to every live node on the control topic, as a node does for its own
    /// HTTP API, and gathers their replies (count, channels) for at most
    /// [`engine::CLUSTER_WAIT`]: a node that died without leaving the node list yet is
    /// not waited for longer.
    async fn ask_every_node(
        &self,
        request: Control,
    ) -> Result<Vec<(usize, Option<BTreeMap<String, usize>>)>, Error> {
        let prefix = &self.target.prefix;
        // What is about the cluster lives on the first instance.
        let shard = self.target.first();
        let mut redis = self.connection(shard).await?;
        let (nodes, expiries) = engine::nodes_keys(prefix);
        let nodes: Vec<String> = NODES
            .key(nodes)
            .key(expiries)
            .arg(now_ms())
            .invoke_async(&mut redis)
            .await
            .map_err(|e| self.failed(shard, e))?;
        let expected = engine::read_nodes(&nodes).len();
        if expected == 0 {
            // No hub is running: nobody is connected.
            return Ok(Vec::new());
        }
        // The replies come on the control topic: listen before asking.
        let control_topic = engine::control_topic(prefix);
        let mut replies_topic = shard
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| self.failed(shard, e))?;
        replies_topic
            .subscribe(&control_topic)
            .await
            .map_err(|e| self.failed(shard, e))?;
        let _: i64 = redis
            .publish(&control_topic, engine::control_line(&request))
            .await
            .map_err(|e| self.failed(shard, e))?;
        let mut replies = Vec::new();
        let mut messages = replies_topic.on_message();
        // Within the call's own time limit, so that a short one answers with the replies
        // gathered rather than with a timeout.
        let deadline = (tokio::time::Instant::now() + engine::CLUSTER_WAIT)
            .min(self.started + self.timeout.mul_f64(0.9));
        while replies.len() < expected {
            let Ok(Some(message)) = tokio::time::timeout_at(deadline, messages.next()).await else {
                break;
            };
            if let Some(Line::Control(Control::Reply {
                request: answered,
                count,
                channels,
                ..
            })) = engine::read_line(message.get_payload_bytes())
            {
                if answered == request.request() {
                    replies.push((count, channels));
                }
            }
        }
        Ok(replies)
    }

    /// The refusal of a call Redis cannot answer.
    pub(crate) fn not_through_redis(&self, call: &str) -> Error {
        self.declined(hubbub_core::Error::UnknownCommand.because(format!(
            "{call} is not available through Redis: call a hub's HTTP API for it"
        )))
    }
}

/// A request's id, as a node makes one.
fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
