//! `Publisher`: hubbub-publisher's async publisher (docs/protocol.md, "The HTTP API") as
//! Promise-returning methods.
//!
//! Each method converts its arguments on the JavaScript thread, runs the call on napi's
//! tokio runtime, and converts the answer (or the failure, with its `.code`) back on the
//! JavaScript thread. A publisher's pool keeps connections alive, so many calls can be in
//! flight at once, each on a pooled connection when one is free.

use crate::error;
use hubbub_core::api::{self, Target};
use hubbub_core::protocol::RawJson;
use hubbub_publisher::Options;
use napi::bindgen_prelude::{Function, JsObjectValue, Object, PromiseRaw, ToNapiValue, Unknown};
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
    /// `HUBBUB_URL` counts as unset).
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <apiKey>`. Defaults to `HUBBUB_API_KEY`, then none.
    pub api_key: Option<String>,
    /// How long one call may take, in milliseconds (connecting included), more than zero.
    /// Default 5000.
    pub timeout: Option<u32>,
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
    /// The publication's offset, where the channel keeps history.
    pub offset: Option<i64>,
    /// The epoch of the channel's stream, where the channel keeps history.
    pub epoch: Option<String>,
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
    /// Every live node of the cluster (one with the memory engine).
    pub nodes: Vec<NodeInfo>,
}

/// One node of the cluster, in `info`.
#[napi(object)]
pub struct NodeInfo {
    pub id: String,
    /// Its open WebSocket connections.
    pub connections: u32,
    /// Seconds since it started.
    #[napi(js_name = "uptime_s")]
    pub uptime_s: i64,
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
        let inner = hubbub_publisher::Publisher::new(Options {
            url: options.url,
            api_key: options.api_key,
            timeout: options.timeout.map(|ms| Duration::from_millis(ms.into())),
        })
        .map_err(|e| error::invalid_arg(e.to_string()))?;
        Ok(Publisher { inner })
    }

    /// The hub's base URL.
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
                offset: a.offset.map(|o| o as i64),
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
}

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
