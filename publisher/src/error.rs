//! Why a call failed: one of the protocol's error names, or `UNAVAILABLE`.
//!
//! Every publisher of hubbub (this crate, and the Python and Node packages built on it)
//! reports failures with these names and nothing else:
//!
//! - the hub refused: its error name (`INVALID_CREDENTIALS`, `ACCESS_DENIED`,
//!   `INVALID_PAYLOAD`, `INVALID_CLIENT`, `LIMIT_EXCEEDED`, ...), with its reason;
//! - the hub could not be reached, did not answer in time, or something that is not a hub
//!   answered (a gateway's 502, a 500, a web page): `UNAVAILABLE`. PROTOCOL.md treats a
//!   failed app hook the same way (unreachable, timeout, 5xx or a bad answer are all
//!   `UNAVAILABLE`); the [`Cause`] and the message say which it was.
//!
//! Through Redis (a `redis://` URL) there is no hub to refuse: the publisher applies the
//! hub's rules itself ([`Error::Declined`]: a bad channel name, the history of a channel
//! that keeps none, a direct message nobody received, a call Redis cannot make), and a
//! Redis that cannot be reached, does not answer in time or answers with an error is
//! `UNAVAILABLE`.

use hubbub_core::api::AnswerError;
use hubbub_core::{Error as Name, Rejection};
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

/// The code of every failure that is not the hub's refusal.
pub const UNAVAILABLE: &str = "UNAVAILABLE";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The hub refused the call with one of the protocol's error names (or a gateway in
    /// front of it refused an oversized body: `LIMIT_EXCEEDED`).
    Refused {
        /// The error name and the hub's reason.
        rejection: Rejection,
        /// The HTTP status of the answer.
        status: u16,
        /// The URL called.
        url: String,
    },
    /// The call was not sent: its data has no JSON form (`INVALID_PAYLOAD`).
    Invalid(Rejection),
    /// Through Redis, where there is no hub to ask: refused by the rules a hub applies, as
    /// a hub would have refused it (`INVALID_PAYLOAD` for a bad channel name,
    /// `INVALID_CHANNEL` for the history of a channel that keeps none, `INVALID_CLIENT`
    /// for a direct message nobody received), or a call Redis cannot make
    /// (`UNKNOWN_COMMAND`).
    Declined {
        /// The error name and the reason.
        rejection: Rejection,
        /// The Redis URL, without its password.
        url: String,
    },
    /// `UNAVAILABLE`: no answer from a hub (or the hubs' Redis) at `url`.
    Unavailable {
        /// The URL called (a Redis URL without its password).
        url: String,
        /// What happened instead of an answer.
        cause: Cause,
    },
}

/// What happened instead of a hub's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// No connection, or it broke: refused, reset, DNS failure, a certificate not trusted.
    Unreachable(String),
    /// No answer within the publisher's time limit.
    Timeout(Duration),
    /// An answer that is not a hub's: a gateway saying the hub is down (502, 503, 504),
    /// any other status without the protocol's error body, or a body that cannot be read.
    Answer {
        /// The HTTP status.
        status: u16,
        /// The status and the start of the body.
        detail: String,
    },
    /// The hubs' Redis answered with an error: a wrong password, a command its ACL does
    /// not allow, a key of another type, ...
    Redis(String),
}

