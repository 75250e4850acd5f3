//! The frames of the WebSocket protocol, both directions, with their exact JSON shapes.
//!
//! Every frame is one JSON object with exactly one key: the command (client to server) or
//! the kind of frame (server to client); the value is the argument. The one exception is
//! the `err` frame, which may carry a `reason` beside `err`.
//!
//! [`Command::parse`] is the one place a client frame is read, and [`ServerFrame::parse`]
//! the one place a server frame is read. Both serialize with serde. Application data is a
//! [`RawJson`]: kept as the bytes the publisher wrote and never re-encoded.

use crate::channel;
use crate::error::{Error, Rejection};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// A JSON value kept as the exact text it arrived as.
///
/// Publications carry their `data` this way from the publisher to every subscriber, so the
/// hub never parses application data into a tree or encodes it again.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Wraps JSON text after checking that it is one valid JSON value.
    pub fn from_string(json: String) -> Result<RawJson, serde_json::Error> {
        RawValue::from_string(json).map(RawJson)
    }

    /// Encodes any serializable value.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<RawJson, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(RawJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Decodes the JSON text.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }

    /// Reads an optional field whose value may be `null` (with `#[serde(default,
    /// deserialize_with = "RawJson::present")]`): serde reads `null` into an `Option` as
    /// `None`, which would lose the value `null`. Here the field is `Some` whenever it is
    /// there, and `None` only where it is absent.
    pub fn present<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<RawJson>, D::Error> {
        RawJson::deserialize(deserializer).map(Some)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(RawJson)
    }
}

/// The JSON literal `true`: the argument of `logout` and `disconnect`, and the answer
/// `loggedOut`. Any other value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct True;

impl Serialize for True {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for True {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match bool::deserialize(deserializer)? {
            true => Ok(True),
            false => Err(de::Error::custom("expected `true`")),
        }
    }
}

/// The WebSocket close codes the server uses.
pub mod close {
    /// After the client's `disconnect`.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down, or the peer stopped answering pings.
    pub const GOING_AWAY: u16 = 1001;
    /// The client could not keep up with its deliveries (reason `slow consumer`).
    pub const POLICY: u16 = 1008;
    /// The client sent a frame larger than `max_message_size`.
    pub const TOO_BIG: u16 = 1009;
    /// The application closed the connection through `POST /api/disconnect`: a client
    /// should not reconnect on its own.
    pub const DISCONNECTED: u16 = 4000;
    /// The session's token expired (its `exp` passed without a new `authenticate`): a
    /// client reconnects with a fresh token.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The node missed publications of a channel the client is subscribed to (the engine
    /// lost some on their way, e.g. while Redis was unreachable): the client reconnects
    /// and resubscribes with `since`, which fills the gap from history.
    pub const RESYNC: u16 = 4002;
    /// The connection may not be opened: its page's origin is not allowed, or the app's
    /// connect hook refused it. A client should not reconnect on its own.
    pub const ACCESS_DENIED: u16 = 4403;
    /// The app's connect hook failed; a client may retry later.
    pub const APP_UNAVAILABLE: u16 = 4503;
}

/// The most commands one `POST /connection/sse/{session}` may carry (one per line): a
/// session over Server-Sent Events sends more in several requests.
pub const COMMANDS_PER_POST: usize = 64;

// ---------------------------------------------------------------------------------------
// Client to server
// ---------------------------------------------------------------------------------------

/// A command from a client: one JSON object with exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Command {
    /// `{"authenticate": {"user": "u", "secret": "s"}}` or `{"authenticate": {"token": "<JWT>"}}`
    Authenticate(Credentials),
    /// `{"subscribe": {"channel": "c"}}`, with `since` (phase 2) to recover missed messages.
    Subscribe(Subscribe),
    /// `{"unsubscribe": {"channel": "c"}}`
    Unsubscribe(ChannelRef),
    /// `{"broadcast": {"event": "e", "channel": "c", "data": X}}`
    Broadcast(Broadcast),
    /// `{"direct": {"event": "e", "client": "<client-id>", "data": X}}`
    Direct(Direct),
    /// `{"logout": true}`
    Logout(True),
    /// `{"disconnect": true}`
    Disconnect(True),
    /// `{"ping": X}`, answered by `{"pong": X}` with the same value.
    Ping(RawJson),
    /// `{"presence": {"channel": "c"}}` (phase 2)
    Presence(ChannelRef),
    /// `{"history": {"channel": "c", "limit": 50}}` (phase 2)
    History(HistoryQuery),
    /// `{"rpc": {"method": "m", "data": X}}` (phase 2)
    Rpc(Rpc),
    /// One key that is not a command of the protocol; answered with `UNKNOWN_COMMAND`.
    #[serde(skip)]
    Unknown(String),
}

