//! `Publisher`: the hub's HTTP API (docs/protocol.md, "The HTTP API") as Promise-returning
//! methods.
//!
//! One `reqwest::Client` per publisher keeps a pool of kept-alive connections, so many
//! calls can be in flight at once and each reuses a connection when one is free.

use crate::failure::Failure;
use hubbub_core::api::{self, Target};
use hubbub_core::protocol::RawJson;
use napi::bindgen_prelude::{Function, JsObjectValue, Object, PromiseRaw, Unknown};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The hub's address when neither the options nor `HUBBUB_URL` give one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9772";

/// How long one call may take, in milliseconds, when the options give no `timeout`.
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// Where the hub is and how to talk to it.
#[napi(object)]
#[derive(Default)]
pub struct PublisherOptions {
    /// The hub's base URL. Defaults to `HUBBUB_URL`, then `http://127.0.0.1:9772`.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <apiKey>`. Defaults to `HUBBUB_API_KEY`.
    pub api_key: Option<String>,
    /// How long one call may take, in milliseconds (connecting included). Default 5000.
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
}

/// Publishes to a hubbub hub over its HTTP API.
#[napi]
pub struct Publisher {
    hub: Arc<Hub>,
}

#[napi]
impl Publisher {
    /// A publisher for the hub at `options.url`. Nothing is sent until the first call.
    #[napi(constructor)]
    pub fn new(options: Option<PublisherOptions>) -> Result<Publisher> {
        let options = options.unwrap_or_default();
        let url = options
            .url
            .or_else(|| std::env::var("HUBBUB_URL").ok())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| Error::new(Status::InvalidArg, format!("bad hub url {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::new(
                Status::InvalidArg,
                format!("bad hub url {url:?}: use http:// or https://"),
            ));
        }
        let api_key = options
            .api_key
            .or_else(|| std::env::var("HUBBUB_API_KEY").ok())
            .filter(|k| !k.is_empty());
        let timeout = Duration::from_millis(options.timeout.unwrap_or(DEFAULT_TIMEOUT_MS).into());
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::from_reason(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Publisher {
            hub: Arc::new(Hub {
                http,
                url: url.trim_end_matches('/').to_owned(),
                api_key,
            }),
        })
    }

    /// The hub's base URL.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.hub.url.clone()
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
        let request = api::PublishRequest {
            channel,
            data: json(env, data)?,
            event: event(options.and_then(|o| o.event)),
        };
        let hub = self.hub.clone();
        env.spawn_future(async move {
            let answer: api::Published = hub.post("/api/publish", &request).await?;
            Ok(Published {
                published: answer.published,
                offset: answer.offset.map(|o| o as i64),
            })
        })
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
        let request = api::BroadcastRequest {
            channels,
            data: json(env, data)?,
            event: event(options.and_then(|o| o.event)),
        };
        let hub = self.hub.clone();
        env.spawn_future(async move {
            let answer: api::BroadcastPublished = hub.post("/api/broadcast", &request).await?;
            Ok(BroadcastPublished {
                published: answer.published,
            })
        })
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
        let hub = self.hub.clone();
        env.spawn_future(async move {
            let target = target(options.client, options.user)?;
            let request = api::DirectRequest::new(target, event(options.event), data);
            let answer: api::DirectDelivered = hub.post("/api/direct", &request).await?;
            Ok(DirectDelivered {
                direct_sent: answer.direct_sent,
                delivered: count(answer.delivered),
            })
        })
    }

    /// Closes one connection (`options.client`) or every connection of one user
    /// (`options.user`).
    #[napi]
    pub async fn disconnect(&self, options: DisconnectOptions) -> Result<Disconnected> {
        let request = api::DisconnectRequest::new(target(options.client, options.user)?);
        let answer: api::Disconnected = self.hub.post("/api/disconnect", &request).await?;
        Ok(Disconnected {
            disconnected: count(answer.disconnected),
        })
    }

    /// Every channel with at least one subscriber, and how many it has.
    #[napi]
    pub async fn channels(&self) -> Result<Channels> {
        let answer: api::Channels = self.hub.get("/api/channels").await?;
        Ok(Channels {
            channels: answer
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
    #[napi]
    pub async fn info(&self) -> Result<Info> {
        let answer: api::Info = self.hub.get("/api/info").await?;
        Ok(Info {
            version: answer.version,
            connections: count(answer.connections),
            channels: count(answer.channels),
            uptime_s: answer.uptime_s as i64,
        })
    }
}

/// Where the hub is and how to reach it; shared by a publisher's calls in flight.
struct Hub {
    http: reqwest::Client,
    /// The base URL without a trailing slash.
    url: String,
    api_key: Option<String>,
}

impl Hub {
    async fn post<B: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> std::result::Result<A, Failure> {
        let request = self.http.post(format!("{}{path}", self.url)).json(body);
        self.send(request).await
    }

    async fn get<A: DeserializeOwned>(&self, path: &str) -> std::result::Result<A, Failure> {
        let request = self.http.get(format!("{}{path}", self.url));
        self.send(request).await
    }

    /// Sends one request and reads the answer: the expected body on success, the hub's
    /// error otherwise.
    async fn send<A: DeserializeOwned>(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> std::result::Result<A, Failure> {
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        api::read_answer(status, &body).map_err(Failure::from)
    }
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
    RawJson::from_string(text).map_err(|e| {
        Failure::from(hubbub_core::Error::InvalidPayload.because(e.to_string())).into()
    })
}

fn event(event: Option<String>) -> String {
    event.unwrap_or_else(|| api::DEFAULT_EVENT.to_owned())
}

/// The target of `direct` and `disconnect`: exactly one of `client` and `user`.
fn target(client: Option<String>, user: Option<String>) -> std::result::Result<Target, Failure> {
    // Core's request type knows the rule; ask it rather than repeat it.
    let request = api::DisconnectRequest { client, user };
    Ok(request.target()?)
}

/// A count from the hub as a JavaScript number.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
