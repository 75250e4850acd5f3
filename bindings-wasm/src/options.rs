//! The options objects of `new Client(url, options)`, `client.subscribe(channel, onMessage,
//! options)` and `sub.history(options)`.

use crate::backoff::Reconnect;
use crate::message::MAX_SAFE_INTEGER;
use crate::subscriptions::Handlers;
use hubbub_core::protocol::{Credentials, HistoryQuery, StreamPosition};
use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// The heartbeat when the options give none: a connection that shows no sign of life for
/// this long is taken for dead.
pub(crate) const DEFAULT_HEARTBEAT_MS: u32 = 30_000;

/// What the application asked for, read once from the options object.
pub(crate) struct Options {
    /// More URLs of the same hub (other nodes of a cluster): each new connection after a
    /// lost one goes to the next URL in turn, the constructor's first.
    pub urls: Vec<String>,
    /// Sent as `authenticate` on every connection, before any subscription.
    pub credentials: Option<Credentials>,
    /// `getToken`: asked for a token before a connection where the client has none that
    /// is still fresh, and again before the token expires.
    pub get_token: Option<Function>,
    /// `None` when the application turned reconnection off (`reconnect: false`).
    pub reconnect: Option<Reconnect>,
    /// 0 turns the heartbeat off.
    pub heartbeat_ms: u32,
    pub on_state_change: Option<Function>,
    pub on_error: Option<Function>,
}

impl Options {
    /// Reads the options object; `undefined` and `null` give the defaults. A field of the
    /// wrong type is a `TypeError`, so that a typo fails at construction, not on the wire.
    pub fn from_js(options: &JsValue) -> Result<Options, JsValue> {
        if options.is_undefined() || options.is_null() {
            return Ok(Options::default());
        }
        if !options.is_object() {
            return Err(type_error("options must be an object"));
        }
        let token = string(options, "token")?;
        let user = string(options, "user")?;
        let secret = string(options, "secret")?;
        let get_token = function(options, "getToken")?;
        if get_token.is_some() && (user.is_some() || secret.is_some()) {
            return Err(type_error(
                "getToken goes with tokens, not with user and secret",
            ));
        }
        let credentials = match (token, user, secret) {
            (Some(token), None, None) => Some(Credentials::Token { token }),
            (None, Some(user), Some(secret)) => Some(Credentials::User { user, secret }),
            (None, None, None) => None,
            (Some(_), _, _) => return Err(type_error("give either token or user and secret")),
            _ => return Err(type_error("user and secret go together")),
        };
        Ok(Options {
            urls: urls(options)?,
            credentials,
            get_token,
            reconnect: reconnect(options)?,
            heartbeat_ms: match number(options, "heartbeatMs")? {
                Some(ms) => ms,
                None => DEFAULT_HEARTBEAT_MS,
            },
            on_state_change: function(options, "onStateChange")?,
            on_error: function(options, "onError")?,
        })
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            urls: Vec::new(),
            credentials: None,
            get_token: None,
            reconnect: Some(Reconnect::default()),
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            on_state_change: None,
            on_error: None,
        }
    }
}

/// The third argument of `subscribe()`: `{since, onRecover, onJoin, onLeave}`.
pub(crate) fn subscription(
    on_message: js_sys::Function,
    options: &JsValue,
) -> Result<(Handlers, Option<StreamPosition>), JsValue> {
    let mut handlers = Handlers {
        on_message,
        on_recover: None,
        on_join: None,
        on_leave: None,
    };
    if options.is_undefined() || options.is_null() {
        return Ok((handlers, None));
    }
    if !options.is_object() {
        return Err(type_error("subscribe's options must be an object"));
    }
    handlers.on_recover = function(options, "onRecover")?;
    handlers.on_join = function(options, "onJoin")?;
    handlers.on_leave = function(options, "onLeave")?;
    Ok((handlers, since(options)?))
}

/// `since`: absent or `'latest'` for from now, or a position `{epoch, offset}`.
fn since(options: &JsValue) -> Result<Option<StreamPosition>, JsValue> {
    let value = field(options, "since")?;
    if value.is_undefined() || value.is_null() || value.as_string().as_deref() == Some("latest") {
        return Ok(None);
    }
    let refused = || type_error("since must be 'latest' or a position {epoch, offset}");
    if !value.is_object() {
        return Err(refused());
    }
    let epoch = field(&value, "epoch")?.as_string().ok_or_else(refused)?;
    let offset = whole_number(&field(&value, "offset")?).ok_or_else(refused)?;
    Ok(Some(StreamPosition { epoch, offset }))
}

