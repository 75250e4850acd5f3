//! `Publisher`: hubbub-publisher's async publisher (docs/protocol.md, "The HTTP API") as
//! Promise-returning methods; with a `redis://` URL, hubbub-publisher's Redis transport
//! (docs/node.md, "Publishing through Redis").
//!
//! Each method converts its arguments on the JavaScript thread, runs the call on napi's
//! tokio runtime, and converts the answer (or the failure, with its `.code`) back on the
//! JavaScript thread. A publisher's pool keeps connections alive, so many calls can be in
//! flight at once, each on a pooled connection when one is free.

use crate::error;
use hubbub_core::api::{self, Target};
use hubbub_core::namespace::NamespaceSpec;
use hubbub_core::protocol::{self, RawJson};
use hubbub_publisher::Options;
use napi::bindgen_prelude::{
    sys, Either, Function, JsObjectValue, JsValue, Null, Object, PromiseRaw, ToNapiValue, Unknown,
};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Where the hub is and how to talk to it.
#[napi(object)]
#[derive(Default)]
pub struct PublisherOptions {
    /// The hub's base URL. Defaults to `HUBBUB_URL`, then `http://127.0.0.1:9772` (an empty
    /// `HUBBUB_URL` counts as unset). A `redis://` URL publishes straight
    /// into the Redis the hubs share (`engine = "redis"`), with no HTTP hop.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <apiKey>`. Defaults to `HUBBUB_API_KEY`, then none.
    pub api_key: Option<String>,
    /// How long one call may take, in milliseconds (connecting included), more than zero.
    /// Default 5000.
    pub timeout: Option<u32>,
    /// With a `redis://` URL (and required with one): the hubs' namespaces, as their config
    /// writes them, e.g. `[{ pattern: 'room:*', history_size: 100, history_ttl: '10m' }]`
    /// (`[]` where no channel keeps history), so that each channel's history is kept as the
    /// hubs keep it. An unknown key is refused.
    #[napi(ts_type = "Namespace[]")]
    pub namespaces: Option<serde_json::Value>,
    /// With a `redis://` URL: the hubs' `redis_prefix`. Default `'hubbub'`.
    pub redis_prefix: Option<String>,
}

/// One of the hubs' namespaces, with the keys (and spelling) of their config: what the
/// channels matching `pattern` keep. A publisher through Redis is given the hubs' own.
///
/// The type of `PublisherOptions.namespaces`'s entries, for TypeScript: the entries
/// themselves are read by core from their JSON (which refuses unknown keys, as the hubs'
/// config does), so this struct is never made.
#[napi(object)]
#[allow(dead_code)]
pub struct Namespace {
    /// The channels it is for: `*` matches any run of characters.
    pub pattern: String,
    /// Messages kept per channel (0 to 100000); none when left out.
    #[napi(js_name = "history_size")]
    pub history_size: Option<u32>,
    /// How long a stream lives after its last publication, e.g. `'10m'`; 10 minutes when
    /// left out.
    #[napi(js_name = "history_ttl")]
    pub history_ttl: Option<String>,
    pub recover: Option<bool>,
    pub presence: Option<bool>,
    #[napi(js_name = "join_leave")]
    pub join_leave: Option<bool>,
    #[napi(js_name = "subscribe_hook")]
    pub subscribe_hook: Option<bool>,
}

/// The event name of a publication.
#[napi(object)]
pub struct PublishOptions {
    /// Defaults to `"message"`.
    pub event: Option<String>,
}

/// Whom a direct message is for (exactly one of `client` and `user`), and its event.
#[napi(object)]
pub struct DirectOptions {
    /// A connection's client id, as in its `connected` frame.
    pub client: Option<String>,
    /// A user (a token's `sub` or a configured user's name): every connection of theirs.
    pub user: Option<String>,
    /// Defaults to `"message"`.
    pub event: Option<String>,
}

/// Whom to disconnect: exactly one of `client` and `user`.
#[napi(object)]
pub struct DisconnectOptions {
    pub client: Option<String>,
    pub user: Option<String>,
}

/// The hub's answer to `publish`.
#[napi(object)]
pub struct Published {
    /// The channel published to.
    pub published: String,
    /// The publication's offset in the channel's stream, where the channel keeps history.
    pub offset: Option<i64>,
    /// The epoch of the channel's stream, where the channel keeps history.
    pub epoch: Option<String>,
}

/// Which messages `history` asks for.
#[napi(object)]
#[derive(Default)]
pub struct HistoryOptions {
    /// At most this many messages (whole number, 0 or more; 0 gives just the position).
    /// Without `since`, the newest ones. Default: every message kept.
    pub limit: Option<f64>,
    /// Only the messages after this offset (whole number, 0 or more), oldest first.
    pub since: Option<f64>,
}

