//! Where a publisher sends its calls, and how: the hub's URL, the API key and the time
//! limit, from the caller's options, else the environment, else the defaults. A
//! `redis://` URL names the hubs' Redis instead, with the hubs' namespaces and prefix.

use hubbub_core::api::DEFAULT_URL;
use hubbub_core::namespace::NamespaceSpec;
use reqwest::header::HeaderValue;
use reqwest::Url;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The environment variable that gives the hub's URL when the options give none.
pub const URL_VAR: &str = "HUBBUB_URL";

/// The environment variable that gives the API key when the options give none.
pub const API_KEY_VAR: &str = "HUBBUB_API_KEY";

/// How long one call may take, connecting included, when the options give no time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a publisher is told: each setting left out falls back on the environment, then on
/// a default.
///
/// | setting | when left out |
/// | --- | --- |
/// | `url` | `HUBBUB_URL`, then [`DEFAULT_URL`](hubbub_core::api::DEFAULT_URL) (`http://127.0.0.1:9772`) |
/// | `api_key` | `HUBBUB_API_KEY`, then none |
/// | `timeout` | [`DEFAULT_TIMEOUT`] (5 s) |
/// | `namespaces` | none: required with a `redis://` URL |
/// | `redis_prefix` | [`DEFAULT_PREFIX`](hubbub_core::engine::DEFAULT_PREFIX) (`hubbub`) |
///
/// An environment variable that is set but empty counts as unset, as a shell or a
/// container file leaves `HUBBUB_URL=` when it has nothing to say. An empty `api_key`
/// means no key; an empty `url` given here is a bad URL.
///
/// With an `http://` or `https://` URL the publisher calls the hub's HTTP API, and
/// `namespaces` and `redis_prefix` are not used. With a `redis://` URL it
/// publishes straight into the hubs' Redis engine (see the crate's documentation,
/// "Publishing through Redis"), and `api_key` is not used.
///
/// ```
/// use hubbub_publisher::Options;
/// use std::time::Duration;
///
/// let options = Options::new()
///     .url("http://127.0.0.1:9772")
///     .api_key("k")
///     .timeout(Duration::from_secs(2));
/// assert_eq!(options.url.as_deref(), Some("http://127.0.0.1:9772"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The hub's base URL, `http://` or `https://`, e.g. `https://hub.example.com`; or the
    /// hubs' Redis, `redis://`, e.g. `redis://:password@10.0.0.5:6379/0` (`rediss://`, TLS,
    /// is refused: not built in yet)
    /// (the hubs' `redis_url`: where it lists several instances, the same list, in the same
    /// order).
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <api_key>`; the hub asks for one when its config
    /// sets `api_keys`.
    pub api_key: Option<String>,
    /// How long one call may take, connecting included. Must be more than zero.
    pub timeout: Option<Duration>,
    /// Through Redis: the hubs' `namespaces`, as their config writes them, so that each
    /// channel's stream (offsets, history) is kept exactly as a hub keeps it. Required with
    /// a `redis://` URL (an empty list where no channel keeps history).
    pub namespaces: Option<Vec<NamespaceSpec>>,
    /// Through Redis: the hubs' `redis_prefix`.
    pub redis_prefix: Option<String>,
}

impl Options {
    /// Options that leave every setting to the environment and the defaults.
    pub fn new() -> Options {
        Options::default()
    }

    /// Sets the hub's base URL.
    pub fn url(mut self, url: impl Into<String>) -> Options {
        self.url = Some(url.into());
        self
    }

    /// Sets the API key.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Options {
        self.api_key = Some(api_key.into());
        self
    }

    /// Sets the time limit of each call.
    pub fn timeout(mut self, timeout: Duration) -> Options {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the hubs' namespaces, for publishing through Redis.
    pub fn namespaces(mut self, namespaces: impl IntoIterator<Item = NamespaceSpec>) -> Options {
        self.namespaces = Some(namespaces.into_iter().collect());
        self
    }

    /// Sets the hubs' `redis_prefix`, for publishing through Redis.
    pub fn redis_prefix(mut self, prefix: impl Into<String>) -> Options {
        self.redis_prefix = Some(prefix.into());
        self
    }
}

