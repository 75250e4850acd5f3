//! Namespaces: what the channels matching a pattern keep (history, presence, join/leave)
//! and who decides about them (PROTOCOL.md section 9).
//!
//! One definition for every reader of a hub's `namespaces`: the server checks its config
//! with it, and hubbub-publisher's Redis transport, which publishes straight into the Redis
//! engine, is given the same entries so that it keeps each channel's stream exactly as the
//! hubs do. A [`NamespaceSpec`] is an entry as written (the server's `[[namespaces]]`, a
//! publisher's option); [`Namespace::from_spec`] checks it.

use crate::auth::pattern_matches;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How long a stream lives after its last publication when `history_ttl` is not given.
pub const DEFAULT_HISTORY_TTL: Duration = Duration::from_secs(600);

/// The most messages one channel may keep.
pub const MAX_HISTORY_SIZE: u64 = 100_000;

/// The shortest `history_ttl`.
pub const MIN_HISTORY_TTL: Duration = Duration::from_secs(1);

/// The longest `history_ttl`: a year. A stream's expiry is its last publication plus the
/// ttl, which overflows for durations near the largest one `humantime` reads.
pub const MAX_HISTORY_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a channel's namespace keeps of its publications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamOptions {
    /// Messages kept; 0 for no stream at all (no offsets, no history).
    pub history_size: usize,
    /// How long the stream lives after its last publication.
    pub history_ttl: Duration,
}

impl StreamOptions {
    /// Whether the channel has a stream: offsets, an epoch and history.
    pub fn keeps_history(&self) -> bool {
        self.history_size > 0
    }
}

/// A namespace as written: a `[[namespaces]]` entry of the hub's config (or one element of
/// its `--namespaces` TOML array), or the same keys given to a publisher as JSON. Unknown
/// keys are refused, so that a misspelt key is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    /// The channels it is for: `*` matches any run of characters.
    pub pattern: String,
    /// Messages kept per channel, 0 to [`MAX_HISTORY_SIZE`]; none (0) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_size: Option<u64>,
    /// How long a stream lives after its last publication, as `humantime` reads it
    /// (`"90s"`, `"10m"`, `"1h 30m"`); [`DEFAULT_HISTORY_TTL`] when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_ttl: Option<String>,
    /// Whether `subscribe` with `since` may recover; where history is kept when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_leave: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe_hook: Option<bool>,
}

/// What the channels matching a pattern keep, and who decides about them: a
/// [`NamespaceSpec`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub pattern: String,
    pub stream: StreamOptions,
    /// Whether `subscribe` with `since` may recover missed messages.
    pub recover: bool,
    pub presence: bool,
    pub join_leave: bool,
    /// Whether the app's subscribe hook, not read permissions, decides who may subscribe.
    pub subscribe_hook: bool,
}

/// What a channel matching no namespace keeps: nothing.
pub static NO_NAMESPACE: Namespace = Namespace {
    pattern: String::new(),
    stream: StreamOptions {
        history_size: 0,
        history_ttl: Duration::ZERO,
    },
    recover: false,
    presence: false,
    join_leave: false,
    subscribe_hook: false,
};

/// A namespace entry that cannot be used: the key it is about and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceError {
    /// `pattern`, `history_size`, `history_ttl` or `recover`.
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for NamespaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for NamespaceError {}

fn error(key: &'static str, message: impl Into<String>) -> NamespaceError {
    NamespaceError {
        key,
        message: message.into(),
    }
}

