//! The bodies of the HTTP API (publishers), both directions.
//!
//! The server reads requests and writes answers with these types; the Python and Node
//! publishers write requests and read answers with the same types.

use crate::channel;
use crate::error::{Error, Rejection};
use crate::protocol::RawJson;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The event name used when a publisher gives none.
pub const DEFAULT_EVENT: &str = "message";

/// The hub's base URL when a publisher is given none: where `hubbub` listens in its
/// zero-config development mode.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9772";

fn default_event() -> String {
    DEFAULT_EVENT.to_owned()
}

/// `POST /api/publish`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishRequest {
    pub channel: String,
    pub data: RawJson,
    #[serde(default = "default_event")]
    pub event: String,
}

/// The answer to `POST /api/publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub published: String,
    /// The publication's offset, where the channel keeps history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The epoch of the channel's stream, where the channel keeps history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// `POST /api/broadcast`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastRequest {
    pub channels: Vec<String>,
    pub data: RawJson,
    #[serde(default = "default_event")]
    pub event: String,
}

/// The answer to `POST /api/broadcast`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastPublished {
    pub published: Vec<String>,
}

/// Whom a direct message or a disconnect is for: one connection, or every connection of
/// one user. On the wire it is `{"client": id}` or `{"user": sub}`, exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Client(String),
    User(String),
}

impl Target {
    /// The target named by two optional fields, as a request body or a publisher's
    /// arguments carry them: exactly one must be given, or it is `INVALID_PAYLOAD`.
    pub fn from_fields(client: Option<String>, user: Option<String>) -> Result<Target, Rejection> {
        match (client, user) {
            (Some(c), None) => Ok(Target::Client(c)),
            (None, Some(u)) => Ok(Target::User(u)),
            (None, None) => Err(Error::InvalidPayload.because("give \"client\" or \"user\"")),
            (Some(_), Some(_)) => {
                Err(Error::InvalidPayload.because("give \"client\" or \"user\", not both"))
            }
        }
    }

    /// The client id or the user's sub.
    pub fn name(&self) -> &str {
        match self {
            Target::Client(c) | Target::User(c) => c,
        }
    }
}

/// `POST /api/direct`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default = "default_event")]
    pub event: String,
    pub data: RawJson,
}

impl DirectRequest {
    /// A direct message for `target`.
    pub fn new(target: Target, event: String, data: RawJson) -> DirectRequest {
        let (client, user) = match target {
            Target::Client(c) => (Some(c), None),
            Target::User(u) => (None, Some(u)),
        };
        DirectRequest {
            client,
            user,
            event,
            data,
        }
    }

    /// Whom the message is for.
    pub fn target(&self) -> Result<Target, Rejection> {
        Target::from_fields(self.client.clone(), self.user.clone())
    }
}

/// The answer to `POST /api/direct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectDelivered {
    pub direct_sent: String,
    pub delivered: usize,
}

/// `POST /api/disconnect`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl DisconnectRequest {
    /// A disconnect of `target`.
    pub fn new(target: Target) -> DisconnectRequest {
        match target {
            Target::Client(c) => DisconnectRequest {
                client: Some(c),
                user: None,
            },
            Target::User(u) => DisconnectRequest {
                client: None,
                user: Some(u),
            },
        }
    }

    /// Whom to disconnect.
    pub fn target(&self) -> Result<Target, Rejection> {
        Target::from_fields(self.client.clone(), self.user.clone())
    }
}

/// The answer to `POST /api/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    pub disconnected: usize,
}

/// One channel in `GET /api/channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub subscribers: usize,
}

/// The answer to `GET /api/channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    pub channels: BTreeMap<String, ChannelStats>,
}

/// The answer to `GET /api/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub version: String,
    pub connections: usize,
    pub channels: usize,
    pub uptime_s: u64,
    /// Every live node of the cluster (one, this node, with the memory engine).
    #[serde(default)]
    pub nodes: Vec<NodeInfo>,
}

/// One node in `GET /api/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub connections: usize,
    pub uptime_s: u64,
}

/// The answer to `GET /api/history/{channel}`: the channel's position and the messages
/// asked for, oldest first (the same fields as the `history` frame, without its key).
pub type History = crate::protocol::HistoryPage;

/// The answer to `GET /api/presence/{channel}`: every connection subscribed.
pub use crate::protocol::Presence;

/// The answer to `GET /api/presence/{channel}?stats=1`: counts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceStats {
    pub channel: String,
    /// Connections subscribed.
    pub clients: usize,
    /// Distinct users among them.
    pub users: usize,
}

/// A page of a channel's history, as `GET /api/history/{channel}` answers it.
pub use crate::protocol::HistoryPage;

/// The answer to `GET /api/history/{channel}?limit=N&since=OFFSET`.
///
/// PROTOCOL.md gives the page both bare (section 6) and wrapped as the `history` command's
/// answer is, `{"history": {...}}` (section 8); a publisher reads either.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "HistoryFields")]
pub struct HistoryAnswer(HistoryPage);