/// Application data the hub gave back (a message's `data`, a client's `info`), handed to
/// JavaScript as `JSON.parse` reads it: the very value a subscriber decoding the frame
/// gets, numbers included.
pub struct JsonData(RawJson);

impl ToNapiValue for JsonData {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(env);
        let json: Object = env.get_global()?.get_named_property("JSON")?;
        let parse: Function<String, Unknown> = json.get_named_property("parse")?;
        Ok(parse.call(val.0.get().to_owned())?.raw())
    }
}

/// One message of a history page, as its `message` frame has it.
#[napi(object, object_from_js = false)]
pub struct HistoryMessage {
    pub channel: String,
    pub event: String,
    #[napi(ts_type = "unknown")]
    pub data: JsonData,
    /// Its place in the channel's stream.
    pub offset: Option<i64>,
    /// The sender, where a client (not the HTTP API) broadcast it.
    pub from: Option<String>,
}

/// The hub's answer to `history`: the channel's position (epoch and last offset) and the
/// messages asked for, oldest first.
#[napi(object, object_from_js = false)]
pub struct HistoryPage {
    pub channel: String,
    pub epoch: String,
    pub offset: i64,
    pub messages: Vec<HistoryMessage>,
}

/// One connection in the answer to `presence`.
#[napi(object, object_from_js = false)]
pub struct PresentClient {
    /// The connection's client id.
    pub client: String,
    /// The user it is logged in as, or `null` for an anonymous connection.
    #[napi(ts_type = "string | null")]
    pub user: Either<String, Null>,
    /// The token's or configured user's `info`, where it has one.
    #[napi(ts_type = "Record<string, unknown>")]
    pub info: Option<JsonData>,
}

/// The hub's answer to `presence`: every connection subscribed to the channel.
#[napi(object, object_from_js = false)]
pub struct Presence {
    pub channel: String,
    pub clients: Vec<PresentClient>,
}

/// The hub's answer to `presenceStats`.
#[napi(object)]
pub struct PresenceStats {
    pub channel: String,
    /// Connections subscribed.
    pub clients: u32,
    /// Distinct users among them (anonymous connections are not users).
    pub users: u32,
}

/// The hub's answer to `broadcast`.
#[napi(object)]
pub struct BroadcastPublished {
    /// The channels published to.
    pub published: Vec<String>,
}

/// The hub's answer to `direct`.
#[napi(object)]
pub struct DirectDelivered {
    /// The client id or user the message was for.
    pub direct_sent: String,
    /// How many connections received it.
    pub delivered: u32,
}

/// The hub's answer to `disconnect`.
#[napi(object)]
pub struct Disconnected {
    /// How many connections were closed.
    pub disconnected: u32,
}

/// One channel in the answer to `channels`.
#[napi(object)]
pub struct ChannelStats {
    pub subscribers: u32,
}

/// The hub's answer to `channels`: every channel with at least one subscriber.
#[napi(object)]
pub struct Channels {
    pub channels: HashMap<String, ChannelStats>,
}

/// One node of the hub in the answer to `info`.
#[napi(object)]
pub struct NodeInfo {
    pub id: String,
    /// Open WebSocket connections on this node.
    pub connections: u32,
    /// Seconds since the node started.
    #[napi(js_name = "uptime_s")]
    pub uptime_s: i64,
}

/// The hub's answer to `info`.
#[napi(object)]
pub struct Info {
    pub version: String,
    /// Open WebSocket connections.
    pub connections: u32,
    /// Channels with at least one subscriber.
    pub channels: u32,
    /// Seconds since the hub started.
    #[napi(js_name = "uptime_s")]
    pub uptime_s: i64,
    /// Every live node of the hub (one with the embedded engine).
    pub nodes: Vec<NodeInfo>,
}

/// Publishes to a hubbub hub over its HTTP API.
#[napi]
pub struct Publisher {
    inner: hubbub_publisher::Publisher,
}

#[napi]
impl Publisher {
    /// A publisher for the hub at `options.url`. Nothing is sent until the first call.
    #[napi(constructor)]
    pub fn new(options: Option<PublisherOptions>) -> Result<Publisher> {
        let options = options.unwrap_or_default();
        // Read by core, as the hubs read their config.
        let namespaces = options
            .namespaces
            .map(serde_json::from_value::<Vec<NamespaceSpec>>)
            .transpose()
            .map_err(|e| error::invalid_arg(format!("bad namespaces: {e}")))?;
        let inner = hubbub_publisher::Publisher::new(Options {
            url: options.url,
            api_key: options.api_key,
            timeout: options.timeout.map(|ms| Duration::from_millis(ms.into())),
            namespaces,
            redis_prefix: options.redis_prefix,
        })
        .map_err(|e| error::invalid_arg(e.to_string()))?;
        Ok(Publisher { inner })
    }