impl Namespace {
    /// Checks an entry as written, filling in the defaults.
    pub fn from_spec(spec: NamespaceSpec) -> Result<Namespace, NamespaceError> {
        if spec.pattern.is_empty() {
            return Err(error("pattern", "is empty"));
        }
        let history_size = spec.history_size.unwrap_or(0);
        if history_size > MAX_HISTORY_SIZE {
            return Err(error(
                "history_size",
                format!("at most {MAX_HISTORY_SIZE} messages per channel"),
            ));
        }
        let history_ttl = match &spec.history_ttl {
            Some(text) => {
                let ttl = humantime::parse_duration(text)
                    .map_err(|e| error("history_ttl", format!("{text:?}: {e} (e.g. \"10m\")")))?;
                if ttl < MIN_HISTORY_TTL {
                    return Err(error("history_ttl", "must be at least 1s"));
                }
                if ttl > MAX_HISTORY_TTL {
                    return Err(error("history_ttl", "must be at most a year"));
                }
                ttl
            }
            None => DEFAULT_HISTORY_TTL,
        };
        let recover = match spec.recover {
            Some(true) if history_size == 0 => {
                return Err(error(
                    "recover",
                    "needs history (history_size greater than 0)",
                ))
            }
            Some(recover) => recover,
            None => history_size > 0,
        };
        Ok(Namespace {
            pattern: spec.pattern,
            stream: StreamOptions {
                history_size: history_size as usize,
                history_ttl,
            },
            recover,
            presence: spec.presence.unwrap_or(false),
            join_leave: spec.join_leave.unwrap_or(false),
            subscribe_hook: spec.subscribe_hook.unwrap_or(false),
        })
    }
}

/// The namespace that decides for `channel`: the first of `namespaces` whose pattern
/// matches it, or [`NO_NAMESPACE`].
pub fn find<'a>(namespaces: &'a [Namespace], channel: &str) -> &'a Namespace {
    namespaces
        .iter()
        .find(|n| pattern_matches(&n.pattern, channel))
        .unwrap_or(&NO_NAMESPACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Namespace, String> {
        let spec: NamespaceSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Namespace::from_spec(spec).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let n = spec(r#"{"pattern": "room:*", "history_size": 10}"#).unwrap();
        assert_eq!(n.stream.history_size, 10);
        assert_eq!(n.stream.history_ttl, DEFAULT_HISTORY_TTL);
        assert!(n.recover && !n.presence && !n.join_leave && !n.subscribe_hook);
        let n = spec(r#"{"pattern": "lobby", "presence": true}"#).unwrap();
        assert!(!n.stream.keeps_history() && !n.recover && n.presence);
        let n = spec(r#"{"pattern": "a", "history_size": 1, "history_ttl": "1h 30m"}"#).unwrap();
        assert_eq!(n.stream.history_ttl, Duration::from_secs(5400));
    }

    #[test]
    fn errors_name_the_key() {
        for (json, says) in [
            (r#"{"pattern": ""}"#, "pattern: is empty"),
            (
                r#"{"pattern": "a", "history_size": 100001}"#,
                "history_size:",
            ),
            (
                r#"{"pattern": "a", "history_size": 1, "history_ttl": "soon"}"#,
                "history_ttl:",
            ),
            (
                r#"{"pattern": "a", "history_size": 1, "history_ttl": "500ms"}"#,
                "at least 1s",
            ),
            (
                r#"{"pattern": "a", "history_size": 1, "history_ttl": "2y"}"#,
                "at most a year",
            ),
            (
                r#"{"pattern": "a", "recover": true}"#,
                "recover: needs history",
            ),
            (r#"{"pattern": "a", "history_sise": 1}"#, "unknown field"),
            (r#"{"history_size": 1}"#, "missing field `pattern`"),
        ] {
            let err = spec(json).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn the_first_match_decides() {
        let namespaces = [
            spec(r#"{"pattern": "room:staff", "presence": true}"#).unwrap(),
            spec(r#"{"pattern": "room:*", "history_size": 5}"#).unwrap(),
        ];
        assert!(find(&namespaces, "room:staff").presence);
        assert_eq!(find(&namespaces, "room:1").stream.history_size, 5);
        assert_eq!(find(&namespaces, "lobby"), &NO_NAMESPACE);
    }
}