impl fmt::Debug for Options {
    /// Shows whether a key is set, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url.as_deref().map(shown_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("namespaces", &self.namespaces)
            .field("redis_prefix", &self.redis_prefix)
            .finish()
    }
}

/// Options that cannot make a publisher: a bad URL, an API key a header cannot carry, a
/// zero timeout, or TLS settings that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The hub's routes of the HTTP API, each parsed once.
#[derive(Debug)]
pub(crate) struct Routes {
    pub publish: Url,
    pub broadcast: Url,
    pub direct: Url,
    pub disconnect: Url,
    pub channels: Url,
    pub info: Url,
    /// `/api/history`, to which the channel is added as one more path segment.
    pub history: Url,
    /// `/api/presence`, likewise.
    pub presence: Url,
}

/// Where calls go and how: the options resolved once. Cheap to clone (one reference
/// count), so one endpoint may serve many [`Publisher`](crate::Publisher)s, each on its
/// own [`Connections`](crate::Connections).
#[derive(Clone)]
pub struct Endpoint(Arc<Inner>);

struct Inner {
    /// The URL as shown: without a trailing slash, and without a Redis password.
    url: String,
    timeout: Duration,
    transport: Transport,
}

/// How calls reach the hubs.
pub(crate) enum Transport {
    /// The hub's HTTP API.
    Http {
        routes: Box<Routes>,
        authorization: Option<HeaderValue>,
    },
    /// Straight into the hubs' Redis engine.
    #[cfg(feature = "redis")]
    Redis(crate::redis::RedisTarget),
}

/// An environment variable, where it is set to something.
fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether `url` names a Redis rather than a hub.
fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

/// A URL as it may be shown (in messages, `Debug`, `url()`): a Redis URL's password
/// replaced by `***`, in each URL of a comma-separated list. Done on the text, so that a
/// URL that does not parse (and is shown in the error saying so) loses its password too;
/// everything up to the last `@` after the scheme counts as the user and password.
pub(crate) fn shown_url(url: &str) -> String {
    if !is_redis_url(url) {
        return url.to_owned();
    }
    hubbub_core::engine::shown_redis_url(url)
}

