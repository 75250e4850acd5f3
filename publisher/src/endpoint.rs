//! Where a publisher sends its calls, and how: the hub's URL, the API key and the time
//! limit, from the caller's options, else the environment, else the defaults.

use hubbub_core::api::DEFAULT_URL;
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
///
/// An environment variable that is set but empty counts as unset, as a shell or a
/// container file leaves `HUBBUB_URL=` when it has nothing to say. An empty `api_key`
/// means no key; an empty `url` given here is a bad URL.
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
    /// The hub's base URL, `http://` or `https://`, e.g. `https://hub.example.com`.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <api_key>`; the hub asks for one when its config
    /// sets `api_keys`.
    pub api_key: Option<String>,
    /// How long one call may take, connecting included. Must be more than zero.
    pub timeout: Option<Duration>,
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
}

impl fmt::Debug for Options {
    /// Shows whether a key is set, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
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
    url: String,
    routes: Routes,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

/// An environment variable, where it is set to something.
fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Endpoint {
    /// Resolves `options` against the environment and the defaults, and checks them.
    pub fn new(options: Options) -> Result<Endpoint, ConfigError> {
        let url = options
            .url
            .or_else(|| from_env(URL_VAR))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let api_key = options.api_key.or_else(|| from_env(API_KEY_VAR));
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(ConfigError::new("the timeout must be more than zero"));
        }
        let parsed =
            Url::parse(&url).map_err(|e| ConfigError::new(format!("bad hub URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(format!(
                "bad hub URL {url:?}: use http:// or https://"
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
            routes,
            authorization,
            timeout,
        })))
    }

    /// The hub's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The time limit of each call.
    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// Whether calls carry an API key.
    pub fn has_api_key(&self) -> bool {
        self.0.authorization.is_some()
    }

    pub(crate) fn routes(&self) -> &Routes {
        &self.0.routes
    }

    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.0.authorization.as_ref()
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.0.url)
            .field("api_key", &self.has_api_key().then_some("<set>"))
            .field("timeout", &self.0.timeout)
            .finish()
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
    fn channels_are_one_path_segment() {
        let e = Endpoint::new(Options::new().url("http://h:1/base/")).unwrap();
        assert_eq!(e.url(), "http://h:1/base");
        assert_eq!(
            with_channel(&e.routes().history, "a/b c", &[("limit", "5".into())]).as_str(),
            "http://h:1/base/api/history/a%2Fb%20c?limit=5"
        );
        assert_eq!(e.routes().publish.as_str(), "http://h:1/base/api/publish");
    }

    #[test]
    fn bad_options() {
        for (options, says) in [
            (Options::new().url("not a url"), "bad hub URL"),
            (Options::new().url(""), "bad hub URL"),
            (Options::new().url("ftp://h"), "use http:// or https://"),
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