impl Error {
    /// The error name: one of the protocol's (`"ACCESS_DENIED"`, ...) or
    /// [`UNAVAILABLE`].
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused { rejection, .. }
            | Error::Invalid(rejection)
            | Error::Declined { rejection, .. } => rejection.error.name(),
            Error::Unavailable { .. } => UNAVAILABLE,
        }
    }

    /// The protocol's error name, where the hub (or core) refused.
    pub fn name(&self) -> Option<Name> {
        self.rejection().map(|r| r.error)
    }

    /// The refusal, where the hub (or core) refused.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Error::Refused { rejection, .. }
            | Error::Invalid(rejection)
            | Error::Declined { rejection, .. } => Some(rejection),
            Error::Unavailable { .. } => None,
        }
    }

    /// The explanation: the hub's reason for a refusal (if it gave one), or what happened
    /// instead of an answer.
    pub fn reason(&self) -> Option<String> {
        match self {
            Error::Refused { rejection, .. }
            | Error::Invalid(rejection)
            | Error::Declined { rejection, .. } => rejection.reason.clone(),
            Error::Unavailable { url, cause } => {
                let what = if url.starts_with("redis") {
                    "the Redis"
                } else {
                    "the hub"
                };
                Some(match cause {
                    Cause::Unreachable(detail) => format!("cannot reach {what} at {url}: {detail}"),
                    Cause::Timeout(after) => format!(
                        "{what} at {url} did not answer within {}s",
                        after.as_secs_f64()
                    ),
                    Cause::Answer { detail, .. } => {
                        format!("{url} did not answer as a hub does: {detail}")
                    }
                    Cause::Redis(detail) => format!("the Redis at {url} answered: {detail}"),
                })
            }
        }
    }

    /// The HTTP status of the answer, where there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Refused { status, .. }
            | Error::Unavailable {
                cause: Cause::Answer { status, .. },
                ..
            } => Some(*status),
            _ => None,
        }
    }

    /// The URL called, where a call was made.
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::Refused { url, .. }
            | Error::Unavailable { url, .. }
            | Error::Declined { url, .. } => Some(url),
            Error::Invalid(_) => None,
        }
    }

    /// Whether the hub did not answer within the time limit.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Error::Unavailable {
                cause: Cause::Timeout(_),
                ..
            }
        )
    }

    /// Whether the hub could not be reached or did not answer like a hub (`UNAVAILABLE`):
    /// the kind of failure worth trying again later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// A failure of the HTTP client: a timeout, or the hub out of reach.
    pub(crate) fn from_http(url: &reqwest::Url, timeout: Duration, err: reqwest::Error) -> Error {
        let cause = if err.is_timeout() {
            Cause::Timeout(timeout)
        } else {
            Cause::Unreachable(describe(&err))
        };
        Error::Unavailable {
            url: url.to_string(),
            cause,
        }
    }

    /// A hub's answer that is not the one expected, read by core.
    pub(crate) fn from_answer(url: &reqwest::Url, status: u16, err: AnswerError) -> Error {
        let url = url.to_string();
        match err {
            AnswerError::Refused(rejection) => Error::Refused {
                rejection,
                status,
                url,
            },
            AnswerError::Unavailable(detail) | AnswerError::Unexpected(detail) => {
                Error::Unavailable {
                    url,
                    cause: Cause::Answer { status, detail },
                }
            }
        }
    }
}

impl fmt::Display for Error {
    /// `"CODE: reason"`, and for a refusal the status and URL:
    /// `"INVALID_PAYLOAD: bad channel name (HTTP 400 from http://.../api/publish)"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused {
                rejection,
                status,
                url,
            } => write!(f, "{rejection} (HTTP {status} from {url})"),
            Error::Invalid(rejection) => rejection.fmt(f),
            Error::Declined { rejection, url } => write!(f, "{rejection} (through {url})"),
            Error::Unavailable { .. } => {
                write!(f, "{UNAVAILABLE}: {}", self.reason().unwrap_or_default())
            }
        }
    }
}

impl std::error::Error for Error {}

/// What a reqwest error says, from its causes (its own text repeats the URL), e.g.
/// "client error (Connect): tcp connect error: Connection refused (os error 111)".
fn describe(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !parts.iter().any(|p| p.contains(&said)) {
            parts.push(said);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_core::api::{read_answer, Published};

    fn answer(status: u16, body: &[u8]) -> Error {
        let url = reqwest::Url::parse("http://h/api/publish").unwrap();
        Error::from_answer(
            &url,
            status,
            read_answer::<Published>(status, body).unwrap_err(),
        )
    }

    #[test]
    fn refusals_keep_their_name_reason_and_status() {
        let e = answer(400, br#"{"err":"INVALID_PAYLOAD","reason":"bad channel"}"#);
        assert_eq!(e.code(), "INVALID_PAYLOAD");
        assert_eq!(e.name(), Some(Name::InvalidPayload));
        assert_eq!(e.reason().as_deref(), Some("bad channel"));
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            e.to_string(),
            "INVALID_PAYLOAD: bad channel (HTTP 400 from http://h/api/publish)"
        );
        let e = answer(401, br#"{"err":"INVALID_CREDENTIALS"}"#);
        assert_eq!(e.reason(), None);
        assert_eq!(
            e.to_string(),
            "INVALID_CREDENTIALS (HTTP 401 from http://h/api/publish)"
        );
        assert_eq!(answer(413, b"too big").code(), "LIMIT_EXCEEDED");
    }

    #[test]
    fn answers_that_are_not_a_hubs_are_unavailable() {
        for (status, body) in [
            (502, &b"<html>bad gateway</html>"[..]),
            (500, b"<html>oops</html>"),
            (200, b"<html>a page</html>"),
            (400, br#"{"err":"NOT_A_NAME"}"#),
        ] {
            let e = answer(status, body);
            assert_eq!(e.code(), UNAVAILABLE);
            assert!(e.is_unavailable() && !e.is_timeout());
            assert_eq!(e.status(), Some(status));
            assert!(
                e.to_string()
                    .starts_with("UNAVAILABLE: http://h/api/publish"),
                "{e}"
            );
        }
    }
}