impl HistoryAnswer {
    /// The page, however it was wrapped.
    pub fn into_page(self) -> HistoryPage {
        self.0
    }
}

/// Both forms of the history answer at once. (Not an untagged enum: serde buffers those,
/// and the messages' raw `data` cannot be read back from a buffer.)
#[derive(Deserialize)]
struct HistoryFields {
    history: Option<HistoryPage>,
    channel: Option<String>,
    epoch: Option<String>,
    offset: Option<u64>,
    messages: Option<Vec<crate::protocol::Message>>,
}

impl TryFrom<HistoryFields> for HistoryAnswer {
    type Error = &'static str;

    fn try_from(f: HistoryFields) -> Result<HistoryAnswer, Self::Error> {
        if let Some(page) = f.history {
            return Ok(HistoryAnswer(page));
        }
        match (f.channel, f.epoch, f.offset, f.messages) {
            (Some(channel), Some(epoch), Some(offset), Some(messages)) => {
                Ok(HistoryAnswer(HistoryPage {
                    channel,
                    epoch,
                    offset,
                    messages,
                }))
            }
            _ => Err("a history page needs history, or channel, epoch, offset and messages"),
        }
    }
}

/// The answer to `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// Why a call of the HTTP API did not give the answer the caller expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// The hub refused, with one of the protocol's error names (or a gateway in front of
    /// it refused an oversized body: `LIMIT_EXCEEDED`).
    Refused(Rejection),
    /// A gateway in front of the hub says the hub cannot be reached (HTTP 502, 503, 504).
    Unavailable(String),
    /// Something answered, but not as a hub does.
    Unexpected(String),
}

/// Reads an answer of the HTTP API as a publisher does: the expected body on a 2xx, the
/// hub's error body otherwise. Every publisher reads answers with this one function, so
/// they all agree on what each answer means.
pub fn read_answer<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &[u8],
) -> Result<T, AnswerError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| {
            AnswerError::Unexpected(format!(
                "HTTP {status} with an answer that cannot be read ({e}): {}",
                excerpt(body)
            ))
        });
    }
    if let Ok(refusal) = serde_json::from_slice::<crate::protocol::ErrorBody>(body) {
        return Err(AnswerError::Refused(refusal.into()));
    }
    match status {
        413 => Err(AnswerError::Refused(
            Error::LimitExceeded.because("the request body is over the limit"),
        )),
        502..=504 => Err(AnswerError::Unavailable(format!(
            "HTTP {status}: {}",
            excerpt(body)
        ))),
        _ => Err(AnswerError::Unexpected(format!(
            "HTTP {status} without an error body: {}",
            excerpt(body)
        ))),
    }
}

/// The start of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text.into_owned()
    }
}

/// Reads a request body, checking every channel name in it.
pub trait Request: Sized + serde::de::DeserializeOwned {
    /// The channel names the request carries, to be validated.
    fn channels(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Parses and validates a JSON body: `INVALID_PAYLOAD` with a reason when it is not.
    fn from_body(body: &[u8]) -> Result<Self, Rejection> {
        crate::protocol::check_depth(body)?;
        let request: Self = serde_json::from_slice(body)
            .map_err(|e| Error::InvalidPayload.because(e.to_string()))?;
        for c in request.channels() {
            channel::validate(c)?;
        }
        Ok(request)
    }
}

impl Request for PublishRequest {
    fn channels(&self) -> Vec<&str> {
        vec![&self.channel]
    }
}

impl Request for BroadcastRequest {
    fn channels(&self) -> Vec<&str> {
        self.channels.iter().map(String::as_str).collect()
    }

    fn from_body(body: &[u8]) -> Result<Self, Rejection> {
        crate::protocol::check_depth(body)?;
        let request: Self = serde_json::from_slice(body)
            .map_err(|e| Error::InvalidPayload.because(e.to_string()))?;
        if request.channels.is_empty() {
            return Err(Error::InvalidPayload.because("channels is empty"));
        }
        for c in request.channels() {
            channel::validate(c)?;
        }
        Ok(request)
    }
}

impl Request for DirectRequest {}
impl Request for DisconnectRequest {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_defaults_event_and_keeps_data() {
        let r = PublishRequest::from_body(br#"{"channel":"c","data":{"x": 1}}"#).unwrap();
        assert_eq!(r.event, "message");
        assert_eq!(r.data.get(), r#"{"x": 1}"#);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"channel":"c","data":{"x": 1},"event":"message"}"#
        );
    }