/// The argument of `sub.history()`: `{limit, since}`, both optional.
pub(crate) fn history(channel: String, options: &JsValue) -> Result<HistoryQuery, JsValue> {
    let mut query = HistoryQuery {
        channel,
        limit: None,
        since: None,
    };
    if options.is_undefined() || options.is_null() {
        return Ok(query);
    }
    if !options.is_object() {
        return Err(type_error("history's options must be an object"));
    }
    let limit = field(options, "limit")?;
    if !limit.is_undefined() && !limit.is_null() {
        let limit = whole_number(&limit).and_then(|n| u32::try_from(n).ok());
        query.limit = Some(limit.ok_or_else(|| type_error("limit must be a whole number"))?);
    }
    let since = field(options, "since")?;
    if !since.is_undefined() && !since.is_null() {
        let since = whole_number(&since).ok_or_else(|| type_error("since must be an offset"))?;
        query.since = Some(since);
    }
    Ok(query)
}

/// A whole number from 0 up to the largest integer a JS number holds exactly.
pub(crate) fn whole_number(value: &JsValue) -> Option<u64> {
    let n = value.as_f64()?;
    (n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER).then_some(n as u64)
}

/// `urls`: absent, or an array of WebSocket URLs.
fn urls(options: &JsValue) -> Result<Vec<String>, JsValue> {
    let value = field(options, "urls")?;
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let refused = || type_error("urls must be an array of WebSocket URLs");
    if !js_sys::Array::is_array(&value) {
        return Err(refused());
    }
    value
        .unchecked_ref::<js_sys::Array>()
        .iter()
        .map(|url| match url.as_string() {
            Some(url) if web_sys::Url::new(&url).is_ok() => Ok(url),
            Some(url) => Err(not_a_url(&url)),
            None => Err(refused()),
        })
        .collect()
}

/// `reconnect`: absent or `true` for the defaults, `false` for none, or
/// `{minDelayMs, maxDelayMs}` (either may be left out).
fn reconnect(options: &JsValue) -> Result<Option<Reconnect>, JsValue> {
    let value = field(options, "reconnect")?;
    if value.is_undefined() || value.is_null() || value == JsValue::TRUE {
        return Ok(Some(Reconnect::default()));
    }
    if value == JsValue::FALSE {
        return Ok(None);
    }
    if !value.is_object() {
        return Err(type_error(
            "reconnect must be false or {minDelayMs, maxDelayMs}",
        ));
    }
    let defaults = Reconnect::default();
    let min_ms = number(&value, "minDelayMs")?.unwrap_or(defaults.min_ms);
    let max_ms = number(&value, "maxDelayMs")?.unwrap_or(defaults.max_ms.max(min_ms));
    if min_ms == 0 || max_ms < min_ms {
        return Err(type_error("reconnect needs 0 < minDelayMs <= maxDelayMs"));
    }
    Ok(Some(Reconnect { min_ms, max_ms }))
}

fn field(object: &JsValue, key: &str) -> Result<JsValue, JsValue> {
    Reflect::get(object, &key.into())
}

fn string(object: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    let value = field(object, key)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_string() {
        Some(s) => Ok(Some(s)),
        None => Err(must_be(key, "a string")),
    }
}

fn number(object: &JsValue, key: &str) -> Result<Option<u32>, JsValue> {
    let value = field(object, key)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n >= 0.0 && n <= f64::from(u32::MAX) => Ok(Some(n as u32)),
        _ => Err(must_be(key, "a number of milliseconds")),
    }
}

fn function(object: &JsValue, key: &str) -> Result<Option<Function>, JsValue> {
    let value = field(object, key)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.dyn_into::<Function>() {
        Ok(f) => Ok(Some(f)),
        Err(_) => Err(must_be(key, "a function")),
    }
}

pub(crate) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

// The messages below are put together by hand: `format!` would link core's formatting
// machinery into the package for them.

/// `not a URL: <url>`
pub(crate) fn not_a_url(url: &str) -> JsValue {
    type_error(&["not a URL: ", url].concat())
}

/// `<key> must be <what>`
fn must_be(key: &str, what: &str) -> JsValue {
    type_error(&[key, " must be ", what].concat())
}
