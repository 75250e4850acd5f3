//! The async [`Publisher`]: every call of the hub's HTTP API (PROTOCOL.md section 6, and
//! the history and presence reads of section 8).
//!
//! Requests are written with core's `api` types and answers read with core's
//! [`read_answer`], the code the hub itself is built from. With a `redis://` URL the calls
//! go to `crate::redis` instead, which makes them straight in the hubs' Redis engine.

use crate::connections::Connections;
use crate::endpoint::{with_channel, ConfigError, Endpoint, Options, Transport};
use crate::error::Error;
use hubbub_core::api::{
    self, BroadcastPublished, BroadcastRequest, Channels, DirectDelivered, DirectRequest,
    DisconnectRequest, Disconnected, HistoryAnswer, HistoryPage, Info, Presence, PresenceStats,
    PublishRequest, Published, Target,
};
use hubbub_core::protocol::RawJson;
use reqwest::header::HeaderValue;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Publishes to a hubbub hub over its HTTP API, or straight into the hubs' Redis engine
/// (a `redis://` URL).
///
/// Cheap to clone: clones share the endpoint and the pool of kept-alive connections, so
/// many calls may be in flight at once, each on a pooled connection when one is free.
/// Every call gives up after the endpoint's time limit.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hubbub_publisher::{Options, Publisher};
///
/// let hub = Publisher::new(Options::new().url("http://127.0.0.1:9772"))?;
/// hub.publish("room:1", "chat", &serde_json::json!({"text": "hi"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Publisher {
    endpoint: Endpoint,
    connections: Connections,
}

impl Publisher {
    /// A publisher for the hub that `options` name (falling back on `HUBBUB_URL` and
    /// `HUBBUB_API_KEY`, see [`Options`]), with a pool of its own. Nothing is sent until
    /// the first call.
    pub fn new(options: Options) -> Result<Publisher, ConfigError> {
        Ok(Publisher::with_connections(
            Endpoint::new(options)?,
            Connections::new()?,
        ))
    }

    /// A publisher for the hub that the environment names (`HUBBUB_URL`, else
    /// `http://127.0.0.1:9772`; `HUBBUB_API_KEY`, else none).
    pub fn from_env() -> Result<Publisher, ConfigError> {
        Publisher::new(Options::new())
    }