    #[test]
    fn bodies_are_validated() {
        for bad in [
            &b"nope"[..],
            br#"{"channel":"c"}"#,
            br#"{"channel":"bad name","data":1}"#,
            br#"{"channel":1,"data":1}"#,
            br#"[]"#,
        ] {
            assert_eq!(
                PublishRequest::from_body(bad).unwrap_err().error,
                Error::InvalidPayload
            );
        }
        assert!(BroadcastRequest::from_body(br#"{"channels":[],"data":1}"#).is_err());
        assert!(BroadcastRequest::from_body(br#"{"channels":["a","b c"],"data":1}"#).is_err());
    }

    #[test]
    fn targets_need_exactly_one_of_client_and_user() {
        let d = DirectRequest::from_body(br#"{"client":"x","data":1}"#).unwrap();
        assert_eq!(d.target().unwrap(), Target::Client("x".into()));
        let d = DisconnectRequest::from_body(br#"{"user":"42"}"#).unwrap();
        assert_eq!(d.target().unwrap(), Target::User("42".into()));
        assert!(DisconnectRequest::from_body(br#"{}"#)
            .unwrap()
            .target()
            .is_err());
        assert_eq!(
            Target::from_fields(None, Some("u".into())),
            Ok(Target::User("u".into()))
        );
        assert!(
            DisconnectRequest::from_body(br#"{"client":"a","user":"b"}"#)
                .unwrap()
                .target()
                .is_err()
        );
    }

    #[test]
    fn answers_are_read_alike_by_every_publisher() {
        let ok: Published = read_answer(200, br#"{"published":"c"}"#).unwrap();
        assert_eq!(ok.published, "c");
        let refused = read_answer::<Published>(401, br#"{"err":"INVALID_CREDENTIALS"}"#);
        assert_eq!(
            refused,
            Err(AnswerError::Refused(Error::InvalidCredentials.into()))
        );
        let refused = read_answer::<Published>(400, br#"{"err":"INVALID_PAYLOAD","reason":"r"}"#);
        assert_eq!(
            refused,
            Err(AnswerError::Refused(Error::InvalidPayload.because("r")))
        );
        assert!(matches!(
            read_answer::<Published>(413, b"length limit exceeded"),
            Err(AnswerError::Refused(Rejection {
                error: Error::LimitExceeded,
                ..
            }))
        ));
        assert!(matches!(
            read_answer::<Published>(502, b"<html>bad gateway</html>"),
            Err(AnswerError::Unavailable(_))
        ));
        assert!(matches!(
            read_answer::<Published>(400, br#"{"err":"NOT_A_NAME"}"#),
            Err(AnswerError::Unexpected(_))
        ));
        assert!(matches!(
            read_answer::<Published>(200, b"<html>"),
            Err(AnswerError::Unexpected(_))
        ));
    }

    #[test]
    fn history_pages_are_read_bare_or_wrapped() {
        let page = r#"{"channel":"c","epoch":"e","offset":2,"messages":[{"channel":"c","event":"m","data":1,"offset":2}]}"#;
        let wrapped = format!(r#"{{"history":{page}}}"#);
        for body in [page.as_bytes(), wrapped.as_bytes()] {
            let answer: HistoryAnswer = read_answer(200, body).unwrap();
            let page = answer.into_page();
            assert_eq!((page.epoch.as_str(), page.offset), ("e", 2));
            assert_eq!(page.messages[0].data.get(), "1");
        }
        assert!(read_answer::<HistoryAnswer>(200, br#"{"channel":"c"}"#).is_err());
        let stats: PresenceStats =
            read_answer(200, br#"{"channel":"c","clients":3,"users":2}"#).unwrap();
        assert_eq!((stats.clients, stats.users), (3, 2));
    }

    #[test]
    fn answers_have_their_exact_json() {
        let cases = [
            (
                serde_json::to_string(&Published {
                    published: "c".into(),
                    offset: None,
                    epoch: None,
                })
                .unwrap(),
                r#"{"published":"c"}"#,
            ),
            (
                serde_json::to_string(&Published {
                    published: "c".into(),
                    offset: Some(4),
                    epoch: Some("E".into()),
                })
                .unwrap(),
                r#"{"published":"c","offset":4,"epoch":"E"}"#,
            ),
            (
                serde_json::to_string(&PresenceStats {
                    channel: "c".into(),
                    clients: 3,
                    users: 2,
                })
                .unwrap(),
                r#"{"channel":"c","clients":3,"users":2}"#,
            ),
            (
                serde_json::to_string(&BroadcastPublished {
                    published: vec!["a".into(), "b".into()],
                })
                .unwrap(),
                r#"{"published":["a","b"]}"#,
            ),
            (
                serde_json::to_string(&DirectDelivered {
                    direct_sent: "x".into(),
                    delivered: 2,
                })
                .unwrap(),
                r#"{"directSent":"x","delivered":2}"#,
            ),
            (
                serde_json::to_string(&Disconnected { disconnected: 1 }).unwrap(),
                r#"{"disconnected":1}"#,
            ),
            (
                serde_json::to_string(&Channels {
                    channels: [("c".to_owned(), ChannelStats { subscribers: 3 })].into(),
                })
                .unwrap(),
                r#"{"channels":{"c":{"subscribers":3}}}"#,
            ),
            (
                serde_json::to_string(&Info {
                    version: "0.1.0".into(),
                    connections: 1,
                    channels: 2,
                    uptime_s: 3,
                    nodes: vec![NodeInfo {
                        id: "n".into(),
                        connections: 1,
                        uptime_s: 3,
                    }],
                })
                .unwrap(),
                r#"{"version":"0.1.0","connections":1,"channels":2,"uptime_s":3,"nodes":[{"id":"n","connections":1,"uptime_s":3}]}"#,
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