/// The argument of `authenticate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Credentials {
    /// A signed token (JWT), checked against the configured `token_secret`.
    Token { token: String },
    /// A user configured under `[[users]]`.
    User { user: String, secret: String },
}

/// The argument of `subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    pub channel: String,
    /// Where the client left off before a reconnect, or `"latest"` (phase 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Since>,
}

/// A position in a channel's history: the stream's epoch and an offset in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: String,
    pub offset: u64,
}

/// Where a resubscription starts: after a known position, or from now (`"latest"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// `"latest"`: subscribe from now and learn the current position.
    Latest,
    /// `{"epoch": "E", "offset": N}`: deliver what came after N first.
    Position(StreamPosition),
}

impl Serialize for Since {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Since::Latest => serializer.serialize_str("latest"),
            Since::Position(position) => position.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Since {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Word(String),
            Position(StreamPosition),
        }
        match Wire::deserialize(deserializer).map_err(|_| {
            de::Error::custom("since is \"latest\" or {\"epoch\": \"E\", \"offset\": N}")
        })? {
            Wire::Word(word) if word == "latest" => Ok(Since::Latest),
            Wire::Word(_) => Err(de::Error::custom(
                "since is \"latest\" or {\"epoch\": \"E\", \"offset\": N}",
            )),
            Wire::Position(position) => Ok(Since::Position(position)),
        }
    }
}

/// An argument naming one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    pub channel: String,
}

/// The argument of `broadcast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    pub event: String,
    pub channel: String,
    pub data: RawJson,
}

/// The argument of `direct`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Direct {
    pub event: String,
    pub client: String,
    pub data: RawJson,
}

/// The argument of `history` (phase 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    pub channel: String,
    /// At most this many messages: without `since` the newest ones, with it the first ones
    /// after it (all that are kept when absent; 0 for just the position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only messages after this offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// The argument of `rpc` (phase 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rpc {
    pub method: String,
    pub data: RawJson,
}

/// How deep a frame (or an HTTP body) may nest arrays and objects. Application data is
/// passed through to browsers, whose JSON parsers and renderers should never meet a
/// pathological nesting; real data stays far below.
pub const MAX_DEPTH: usize = 64;

