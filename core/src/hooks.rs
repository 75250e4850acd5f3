//! App hooks (PROTOCOL.md section 10): what hubbub posts to the application and what the
//! application answers, and how every hook request is signed.
//!
//! Every hook request is a `POST` of JSON with `X-Hubbub-Timestamp: <unix seconds>` and
//! `X-Hubbub-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` under the shared
//! secret. The server signs with [`sign`]; every receiver (Django, Node, Rust) checks with
//! [`verify`], which also refuses a timestamp more than [`MAX_AGE_S`] away from now.

use crate::error::{Error, Rejection};
use crate::protocol::RawJson;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;

/// The header that carries the request's time, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-Hubbub-Timestamp";

/// The header that carries the request's signature, `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Hubbub-Signature";

/// How far (either way) a signed request's timestamp may be from the receiver's clock.
pub const MAX_AGE_S: u64 = 300;

/// The signature of `body` sent at `timestamp`, as the header carries it.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a hook request as a receiver gets it: the two headers' values (if present) and
/// the raw body, against the secret and the receiver's clock (`now`, Unix seconds).
/// `ACCESS_DENIED` with a reason when it does not hold.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), Rejection> {
    let timestamp = timestamp
        .ok_or_else(|| Error::AccessDenied.because(format!("no {TIMESTAMP_HEADER} header")))?;
    let signature = signature
        .ok_or_else(|| Error::AccessDenied.because(format!("no {SIGNATURE_HEADER} header")))?;
    let sent: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Error::AccessDenied.because("the timestamp is not a number of seconds"))?;
    if sent.abs_diff(now) > MAX_AGE_S {
        return Err(Error::AccessDenied.because(format!(
            "the request is {}s away from now (at most {MAX_AGE_S}s): replayed, or a clock is wrong",
            sent.abs_diff(now)
        )));
    }
    let hex_part = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| Error::AccessDenied.because("the signature is not sha256=<hex>"))?;
    let given = hex::decode(hex_part)
        .map_err(|_| Error::AccessDenied.because("the signature is not sha256=<hex>"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(sent.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Constant time: the comparison does not tell how much of a forged signature was right.
    mac.verify_slice(&given)
        .map_err(|_| Error::AccessDenied.because("bad signature"))
}

/// `connect`: who is this new connection? Posted with the upgrade request's forwarded
/// headers (the browser's session cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub client: String,
    pub ip: String,
    pub headers: BTreeMap<String, String>,
}

/// The app's answer to `connect`: a user, or `{}` for an anonymous connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConnectAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Map<String, serde_json::Value>>,
    /// How long the identity lasts, in seconds; the connection is closed (4001) after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// `subscribe`: may this connection subscribe to `channel`?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeRequest {
    pub client: String,
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RawJson>,
    pub channel: String,
    /// The first [`MAX_CLIENTS_LISTED`] clients in the channel.
    pub clients_in_channel: Vec<String>,
    pub clients_count: usize,
}

/// How many client ids a hook request lists at most.
pub const MAX_CLIENTS_LISTED: usize = 1000;

/// A message the app gives a new subscriber, for it alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitialMessage {
    #[serde(default = "default_event")]
    pub event: String,
    pub data: RawJson,
}

fn default_event() -> String {
    crate::api::DEFAULT_EVENT.to_owned()
}

/// The app's answer to `subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeAnswer {
    pub allow: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<InitialMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `rpc`: a client's own command, for the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    pub client: String,
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RawJson>,
    pub method: String,
    pub data: RawJson,
}

/// An error the app answers an `rpc` with; the client receives it as is.
pub use crate::protocol::AppError;

/// The app's answer to `rpc`: `{"data": Y}` or `{"error": {"code", "reason"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcAnswer {
    /// `Some` whenever the answer has `data`, `null` included (a method that returns
    /// nothing answers `{"data": null}`); `None` only where the key is absent.
    #[serde(
        default,
        deserialize_with = "RawJson::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AppError>,
}

/// What an event notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Unsubscribe,
    Disconnect,
    Logout,
}

/// `events`: a notice after an unsubscribe, a disconnect or a logout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventNotice {
    pub event: EventKind,
    pub client: String,
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients_in_channel: Vec<String>,
    #[serde(default)]
    pub clients_count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse() {
        let body = br#"{"client":"c"}"#;
        let sig = sign(b"s", 1_000, body);
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        let ok =
            |ts: &str, sig: &str, body: &[u8], now| verify(b"s", Some(ts), Some(sig), body, now);
        assert!(ok("1000", &sig, body, 1_000).is_ok());
        assert!(ok("1000", &sig, body, 1_000 + MAX_AGE_S).is_ok());
        let refusals = [
            ok("1000", &sig, br#"{"client":"d"}"#, 1_000),
            ok("1001", &sig, body, 1_000),
            ok("1000", &sig, body, 1_001 + MAX_AGE_S),
            ok("1000", &sign(b"other", 1_000, body), body, 1_000),
            ok("1000", "sha256=zz", body, 1_000),
            ok("1000", &sig[7..], body, 1_000),
            ok("soon", &sig, body, 1_000),
            verify(b"s", None, Some(&sig), body, 1_000),
            verify(b"s", Some("1000"), None, body, 1_000),
        ];
        for r in refusals {
            assert_eq!(r.unwrap_err().error, Error::AccessDenied);
        }
    }

    /// The signature is HMAC-SHA256 of "<timestamp>.<body>": a vector any receiver in any
    /// language can check itself against (Python's `hmac.new(b"secret",
    /// b"1700000000.{}", hashlib.sha256).hexdigest()` gives the same).
    #[test]
    fn the_signature_is_the_documented_hmac() {
        assert_eq!(
            sign(b"secret", 1700000000, b"{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn answers_read_as_documented() {
        let c: ConnectAnswer = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ConnectAnswer::default());
        let c: ConnectAnswer = serde_json::from_str(
            r#"{"user":"42","read":["room:*"],"info":{"name":"ann"},"expires_in":3600}"#,
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("42"));
        assert_eq!(c.expires_in, Some(3600));
        let s: SubscribeAnswer =
            serde_json::from_str(r#"{"allow":true,"messages":[{"event":"e","data":[1]}]}"#)
                .unwrap();
        assert!(s.allow);
        assert_eq!(s.messages[0].data.get(), "[1]");
        let r: RpcAnswer =
            serde_json::from_str(r#"{"error":{"code":"NOPE","reason":"no"}}"#).unwrap();
        assert!(r.data.is_none());
        assert_eq!(r.error.unwrap().code, "NOPE");
        // `null` is data like any other value.
        let r: RpcAnswer = serde_json::from_str(r#"{"data":null}"#).unwrap();
        assert_eq!(r.data.unwrap().get(), "null");
        assert!(r.error.is_none());
        let e = serde_json::to_string(&EventNotice {
            event: EventKind::Unsubscribe,
            client: "c".into(),
            user: None,
            channel: Some("room:1".into()),
            clients_in_channel: vec!["d".into()],
            clients_count: 1,
        })
        .unwrap();
        assert_eq!(
            e,
            r#"{"event":"unsubscribe","client":"c","user":null,"channel":"room:1","clients_in_channel":["d"],"clients_count":1}"#
        );
    }
}