    /// The hub's base URL (a Redis URL without its password).
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.url().to_owned()
    }

    /// Publishes `data` (any JSON value) on `channel` with `options.event` (default
    /// `"message"`). Publishing to a channel nobody is subscribed to succeeds.
    #[napi(ts_return_type = "Promise<Published>")]
    pub fn publish<'env>(
        &self,
        env: &'env Env,
        channel: String,
        #[napi(ts_arg_type = "unknown")] data: Unknown,
        options: Option<PublishOptions>,
    ) -> Result<PromiseRaw<'env, Published>> {
        let data = json(env, data)?;
        let event = event(options.and_then(|o| o.event));
        let p = self.inner.clone();
        settle(
            env,
            async move { p.publish(channel, event, &data).await },
            |a| Published {
                published: a.published,
                offset: a.offset.map(offset),
                epoch: a.epoch,
            },
        )
    }

    /// Publishes `data` on every channel of `channels` at once.
    #[napi(ts_return_type = "Promise<BroadcastPublished>")]
    pub fn broadcast<'env>(
        &self,
        env: &'env Env,
        channels: Vec<String>,
        #[napi(ts_arg_type = "unknown")] data: Unknown,
        options: Option<PublishOptions>,
    ) -> Result<PromiseRaw<'env, BroadcastPublished>> {
        let data = json(env, data)?;
        let event = event(options.and_then(|o| o.event));
        let p = self.inner.clone();
        settle(
            env,
            async move { p.broadcast(channels, event, &data).await },
            |a| BroadcastPublished {
                published: a.published,
            },
        )
    }

    /// Sends `data` to one connection (`options.client`) or to every connection of one user
    /// (`options.user`). Rejects with `INVALID_CLIENT` when nobody matched.
    #[napi(ts_return_type = "Promise<DirectDelivered>")]
    pub fn direct<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "unknown")] data: Unknown,
        options: DirectOptions,
    ) -> Result<PromiseRaw<'env, DirectDelivered>> {
        let data = json(env, data)?;
        let target = target(env, options.client, options.user)?;
        let event = event(options.event);
        let p = self.inner.clone();
        settle(
            env,
            async move { p.direct(target, event, &data).await },
            |a| DirectDelivered {
                direct_sent: a.direct_sent,
                delivered: count(a.delivered),
            },
        )
    }

    /// Closes one connection (`options.client`) or every connection of one user
    /// (`options.user`).
    #[napi(ts_return_type = "Promise<Disconnected>")]
    pub fn disconnect<'env>(
        &self,
        env: &'env Env,
        options: DisconnectOptions,
    ) -> Result<PromiseRaw<'env, Disconnected>> {
        let target = target(env, options.client, options.user)?;
        let p = self.inner.clone();
        settle(env, async move { p.disconnect(target).await }, |a| {
            Disconnected {
                disconnected: count(a.disconnected),
            }
        })
    }

    /// Every channel with at least one subscriber, and how many it has.
    #[napi(ts_return_type = "Promise<Channels>")]
    pub fn channels<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Channels>> {
        let p = self.inner.clone();
        settle(env, async move { p.channels().await }, |a| Channels {
            channels: a
                .channels
                .into_iter()
                .map(|(name, stats)| {
                    let subscribers = count(stats.subscribers);
                    (name, ChannelStats { subscribers })
                })
                .collect(),
        })
    }

    /// The hub's version, connection and channel counts, and uptime.
    #[napi(ts_return_type = "Promise<Info>")]
    pub fn info<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Info>> {
        let p = self.inner.clone();
        settle(env, async move { p.info().await }, |a| Info {
            version: a.version,
            connections: count(a.connections),
            channels: count(a.channels),
            uptime_s: a.uptime_s as i64,
            nodes: a
                .nodes
                .into_iter()
                .map(|n| NodeInfo {
                    id: n.id,
                    connections: count(n.connections),
                    uptime_s: n.uptime_s as i64,
                })
                .collect(),
        })
    }

    /// The channel's position and the messages it keeps, oldest first. Without
    /// `options.since`, the newest `options.limit` messages; with it, the first `limit`
    /// after that offset; without `limit`, every message kept; `limit: 0` gives just the
    /// position. Rejects with `INVALID_CHANNEL` where the channel keeps no history.
    #[napi(ts_return_type = "Promise<HistoryPage>")]
    pub fn history<'env>(
        &self,
        env: &'env Env,
        channel: String,
        options: Option<HistoryOptions>,
    ) -> Result<PromiseRaw<'env, HistoryPage>> {
        let options = options.unwrap_or_default();
        let limit = whole("limit", options.limit)?;
        let since = whole("since", options.since)?;
        let p = self.inner.clone();
        settle(
            env,
            async move { p.history(&channel, limit, since).await },
            |page| HistoryPage {
                channel: page.channel,
                epoch: page.epoch,
                offset: offset(page.offset),
                messages: page.messages.into_iter().map(history_message).collect(),
            },
        )
    }

    /// Every connection subscribed to `channel`, with its user and info. Rejects with
    /// `INVALID_CHANNEL` where the channel has no presence.
    #[napi(ts_return_type = "Promise<Presence>")]
    pub fn presence<'env>(
        &self,
        env: &'env Env,
        channel: String,
    ) -> Result<PromiseRaw<'env, Presence>> {
        let p = self.inner.clone();
        settle(env, async move { p.presence(&channel).await }, |a| {
            Presence {
                channel: a.channel,
                clients: a
                    .clients
                    .into_iter()
                    .map(|c| PresentClient {
                        client: c.client,
                        user: match c.user {
                            Some(user) => Either::A(user),
                            None => Either::B(Null),
                        },
                        info: c.info.map(JsonData),
                    })
                    .collect(),
            }
        })
    }

    /// How many connections and distinct users are subscribed to `channel`. Rejects with
    /// `INVALID_CHANNEL` where the channel has no presence.
    #[napi(ts_return_type = "Promise<PresenceStats>")]
    pub fn presence_stats<'env>(
        &self,
        env: &'env Env,
        channel: String,
    ) -> Result<PromiseRaw<'env, PresenceStats>> {
        let p = self.inner.clone();
        settle(env, async move { p.presence_stats(&channel).await }, |a| {
            PresenceStats {
                channel: a.channel,
                clients: count(a.clients),
                users: count(a.users),
            }
        })
    }
}