/// Refuses JSON text that nests arrays and objects deeper than [`MAX_DEPTH`]. A scan of the
/// bytes (strings skipped), so that the check costs no parse and no recursion.
pub fn check_depth(text: &[u8]) -> Result<(), Rejection> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::InvalidPayload
                        .because(format!("JSON nests deeper than {MAX_DEPTH} levels")));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl Command {
    /// Reads one client frame.
    ///
    /// Not JSON, not an object, not exactly one key, a malformed argument or a bad channel
    /// name is `INVALID_PAYLOAD` (with a reason); one key that is no command is
    /// [`Command::Unknown`].
    pub fn parse(text: &str) -> Result<Command, Rejection> {
        check_depth(text.as_bytes())?;
        let entries = object_entries(text)?;
        let (name, arg) = match entries.as_slice() {
            [one] => one,
            [] => return Err(Error::InvalidPayload.because("empty object: expected one command")),
            _ => {
                return Err(Error::InvalidPayload
                    .because("several keys: a frame holds exactly one command"))
            }
        };
        let command = match name.as_str() {
            "authenticate" => Command::Authenticate(argument(name, arg).map_err(|_| {
                Error::InvalidPayload
                    .because("authenticate takes {\"user\", \"secret\"} or {\"token\"}")
            })?),
            "subscribe" => {
                let s: Subscribe = argument(name, arg)?;
                channel::validate(&s.channel)?;
                Command::Subscribe(s)
            }
            "unsubscribe" => Command::Unsubscribe(channel_argument(name, arg)?),
            "broadcast" => {
                let b: Broadcast = argument(name, arg)?;
                channel::validate(&b.channel)?;
                Command::Broadcast(b)
            }
            "direct" => Command::Direct(argument(name, arg)?),
            "logout" => Command::Logout(argument(name, arg)?),
            "disconnect" => Command::Disconnect(argument(name, arg)?),
            "ping" => Command::Ping(RawJson((*arg).to_owned())),
            "presence" => Command::Presence(channel_argument(name, arg)?),
            "history" => {
                let h: HistoryQuery = argument(name, arg)?;
                channel::validate(&h.channel)?;
                Command::History(h)
            }
            "rpc" => Command::Rpc(argument(name, arg)?),
            other => Command::Unknown(other.to_owned()),
        };
        Ok(command)
    }

    /// The command's name on the wire.
    pub fn name(&self) -> &str {
        match self {
            Command::Unknown(name) => name,
            known => known.label(),
        }
    }

    /// The command's name where the protocol has it, `"unknown"` for any other: a name
    /// from a closed set (for counting commands without a client choosing the names).
    pub fn label(&self) -> &'static str {
        match self {
            Command::Authenticate(_) => "authenticate",
            Command::Subscribe(_) => "subscribe",
            Command::Unsubscribe(_) => "unsubscribe",
            Command::Broadcast(_) => "broadcast",
            Command::Direct(_) => "direct",
            Command::Logout(_) => "logout",
            Command::Disconnect(_) => "disconnect",
            Command::Ping(_) => "ping",
            Command::Presence(_) => "presence",
            Command::History(_) => "history",
            Command::Rpc(_) => "rpc",
            Command::Unknown(_) => "unknown",
        }
    }

    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("commands always serialize")
    }
}

fn channel_argument(name: &str, arg: &RawValue) -> Result<ChannelRef, Rejection> {
    let c: ChannelRef = argument(name, arg)?;
    channel::validate(&c.channel)?;
    Ok(c)
}

fn argument<T: DeserializeOwned>(name: &str, arg: &RawValue) -> Result<T, Rejection> {
    serde_json::from_str(arg.get())
        .map_err(|e| Error::InvalidPayload.because(format!("{name}: {}", strip_position(&e))))
}

/// serde_json's messages end in "at line 1 column 17", which says nothing to a client
/// about its argument (the column is within the argument, not the frame).
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Reads a JSON object's entries in order, keeping duplicates and leaving values as raw
/// JSON, so that the caller can insist on exactly one key.
fn object_entries(text: &str) -> Result<Vec<(String, &RawValue)>, Rejection> {
    struct Entries;

    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, &'de RawValue)>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(1);
            while let Some(key) = map.next_key::<String>()? {
                entries.push((key, map.next_value::<&'de RawValue>()?));
            }
            Ok(entries)
        }
    }

    struct Object<'a>(Vec<(String, &'a RawValue)>);

    impl<'de> Deserialize<'de> for Object<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(Entries).map(Object)
        }
    }

    serde_json::from_str::<Object>(text)
        .map(|o| o.0)
        .map_err(|e| {
            let reason = if e.is_syntax() || e.is_eof() {
                format!("not JSON: {e}")
            } else {
                "not a JSON object".to_owned()
            };
            Error::InvalidPayload.because(reason)
        })
}

// ---------------------------------------------------------------------------------------
// Server to client
// ---------------------------------------------------------------------------------------

/// A frame from the server: an answer, a delivery or an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ServerFrame {
    /// The welcome, sent before anything else: `{"connected": {"client": "<client-id>"}}`,
    /// with `"user"` where the app's connect hook identified the connection.
    Connected {
        client: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// `{"authenticated": "<user or sub>"}`
    Authenticated(String),
    /// `{"subscribed": "c"}`
    Subscribed(String),
    /// The answer to a subscription with `since` (phase 2).
    Resubscribed(Resubscribed),
    /// `{"unsubscribed": "c"}`
    Unsubscribed(String),
    /// `{"broadcasted": "c"}`
    Broadcasted(String),
    /// `{"directSent": "<client-id>"}`
    DirectSent(String),
    /// `{"loggedOut": true}`
    LoggedOut(True),
    /// `{"pong": X}`, X being the ping's value.
    Pong(RawJson),
    /// Who is in a channel (phase 2).
    Presence(Presence),
    /// A page of a channel's history (phase 2).
    History(HistoryPage),
    /// The application's answer to an `rpc` (phase 2).
    RpcResult(RpcResult),
    /// A publication on a subscribed channel.
    Message(Message),
    /// A message addressed to this client.
    DirectMessage(DirectMessage),
    /// Someone subscribed to a channel with join/leave events (phase 2).
    Join(Join),
    /// Someone left a channel with join/leave events (phase 2).
    Leave(Leave),
    /// `{"err": "NAME"}`, optionally with `"reason"`.
    #[serde(untagged)]
    Err(ErrorBody),
}

