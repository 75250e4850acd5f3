//! Why a call failed, and how that reaches JavaScript.
//!
//! A failure is either one of the protocol's error names (the hub refused, or core refused
//! before anything was sent) or `UNAVAILABLE` (the hub could not be reached, or did not
//! answer like a hub). It crosses into JavaScript as a plain `Error` whose message is
//! `"CODE: reason"`; the package's `index.js` reads the code back from that message and
//! throws a `HubbubError` instead.

use hubbub_core::api::AnswerError;
use hubbub_core::{Error, Rejection};
use napi_derive::napi;
use std::fmt;

/// The code of a failure that is not the hub's answer: the hub could not be reached (refused
/// connection, timeout, broken connection) or answered something that is not hubbub's API.
pub const UNAVAILABLE: &str = "UNAVAILABLE";

/// Every code a failure can carry: the protocol's error names, then `UNAVAILABLE`. The
/// package's `index.js` turns an error into a `HubbubError` only when its code is one of these.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    Error::ALL
        .iter()
        .map(|e| e.name())
        .chain([UNAVAILABLE])
        .collect()
}

/// Why a publisher call or a token operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A refusal with one of the protocol's error names.
    Rejected(Rejection),
    /// The hub could not be reached, or did not answer like a hub.
    Unavailable(String),
}

impl Failure {
    /// The error name: one of the protocol's, or [`UNAVAILABLE`].
    pub fn code(&self) -> &str {
        match self {
            Failure::Rejected(r) => r.error.name(),
            Failure::Unavailable(_) => UNAVAILABLE,
        }
    }
}

impl From<AnswerError> for Failure {
    /// A hub's refusal keeps its error name; a gateway that cannot reach the hub, or an
    /// answer that is not a hub's, is `UNAVAILABLE`.
    fn from(e: AnswerError) -> Failure {
        match e {
            AnswerError::Refused(rejection) => Failure::Rejected(rejection),
            AnswerError::Unavailable(detail) | AnswerError::Unexpected(detail) => {
                Failure::Unavailable(detail)
            }
        }
    }
}

impl fmt::Display for Failure {
    /// `"CODE: reason"`, or `"CODE"` when there is no reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Rejected(r) => r.fmt(f),
            Failure::Unavailable(reason) => write!(f, "{UNAVAILABLE}: {reason}"),
        }
    }
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Failure::Rejected(r)
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's Display stops at the outermost layer ("error sending request"); the
        // causes say what went wrong (connection refused, timed out, ...).
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Failure::Unavailable(reason)
    }
}

impl From<Failure> for napi::Error {
    fn from(f: Failure) -> Self {
        napi::Error::from_reason(f.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_core::api::{read_answer, Published};

    fn answer(status: u16, body: &[u8]) -> Failure {
        read_answer::<Published>(status, body).unwrap_err().into()
    }

    #[test]
    fn error_bodies_keep_their_name_and_reason() {
        let f = answer(401, br#"{"err":"INVALID_CREDENTIALS"}"#);
        assert_eq!(f.code(), "INVALID_CREDENTIALS");
        assert_eq!(f.to_string(), "INVALID_CREDENTIALS");
        let f = answer(400, br#"{"err":"INVALID_PAYLOAD","reason":"bad channel"}"#);
        assert_eq!(f.code(), "INVALID_PAYLOAD");
        assert_eq!(f.to_string(), "INVALID_PAYLOAD: bad channel");
    }

    #[test]
    fn answers_without_an_error_body() {
        assert_eq!(
            answer(413, b"length limit exceeded").code(),
            "LIMIT_EXCEEDED"
        );
        let f = answer(502, b"<html>bad gateway</html>");
        assert_eq!(f.code(), UNAVAILABLE);
        assert!(f.to_string().starts_with("UNAVAILABLE: "), "{f}");
        assert_eq!(answer(400, br#"{"err":"NOT_A_NAME"}"#).code(), UNAVAILABLE);
    }
}