fn history_message(m: protocol::Message) -> HistoryMessage {
    HistoryMessage {
        channel: m.channel,
        event: m.event,
        data: JsonData(m.data),
        offset: m.offset.map(offset),
        from: m.from,
    }
}

/// An offset as a JavaScript number (exact up to 2^53, far beyond any stream's length).
fn offset(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `limit` or `since` option: a whole number of 0 or more, or a wrong argument (an
/// ordinary error, before anything is sent).
fn whole(name: &str, value: Option<f64>) -> Result<Option<u64>> {
    match value {
        None => Ok(None),
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER => Ok(Some(v as u64)),
        Some(v) => Err(error::invalid_arg(format!(
            "{name} must be a whole number of 0 or more, not {v}"
        ))),
    }
}

/// JavaScript's `Number.MAX_SAFE_INTEGER`: the largest whole number a number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Runs `call` on napi's runtime; back on the JavaScript thread, resolves with its answer
/// converted by `convert`, or rejects with a failure that carries its `.code`.
fn settle<'env, T, V>(
    env: &'env Env,
    call: impl Future<Output = std::result::Result<T, hubbub_publisher::Error>> + Send + 'static,
    convert: impl FnOnce(T) -> V + 'static,
) -> Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
{
    env.spawn_future_with_callback(async move { Ok(call.await) }, move |env, outcome| {
        outcome.map(convert).map_err(|e| error::call(env, e))
    })
}

/// Application data as JSON text, encoded by JavaScript's own `JSON.stringify` on the
/// calling thread, so `toJSON` (dates), left-out `undefined` properties and `NaN` as `null`
/// all behave as JavaScript developers expect. A value with no JSON form (`undefined`, a
/// function, a symbol) is refused; one `JSON.stringify` throws on (a BigInt, a cycle)
/// throws the same error.
fn json(env: &Env, data: Unknown) -> Result<RawJson> {
    let json: Object = env.get_global()?.get_named_property("JSON")?;
    let stringify: Function<Unknown, Option<String>> = json.get_named_property("stringify")?;
    let text = stringify.call(data)?.ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            "data has no JSON form (undefined, a function or a symbol)",
        )
    })?;
    // JSON.stringify writes JSON; were it ever not, the hub would refuse it the same way.
    RawJson::from_string(text).map_err(|e| {
        error::rejection(
            env,
            hubbub_core::Error::InvalidPayload.because(e.to_string()),
        )
    })
}

fn event(event: Option<String>) -> String {
    event.unwrap_or_else(|| api::DEFAULT_EVENT.to_owned())
}

/// The target of `direct` and `disconnect`: exactly one of `client` and `user` (core's
/// rule), else `INVALID_PAYLOAD`.
fn target(env: &Env, client: Option<String>, user: Option<String>) -> Result<Target> {
    Target::from_fields(client, user).map_err(|r| error::rejection(env, r))
}

/// A count from the hub as a JavaScript number.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