/// The body of an `err` frame, and of every HTTP API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub err: Error,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Rejection> for ErrorBody {
    fn from(r: Rejection) -> Self {
        ErrorBody {
            err: r.error,
            reason: r.reason,
        }
    }
}

impl From<Error> for ErrorBody {
    fn from(err: Error) -> Self {
        ErrorBody { err, reason: None }
    }
}

impl From<ErrorBody> for Rejection {
    fn from(b: ErrorBody) -> Self {
        Rejection {
            error: b.err,
            reason: b.reason,
        }
    }
}

/// A publication as delivered to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    pub event: String,
    pub data: RawJson,
    /// The publication's place in the channel's history, where it keeps one (phase 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The sender, where a client (not the HTTP API) broadcast it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A message sent to one client (or to every connection of one user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectMessage {
    pub event: String,
    pub data: RawJson,
    /// The sender, where a client (not the HTTP API) sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The answer to a subscription with `since` (phase 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resubscribed {
    pub channel: String,
    pub recovered: bool,
    pub epoch: String,
    pub offset: u64,
}

/// One client present in a channel (phase 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresentClient {
    pub client: String,
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RawJson>,
}

/// Who is in a channel (phase 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub channel: String,
    pub clients: Vec<PresentClient>,
}

/// A page of a channel's history (phase 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub channel: String,
    pub epoch: String,
    pub offset: u64,
    pub messages: Vec<Message>,
}

/// The application's answer to an `rpc` (phase 2): its data, or its error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcResult {
    pub method: String,
    /// The method's data, `null` included; `None` where it answered an error.
    #[serde(
        default,
        deserialize_with = "RawJson::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<RawJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AppError>,
}

/// An error of the application's own, passed to the client as the app wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A client joined a channel (phase 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub channel: String,
    pub client: String,
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RawJson>,
}

/// A client left a channel (phase 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    pub channel: String,
    pub client: String,
    pub user: Option<String>,
}

impl ServerFrame {
    /// An `err` frame without a reason.
    pub fn error(error: Error) -> ServerFrame {
        ServerFrame::Err(error.into())
    }

    /// Reads one server frame (what a client does with every frame it receives).
    pub fn parse(text: &str) -> Result<ServerFrame, Rejection> {
        let entries = object_entries(text)?;
        if entries.iter().any(|(k, _)| k == "err") {
            let body: ErrorBody = serde_json::from_str(text).map_err(|e| {
                Error::InvalidPayload.because(format!("err: {}", strip_position(&e)))
            })?;
            return Ok(ServerFrame::Err(body));
        }
        let (name, arg) = match entries.as_slice() {
            [one] => one,
            _ => return Err(Error::InvalidPayload.because("a frame holds exactly one key")),
        };
        let frame = match name.as_str() {
            "connected" => {
                #[derive(Deserialize)]
                struct Welcome {
                    client: String,
                    #[serde(default)]
                    user: Option<String>,
                }
                let w: Welcome = argument(name, arg)?;
                ServerFrame::Connected {
                    client: w.client,
                    user: w.user,
                }
            }
            "authenticated" => ServerFrame::Authenticated(argument(name, arg)?),
            "subscribed" => ServerFrame::Subscribed(argument(name, arg)?),
            "resubscribed" => ServerFrame::Resubscribed(argument(name, arg)?),
            "unsubscribed" => ServerFrame::Unsubscribed(argument(name, arg)?),
            "broadcasted" => ServerFrame::Broadcasted(argument(name, arg)?),
            "directSent" => ServerFrame::DirectSent(argument(name, arg)?),
            "loggedOut" => ServerFrame::LoggedOut(argument(name, arg)?),
            "pong" => ServerFrame::Pong(RawJson((*arg).to_owned())),
            "presence" => ServerFrame::Presence(argument(name, arg)?),
            "history" => ServerFrame::History(argument(name, arg)?),
            "rpcResult" => ServerFrame::RpcResult(argument(name, arg)?),
            "message" => ServerFrame::Message(argument(name, arg)?),
            "directMessage" => ServerFrame::DirectMessage(argument(name, arg)?),
            "join" => ServerFrame::Join(argument(name, arg)?),
            "leave" => ServerFrame::Leave(argument(name, arg)?),
            other => return Err(Error::UnknownCommand.because(format!("unknown frame {other:?}"))),
        };
        Ok(frame)
    }

    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawJson {
        RawJson::from_string(s.to_owned()).unwrap()
    }