    /// A publisher for `endpoint` whose calls go over `connections`: for a program that
    /// keeps one pool per runtime or per thread and many endpoints.
    pub fn with_connections(endpoint: Endpoint, connections: Connections) -> Publisher {
        Publisher {
            endpoint,
            connections,
        }
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The hub's base URL.
    pub fn url(&self) -> &str {
        self.endpoint.url()
    }

    /// Publishes `data` (any value serde can write as JSON) to every subscriber of
    /// `channel`, as `event` ([`DEFAULT_EVENT`](hubbub_core::api::DEFAULT_EVENT) is
    /// `"message"`). A channel nobody is subscribed to is fine: nobody receives it.
    ///
    /// Subscribers receive `{"message": {"channel", "event", "data"}}`.
    pub async fn publish<D: Serialize + ?Sized>(
        &self,
        channel: impl Into<String>,
        event: impl Into<String>,
        data: &D,
    ) -> Result<Published, Error> {
        let request = PublishRequest {
            channel: channel.into(),
            data: encode(data)?,
            event: event.into(),
        };
        match self.endpoint.transport() {
            Transport::Http { routes, .. } => self.post(&routes.publish, &request).await,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => redis.call(self).publish(request).await,
        }
    }

    /// Publishes `data` to every subscriber of each of `channels` at once.
    pub async fn broadcast<D: Serialize + ?Sized>(
        &self,
        channels: impl IntoIterator<Item = impl Into<String>>,
        event: impl Into<String>,
        data: &D,
    ) -> Result<BroadcastPublished, Error> {
        let request = BroadcastRequest {
            channels: channels.into_iter().map(Into::into).collect(),
            data: encode(data)?,
            event: event.into(),
        };
        match self.endpoint.transport() {
            Transport::Http { routes, .. } => self.post(&routes.broadcast, &request).await,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => redis.call(self).broadcast(request).await,
        }
    }

    /// Sends `data` to one connection ([`Target::Client`]) or to every connection of one
    /// user ([`Target::User`]); `INVALID_CLIENT` when nobody matched.
    ///
    /// They receive `{"directMessage": {"event", "data"}}`.
    pub async fn direct<D: Serialize + ?Sized>(
        &self,
        target: Target,
        event: impl Into<String>,
        data: &D,
    ) -> Result<DirectDelivered, Error> {
        let request = DirectRequest::new(target, event.into(), encode(data)?);
        match self.endpoint.transport() {
            Transport::Http { routes, .. } => self.post(&routes.direct, &request).await,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => redis.call(self).direct(request).await,
        }
    }

    /// Closes one connection or every connection of one user (close code 4000). Nobody
    /// matching is fine: `{"disconnected": 0}`.
    pub async fn disconnect(&self, target: Target) -> Result<Disconnected, Error> {
        let request = DisconnectRequest::new(target);
        match self.endpoint.transport() {
            Transport::Http { routes, .. } => self.post(&routes.disconnect, &request).await,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => redis.call(self).disconnect(request).await,
        }
    }

    /// Every channel with at least one subscriber, and how many it has.
    pub async fn channels(&self) -> Result<Channels, Error> {
        match self.endpoint.transport() {
            Transport::Http { routes, .. } => self.get(&routes.channels).await,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => redis.call(self).channels().await,
        }
    }

    /// The hub's version, connection and channel counts, and uptime.
    pub async fn info(&self) -> Result<Info, Error> {
        match self.endpoint.transport() {
            Transport::Http { routes, .. } => self.get(&routes.info).await,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => Err(redis.call(self).not_through_redis("info")),
        }
    }

    /// The messages `channel` keeps, oldest first, with its current position: without
    /// `since`, the newest `limit`; with it, the first `limit` after that offset; without
    /// `limit`, all of them. `limit` 0 gives just the position. `INVALID_CHANNEL` where the
    /// channel's namespace keeps no history.
    pub async fn history(
        &self,
        channel: &str,
        limit: Option<u64>,
        since: Option<u64>,
    ) -> Result<HistoryPage, Error> {
        let routes = match self.endpoint.transport() {
            Transport::Http { routes, .. } => routes,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => {
                return redis.call(self).history(channel, limit, since).await
            }
        };
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(since) = since {
            query.push(("since", since.to_string()));
        }
        let url = with_channel(&routes.history, channel, &query);
        Ok(self.get::<HistoryAnswer>(&url).await?.into_page())
    }

    /// Every connection subscribed to `channel`, with its user and info. `INVALID_CHANNEL`
    /// where the channel's namespace has no presence.
    pub async fn presence(&self, channel: &str) -> Result<Presence, Error> {
        let routes = match self.endpoint.transport() {
            Transport::Http { routes, .. } => routes,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => return Err(redis.call(self).not_through_redis("presence")),
        };
        let url = with_channel(&routes.presence, channel, &[]);
        self.get(&url).await
    }

    /// How many connections and distinct users are subscribed to `channel`.
    /// `INVALID_CHANNEL` where the channel's namespace has no presence.
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, Error> {
        let routes = match self.endpoint.transport() {
            Transport::Http { routes, .. } => routes,
            #[cfg(feature = "redis")]
            Transport::Redis(redis) => {
                return Err(redis.call(self).not_through_redis("presence_stats"))
            }
        };
        let query = [("stats", "1".to_owned())];
        let url = with_channel(&routes.presence, channel, &query);
        self.get(&url).await
    }

    /// The pool of connections the calls go over.
    #[cfg(feature = "redis")]
    pub(crate) fn connections(&self) -> &Connections {
        &self.connections
    }

    fn authorization(&self) -> Option<&HeaderValue> {
        match self.endpoint.transport() {
            Transport::Http { authorization, .. } => authorization.as_ref(),
            #[cfg(feature = "redis")]
            Transport::Redis(_) => None,
        }
    }

    async fn post<B: Serialize, A: DeserializeOwned>(
        &self,
        url: &Url,
        body: &B,
    ) -> Result<A, Error> {
        // Writing core's request types cannot fail: their data is JSON already.
        let body = serde_json::to_vec(body).map_err(|e| invalid(e.to_string()))?;
        let request = self
            .request(Method::POST, url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.send(url, request).await
    }

    async fn get<A: DeserializeOwned>(&self, url: &Url) -> Result<A, Error> {
        self.send(url, self.request(Method::GET, url)).await
    }

    fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let mut request = self
            .connections
            .http
            .request(method, url.clone())
            .timeout(self.endpoint.timeout())
            .header(ACCEPT, "application/json");
        if let Some(authorization) = self.authorization() {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }

    /// Sends one request and reads the answer: the expected body on a 2xx, the hub's
    /// refusal otherwise, `UNAVAILABLE` for anything else.
    async fn send<A: DeserializeOwned>(
        &self,
        url: &Url,
        request: reqwest::RequestBuilder,
    ) -> Result<A, Error> {
        let timeout = self.endpoint.timeout();
        let response = request
            .send()
            .await
            .map_err(|e| Error::from_http(url, timeout, e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::from_http(url, timeout, e))?;
        api::read_answer(status, &body).map_err(|e| Error::from_answer(url, status, e))
    }
}

/// Application data as JSON text. Data already encoded (core's [`RawJson`], which the
/// Python and Node publishers hand over) is copied as it is.
fn encode<D: Serialize + ?Sized>(data: &D) -> Result<RawJson, Error> {
    RawJson::from_value(data).map_err(|e| invalid(format!("data has no JSON form: {e}")))
}

fn invalid(reason: String) -> Error {
    Error::Invalid(hubbub_core::Error::InvalidPayload.because(reason))
}
