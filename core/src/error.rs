//! The protocol's error names, in one table.
//!
//! Every refusal the hub can give, over WebSocket (`{"err": "NAME"}`) or over the HTTP API,
//! is one of these variants. Their serialized form is exactly the name on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One error name of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Error {
    /// Not JSON, not an object, not exactly one key, wrong field types, missing fields,
    /// a bad channel name, or a binary frame.
    InvalidPayload,
    /// One key, but not a command of the protocol.
    UnknownCommand,
    /// A configured user with the wrong secret; a token with a bad signature, a bad
    /// algorithm, or a malformed token.
    InvalidCredentials,
    /// No configured user of that name.
    InvalidUser,
    /// A token whose signature is fine but whose `exp` is past.
    TokenExpired,
    /// No read permission (subscribe), no write permission (broadcast), or a direct
    /// message from an anonymous session. Over HTTP: the caller's address is not allowed.
    AccessDenied,
    /// A broadcast to a channel nobody is subscribed to.
    InvalidChannel,
    /// A direct message to an unknown client.
    InvalidClient,
    /// More subscriptions than `max_channels_per_client`, or an HTTP body over the limit.
    LimitExceeded,
    /// Commands sent faster than `client_rate`.
    RateLimited,
    /// The engine (Redis) or an app hook failed or timed out; HTTP 503 on the API.
    Unavailable,
}

impl Error {
    /// Every error name, in the order of the protocol's table.
    pub const ALL: [Error; 11] = [
        Error::InvalidPayload,
        Error::UnknownCommand,
        Error::InvalidCredentials,
        Error::InvalidUser,
        Error::TokenExpired,
        Error::AccessDenied,
        Error::InvalidChannel,
        Error::InvalidClient,
        Error::LimitExceeded,
        Error::RateLimited,
        Error::Unavailable,
    ];

    /// The name on the wire, e.g. `"INVALID_PAYLOAD"`.
    pub const fn name(self) -> &'static str {
        match self {
            Error::InvalidPayload => "INVALID_PAYLOAD",
            Error::UnknownCommand => "UNKNOWN_COMMAND",
            Error::InvalidCredentials => "INVALID_CREDENTIALS",
            Error::InvalidUser => "INVALID_USER",
            Error::TokenExpired => "TOKEN_EXPIRED",
            Error::AccessDenied => "ACCESS_DENIED",
            Error::InvalidChannel => "INVALID_CHANNEL",
            Error::InvalidClient => "INVALID_CLIENT",
            Error::LimitExceeded => "LIMIT_EXCEEDED",
            Error::RateLimited => "RATE_LIMITED",
            Error::Unavailable => "UNAVAILABLE",
        }
    }

    /// The error of that wire name, if it is one.
    pub fn from_name(name: &str) -> Option<Error> {
        Error::ALL.into_iter().find(|e| e.name() == name)
    }

    /// A refusal carrying this error and a human-readable reason.
    pub fn because(self, reason: impl Into<String>) -> Rejection {
        Rejection {
            error: self,
            reason: Some(reason.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for Error {}

/// An error name with an optional reason: what an `err` frame or an HTTP error body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error: Error,
    pub reason: Option<String>,
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Rejection {
            error,
            reason: None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(reason) => write!(f, "{}: {}", self.error, reason),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for e in Error::ALL {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.name()));
            assert_eq!(serde_json::from_str::<Error>(&json).unwrap(), e);
            assert_eq!(Error::from_name(e.name()), Some(e));
        }
        assert_eq!(Error::from_name("NOPE"), None);
    }
}