    /// Each command's exact JSON, parsed and written back.
    #[test]
    fn commands_have_their_exact_json() {
        let cases: Vec<(&str, Command)> = vec![
            (
                r#"{"authenticate":{"user":"u","secret":"s"}}"#,
                Command::Authenticate(Credentials::User {
                    user: "u".into(),
                    secret: "s".into(),
                }),
            ),
            (
                r#"{"authenticate":{"token":"a.b.c"}}"#,
                Command::Authenticate(Credentials::Token {
                    token: "a.b.c".into(),
                }),
            ),
            (
                r#"{"subscribe":{"channel":"c"}}"#,
                Command::Subscribe(Subscribe {
                    channel: "c".into(),
                    since: None,
                }),
            ),
            (
                r#"{"subscribe":{"channel":"c","since":{"epoch":"E","offset":3}}}"#,
                Command::Subscribe(Subscribe {
                    channel: "c".into(),
                    since: Some(Since::Position(StreamPosition {
                        epoch: "E".into(),
                        offset: 3,
                    })),
                }),
            ),
            (
                r#"{"subscribe":{"channel":"c","since":"latest"}}"#,
                Command::Subscribe(Subscribe {
                    channel: "c".into(),
                    since: Some(Since::Latest),
                }),
            ),
            (
                r#"{"unsubscribe":{"channel":"c"}}"#,
                Command::Unsubscribe(ChannelRef {
                    channel: "c".into(),
                }),
            ),
            (
                r#"{"broadcast":{"event":"e","channel":"c","data":{"foo":"bar"}}}"#,
                Command::Broadcast(Broadcast {
                    event: "e".into(),
                    channel: "c".into(),
                    data: raw(r#"{"foo":"bar"}"#),
                }),
            ),
            (
                r#"{"direct":{"event":"e","client":"id","data":[1,2]}}"#,
                Command::Direct(Direct {
                    event: "e".into(),
                    client: "id".into(),
                    data: raw("[1,2]"),
                }),
            ),
            (r#"{"logout":true}"#, Command::Logout(True)),
            (r#"{"disconnect":true}"#, Command::Disconnect(True)),
            (r#"{"ping":42}"#, Command::Ping(raw("42"))),
            (
                r#"{"presence":{"channel":"c"}}"#,
                Command::Presence(ChannelRef {
                    channel: "c".into(),
                }),
            ),
            (
                r#"{"history":{"channel":"c","limit":50}}"#,
                Command::History(HistoryQuery {
                    channel: "c".into(),
                    limit: Some(50),
                    since: None,
                }),
            ),
            (
                r#"{"history":{"channel":"c","limit":0,"since":7}}"#,
                Command::History(HistoryQuery {
                    channel: "c".into(),
                    limit: Some(0),
                    since: Some(7),
                }),
            ),
            (
                r#"{"rpc":{"method":"m","data":null}}"#,
                Command::Rpc(Rpc {
                    method: "m".into(),
                    data: raw("null"),
                }),
            ),
        ];
        for (json, command) in cases {
            assert_eq!(Command::parse(json).unwrap(), command, "{json}");
            assert_eq!(command.to_json(), json);
        }
    }

    #[test]
    fn data_is_kept_byte_for_byte() {
        let json =
            r#"{"broadcast":{"event":"e","channel":"c","data":{ "b" : 1.50, "a":"\u00e9" }}}"#;
        let Command::Broadcast(b) = Command::parse(json).unwrap() else {
            panic!()
        };
        assert_eq!(b.data.get(), r#"{ "b" : 1.50, "a":"\u00e9" }"#);
        let frame = ServerFrame::Message(Message {
            channel: b.channel,
            event: b.event,
            data: b.data,
            offset: None,
            from: None,
        });
        assert_eq!(
            frame.to_json(),
            r#"{"message":{"channel":"c","event":"e","data":{ "b" : 1.50, "a":"\u00e9" }}}"#
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let ok = format!(r#"{{"ping":{}}}"#, nest(MAX_DEPTH - 1));
        assert!(Command::parse(&ok).is_ok());
        let deep = format!(r#"{{"ping":{}}}"#, nest(MAX_DEPTH));
        assert_eq!(
            Command::parse(&deep).unwrap_err().error,
            Error::InvalidPayload
        );
        // Brackets inside strings do not count.
        let text = format!(r#"{{"ping":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(Command::parse(&text).is_ok());
    }

    #[test]
    fn unknown_commands_are_a_variant() {
        assert_eq!(
            Command::parse(r#"{"fly":{"to":"moon"}}"#).unwrap(),
            Command::Unknown("fly".into())
        );
    }

    #[test]
    fn bad_frames_are_invalid_payload() {
        for bad in [
            "",
            "nope",
            "[1,2]",
            "42",
            "\"subscribe\"",
            "{}",
            r#"{"ping":1,"pong":2}"#,
            r#"{"ping":1,"ping":2}"#,
            r#"{"subscribe":{}}"#,
            r#"{"subscribe":{"channel":5}}"#,
            r#"{"subscribe":"c"}"#,
            r#"{"subscribe":{"channel":"bad name"}}"#,
            r#"{"unsubscribe":{"channel":""}}"#,
            r#"{"broadcast":{"channel":"c","data":1}}"#,
            r#"{"broadcast":{"event":"e","channel":"c"}}"#,
            r#"{"direct":{"event":"e","data":1}}"#,
            r#"{"logout":false}"#,
            r#"{"logout":1}"#,
            r#"{"disconnect":"yes"}"#,
            r#"{"authenticate":{"user":"u"}}"#,
            r#"{"authenticate":"u"}"#,
            r#"{"subscribe":{"channel":"c"}"#,
            r#"{"subscribe":{"channel":"c","since":"earliest"}}"#,
            r#"{"subscribe":{"channel":"c","since":{"offset":1}}}"#,
            r#"{"subscribe":{"channel":"c","since":{"epoch":"E","offset":-1}}}"#,
            r#"{"history":{"channel":"c","limit":-1}}"#,
        ] {
            let err = Command::parse(bad).unwrap_err();
            assert_eq!(err.error, Error::InvalidPayload, "{bad}");
            assert!(err.reason.is_some(), "{bad}");
        }
    }

    /// Each server frame's exact JSON, written and parsed back.
    #[test]
    fn server_frames_have_their_exact_json() {
        let cases: Vec<(&str, ServerFrame)> = vec![
            (
                r#"{"connected":{"client":"abc"}}"#,
                ServerFrame::Connected {
                    client: "abc".into(),
                    user: None,
                },
            ),
            (
                r#"{"connected":{"client":"abc","user":"42"}}"#,
                ServerFrame::Connected {
                    client: "abc".into(),
                    user: Some("42".into()),
                },
            ),
            (
                r#"{"authenticated":"u"}"#,
                ServerFrame::Authenticated("u".into()),
            ),
            (r#"{"subscribed":"c"}"#, ServerFrame::Subscribed("c".into())),
            (
                r#"{"resubscribed":{"channel":"c","recovered":true,"epoch":"E","offset":9}}"#,
                ServerFrame::Resubscribed(Resubscribed {
                    channel: "c".into(),
                    recovered: true,
                    epoch: "E".into(),
                    offset: 9,
                }),
            ),
            (
                r#"{"unsubscribed":"c"}"#,
                ServerFrame::Unsubscribed("c".into()),
            ),
            (
                r#"{"broadcasted":"c"}"#,
                ServerFrame::Broadcasted("c".into()),
            ),
            (
                r#"{"directSent":"id"}"#,
                ServerFrame::DirectSent("id".into()),
            ),
            (r#"{"loggedOut":true}"#, ServerFrame::LoggedOut(True)),
            (r#"{"pong":{"n":1}}"#, ServerFrame::Pong(raw(r#"{"n":1}"#))),
            (
                r#"{"presence":{"channel":"c","clients":[{"client":"id","user":null},{"client":"j","user":"42","info":{"name":"ann"}}]}}"#,
                ServerFrame::Presence(Presence {
                    channel: "c".into(),
                    clients: vec![
                        PresentClient {
                            client: "id".into(),
                            user: None,
                            info: None,
                        },
                        PresentClient {
                            client: "j".into(),
                            user: Some("42".into()),
                            info: Some(raw(r#"{"name":"ann"}"#)),
                        },
                    ],
                }),
            ),
            (
                r#"{"history":{"channel":"c","epoch":"E","offset":2,"messages":[{"channel":"c","event":"e","data":1,"offset":2}]}}"#,
                ServerFrame::History(HistoryPage {
                    channel: "c".into(),
                    epoch: "E".into(),
                    offset: 2,
                    messages: vec![Message {
                        channel: "c".into(),
                        event: "e".into(),
                        data: raw("1"),
                        offset: Some(2),
                        from: None,
                    }],
                }),
            ),
            (
                r#"{"rpcResult":{"method":"m","data":[true]}}"#,
                ServerFrame::RpcResult(RpcResult {
                    method: "m".into(),
                    data: Some(raw("[true]")),
                    error: None,
                }),
            ),
            (
                r#"{"rpcResult":{"method":"m","data":null}}"#,
                ServerFrame::RpcResult(RpcResult {
                    method: "m".into(),
                    data: Some(raw("null")),
                    error: None,
                }),
            ),
            (
                r#"{"rpcResult":{"method":"m","error":{"code":"NOPE","reason":"no"}}}"#,
                ServerFrame::RpcResult(RpcResult {
                    method: "m".into(),
                    data: None,
                    error: Some(AppError {
                        code: "NOPE".into(),
                        reason: Some("no".into()),
                    }),
                }),
            ),
            (
                r#"{"message":{"channel":"c","event":"e","data":"x"}}"#,
                ServerFrame::Message(Message {
                    channel: "c".into(),
                    event: "e".into(),
                    data: raw("\"x\""),
                    offset: None,
                    from: None,
                }),
            ),
            (
                r#"{"message":{"channel":"c","event":"e","data":"x","offset":17,"from":"u"}}"#,
                ServerFrame::Message(Message {
                    channel: "c".into(),
                    event: "e".into(),
                    data: raw("\"x\""),
                    offset: Some(17),
                    from: Some("u".into()),
                }),
            ),
            (
                r#"{"directMessage":{"event":"e","data":{},"from":"u"}}"#,
                ServerFrame::DirectMessage(DirectMessage {
                    event: "e".into(),
                    data: raw("{}"),
                    from: Some("u".into()),
                }),
            ),
            (
                r#"{"join":{"channel":"c","client":"id","user":null}}"#,
                ServerFrame::Join(Join {
                    channel: "c".into(),
                    client: "id".into(),
                    user: None,
                    info: None,
                }),
            ),
            (
                r#"{"leave":{"channel":"c","client":"id","user":"u"}}"#,
                ServerFrame::Leave(Leave {
                    channel: "c".into(),
                    client: "id".into(),
                    user: Some("u".into()),
                }),
            ),
            (
                r#"{"err":"ACCESS_DENIED"}"#,
                ServerFrame::error(Error::AccessDenied),
            ),
            (
                r#"{"err":"INVALID_PAYLOAD","reason":"not JSON"}"#,
                ServerFrame::Err(Error::InvalidPayload.because("not JSON").into()),
            ),
        ];
        for (json, frame) in cases {
            assert_eq!(frame.to_json(), json);
            assert_eq!(ServerFrame::parse(json).unwrap(), frame, "{json}");
        }
    }

    #[test]
    fn every_error_name_is_an_err_frame() {
        for e in Error::ALL {
            let json = ServerFrame::error(e).to_json();
            assert_eq!(json, format!(r#"{{"err":"{}"}}"#, e.name()));
        }
    }
}