impl Endpoint {
    /// Resolves `options` against the environment and the defaults, and checks them.
    pub fn new(options: Options) -> Result<Endpoint, ConfigError> {
        let url = options
            .url
            .or_else(|| from_env(URL_VAR))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(ConfigError::new("the timeout must be more than zero"));
        }
        if is_redis_url(&url) {
            return Endpoint::redis(url, timeout, options.namespaces, options.redis_prefix);
        }
        let api_key = options.api_key.or_else(|| from_env(API_KEY_VAR));
        let parsed =
            Url::parse(&url).map_err(|e| ConfigError::new(format!("bad hub URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(format!(
                "bad hub URL {url:?}: use http:// or https:// (a hub), or redis:// or rediss:// (the hubs' Redis)"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            // The routes are appended to the URL as text, which a query would swallow.
            return Err(ConfigError::new(format!(
                "bad hub URL {url:?}: a base URL has no ?query or #fragment"
            )));
        }
        let url = url.trim_end_matches('/').to_owned();
        // The routes are the base URL with the path appended, as text: a hub behind a
        // proxy at https://example.com/hub has its API at /hub/api/...
        let route = |path: &str| {
            Url::parse(&format!("{url}{path}"))
                .map_err(|e| ConfigError::new(format!("bad hub URL {url:?}: {e}")))
        };
        let routes = Routes {
            publish: route("/api/publish")?,
            broadcast: route("/api/broadcast")?,
            direct: route("/api/direct")?,
            disconnect: route("/api/disconnect")?,
            channels: route("/api/channels")?,
            info: route("/api/info")?,
            history: route("/api/history")?,
            presence: route("/api/presence")?,
        };
        let authorization = match api_key {
            Some(key) if !key.is_empty() => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    ConfigError::new("the API key holds characters an HTTP header cannot carry")
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => None,
        };
        Ok(Endpoint(Arc::new(Inner {
            url,
            timeout,
            transport: Transport::Http {
                routes: Box::new(routes),
                authorization,
            },
        })))
    }

    #[cfg(feature = "redis")]
    fn redis(
        url: String,
        timeout: Duration,
        namespaces: Option<Vec<NamespaceSpec>>,
        prefix: Option<String>,
    ) -> Result<Endpoint, ConfigError> {
        let target = crate::redis::RedisTarget::new(&url, namespaces, prefix)?;
        Ok(Endpoint(Arc::new(Inner {
            url: shown_url(&url),
            timeout,
            transport: Transport::Redis(target),
        })))
    }

    #[cfg(not(feature = "redis"))]
    fn redis(
        url: String,
        _: Duration,
        _: Option<Vec<NamespaceSpec>>,
        _: Option<String>,
    ) -> Result<Endpoint, ConfigError> {
        Err(ConfigError::new(format!(
            "{}: this build of hubbub-publisher has no Redis transport (its `redis` feature)",
            shown_url(&url)
        )))
    }

    /// The hub's base URL, without a trailing slash; or the Redis URL, without its
    /// password.
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The time limit of each call.
    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// Whether calls carry an API key.
    pub fn has_api_key(&self) -> bool {
        matches!(
            &self.0.transport,
            Transport::Http {
                authorization: Some(_),
                ..
            }
        )
    }

    /// Whether calls go straight into the hubs' Redis rather than to a hub's HTTP API.
    pub fn is_redis(&self) -> bool {
        !matches!(&self.0.transport, Transport::Http { .. })
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.0.transport
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Endpoint");
        f.field("url", &self.0.url)
            .field("api_key", &self.has_api_key().then_some("<set>"))
            .field("timeout", &self.0.timeout);
        #[cfg(feature = "redis")]
        if let Transport::Redis(target) = &self.0.transport {
            f.field("redis_instances", &target.shard_count())
                .field("redis_prefix", &target.prefix)
                .field("namespaces", &target.namespaces.len());
        }
        f.finish()
    }
}

/// A route with one more path segment: the channel, percent-encoded (a channel name may
/// hold `/`), and a query.
pub(crate) fn with_channel(route: &Url, channel: &str, query: &[(&str, String)]) -> Url {
    let mut url = route.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(channel);
    }
    if !query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(irrefutable_let_patterns)] // without the `redis` feature
    fn channels_are_one_path_segment() {
        let e = Endpoint::new(Options::new().url("http://h:1/base/")).unwrap();
        assert_eq!(e.url(), "http://h:1/base");
        let Transport::Http { routes, .. } = e.transport() else {
            panic!("an HTTP endpoint")
        };
        assert_eq!(
            with_channel(&routes.history, "a/b c", &[("limit", "5".into())]).as_str(),
            "http://h:1/base/api/history/a%2Fb%20c?limit=5"
        );
        assert_eq!(routes.publish.as_str(), "http://h:1/base/api/publish");
    }

    #[test]
    fn bad_options() {
        for (options, says) in [
            (Options::new().url("not a url"), "bad hub URL"),
            (Options::new().url(""), "bad hub URL"),
            (Options::new().url("ftp://h"), "use http:// or https://"),
            (Options::new().url("ftp://h"), "or redis://"),
            (Options::new().url("http://h/?a=1"), "no ?query"),
            (Options::new().url("http://h").api_key("a\nb"), "API key"),
            (
                Options::new().url("http://h").timeout(Duration::ZERO),
                "timeout",
            ),
        ] {
            let err = Endpoint::new(options).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn redis_passwords_are_never_shown() {
        for (url, shown) in [
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
            ("rediss://user:pw@h/0", "rediss://user:***@h/0"),
            (
                "redis://:p@ss/w:rd@h:notaport/0",
                "redis://:***@h:notaport/0",
            ),
            ("redis://user@h/0", "redis://user@h/0"),
            (
                "redis://:a@h1:6379/0,redis://:b@h2:6379/0",
                "redis://:***@h1:6379/0,redis://:***@h2:6379/0",
            ),
            ("http://user:pw@h", "http://user:pw@h"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
    }

    #[test]
    fn keys_are_never_shown() {
        let options = Options::new().url("http://h").api_key("secret-key");
        assert!(!format!("{options:?}").contains("secret-key"));
        let e = Endpoint::new(options).unwrap();
        assert!(e.has_api_key());
        assert!(!format!("{e:?}").contains("secret-key"));
        assert!(!Endpoint::new(Options::new().url("http://h").api_key(""))
            .unwrap()
            .has_api_key());
    }
}
