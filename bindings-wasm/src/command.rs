//! The commands the client sends, written as JSON text.
//!
//! hubbub-core's `Command` is the protocol's definition of a command, and it writes itself
//! with serde_json; linked into the package, serde_json's writer, its float formatting and
//! its error machinery weighed more than the state machine's answers to the server. The
//! client writes the same text itself: the arguments without application data are core's
//! types, application data is the text the browser's `JSON.stringify` wrote (`message`),
//! and a host test checks every command against core's serialization.

use hubbub_core::protocol::{ChannelRef, Credentials, HistoryQuery, Since, Subscribe};

/// A command of the protocol, as the client sends it.
pub(crate) enum Command {
    Authenticate(Credentials),
    Subscribe(Subscribe),
    Unsubscribe(ChannelRef),
    Presence(ChannelRef),
    History(HistoryQuery),
    /// `data` is JSON text.
    Broadcast {
        event: String,
        channel: String,
        data: String,
    },
    /// `data` is JSON text.
    Direct {
        event: String,
        client: String,
        data: String,
    },
    /// `data` is JSON text.
    Rpc {
        method: String,
        data: String,
    },
    /// The heartbeat's ping, numbered.
    Ping(u64),
}

impl Command {
    /// The frame's JSON text: `{"<command>": <argument>}`, fields in core's order.
    pub fn to_json(&self) -> String {
        let mut json = Json(String::new());
        let (name, fields): (&str, &[(&str, Value)]) = match self {
            Command::Authenticate(Credentials::Token { token }) => {
                ("authenticate", &[("token", Value::Str(token))])
            }
            Command::Authenticate(Credentials::User { user, secret }) => (
                "authenticate",
                &[("user", Value::Str(user)), ("secret", Value::Str(secret))],
            ),
            Command::Subscribe(Subscribe { channel, since }) => {
                let since = match since {
                    None => Value::None,
                    Some(Since::Latest) => Value::Str("latest"),
                    Some(Since::Position(p)) => Value::Position(&p.epoch, p.offset),
                };
                (
                    "subscribe",
                    &[("channel", Value::Str(channel)), ("since", since)],
                )
            }
            Command::Unsubscribe(ChannelRef { channel }) => {
                ("unsubscribe", &[("channel", Value::Str(channel))])
            }
            Command::Presence(ChannelRef { channel }) => {
                ("presence", &[("channel", Value::Str(channel))])
            }
            Command::History(HistoryQuery {
                channel,
                limit,
                since,
            }) => (
                "history",
                &[
                    ("channel", Value::Str(channel)),
                    (
                        "limit",
                        limit.map_or(Value::None, |n| Value::Number(n.into())),
                    ),
                    ("since", since.map_or(Value::None, Value::Number)),
                ],
            ),
            Command::Broadcast {
                event,
                channel,
                data,
            } => (
                "broadcast",
                &[
                    ("event", Value::Str(event)),
                    ("channel", Value::Str(channel)),
                    ("data", Value::Json(data)),
                ],
            ),
            Command::Direct {
                event,
                client,
                data,
            } => (
                "direct",
                &[
                    ("event", Value::Str(event)),
                    ("client", Value::Str(client)),
                    ("data", Value::Json(data)),
                ],
            ),
            Command::Rpc { method, data } => (
                "rpc",
                &[("method", Value::Str(method)), ("data", Value::Json(data))],
            ),
            Command::Ping(n) => {
                json.0.push_str("{\"ping\":");
                json.number(*n);
                json.0.push('}');
                return json.0;
            }
        };
        json.0.push_str("{\"");
        json.0.push_str(name);
        json.0.push_str("\":");
        json.object(fields);
        json.0.push('}');
        json.0
    }
}

/// A field's value; `None` leaves the field out (core's `skip_serializing_if`).
#[derive(Clone, Copy)]
enum Value<'a> {
    None,
    Str(&'a str),
    Number(u64),
    /// JSON text, written as it is.
    Json(&'a str),
    /// A `StreamPosition`: `{"epoch": .., "offset": ..}`.
    Position(&'a str, u64),
}

struct Json(String);

impl Json {
    /// An object of the fields that have a value. The names are the protocol's, which need
    /// no escaping.
    fn object(&mut self, fields: &[(&str, Value)]) {
        let mut separator = '{';
        for &(name, value) in fields {
            if let Value::None = value {
                continue;
            }
            self.0.push(separator);
            separator = ',';
            self.0.push('"');
            self.0.push_str(name);
            self.0.push_str("\":");
            match value {
                Value::None => {}
                Value::Str(s) => self.string(s),
                Value::Number(n) => self.number(n),
                Value::Json(text) => self.0.push_str(text),
                Value::Position(epoch, offset) => self.object(&[
                    ("epoch", Value::Str(epoch)),
                    ("offset", Value::Number(offset)),
                ]),
            }
        }
        if separator == '{' {
            self.0.push('{');
        }
        self.0.push('}');
    }

    /// A string, escaped as serde_json escapes it.
    fn string(&mut self, s: &str) {
        self.0.push('"');
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                '\u{8}' => self.0.push_str("\\b"),
                '\u{c}' => self.0.push_str("\\f"),
                c if c < ' ' => {
                    self.0.push_str("\\u00");
                    self.0.push(hex(c as u32 >> 4));
                    self.0.push(hex(c as u32 & 0xf));
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn number(&mut self, n: u64) {
        if n >= 10 {
            self.number(n / 10);
        }
        self.0.push(hex((n % 10) as u32));
    }
}

/// A digit below 16, in lower case.
fn hex(digit: u32) -> char {
    char::from_digit(digit, 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::Command;
    use hubbub_core::protocol::{self as core, RawJson, StreamPosition};
    use hubbub_core::protocol::{ChannelRef, Credentials, HistoryQuery, Since, Subscribe};

    /// Every command the client writes is exactly core's serialization of it.
    #[test]
    fn commands_are_written_as_core_writes_them() {
        let odd = "q\"uo\\te \n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é 😀";
        let data = r#"{"a":[1,2.5,"x",null,true],"b":{}}"#;
        let raw = || RawJson::from_string(data.to_owned()).unwrap();
        let position = StreamPosition {
            epoch: "e1".into(),
            offset: u64::MAX,
        };
        let cases = [
            (
                Command::Authenticate(Credentials::Token { token: odd.into() }),
                core::Command::Authenticate(Credentials::Token { token: odd.into() }),
            ),
            (
                Command::Authenticate(Credentials::User {
                    user: "u".into(),
                    secret: odd.into(),
                }),
                core::Command::Authenticate(Credentials::User {
                    user: "u".into(),
                    secret: odd.into(),
                }),
            ),
            (
                Command::Subscribe(Subscribe {
                    channel: "room:1".into(),
                    since: Some(Since::Position(position.clone())),
                }),
                core::Command::Subscribe(Subscribe {
                    channel: "room:1".into(),
                    since: Some(Since::Position(position.clone())),
                }),
            ),
            (
                Command::Subscribe(Subscribe {
                    channel: "room:1".into(),
                    since: Some(Since::Latest),
                }),
                core::Command::Subscribe(Subscribe {
                    channel: "room:1".into(),
                    since: Some(Since::Latest),
                }),
            ),
            (
                Command::Subscribe(Subscribe {
                    channel: "c".into(),
                    since: None,
                }),
                core::Command::Subscribe(Subscribe {
                    channel: "c".into(),
                    since: None,
                }),
            ),
            (
                Command::Unsubscribe(ChannelRef {
                    channel: "c".into(),
                }),
                core::Command::Unsubscribe(ChannelRef {
                    channel: "c".into(),
                }),
            ),
            (
                Command::Presence(ChannelRef {
                    channel: "c".into(),
                }),
                core::Command::Presence(ChannelRef {
                    channel: "c".into(),
                }),
            ),
            (
                Command::History(HistoryQuery {
                    channel: "c".into(),
                    limit: Some(0),
                    since: Some(1234567890),
                }),
                core::Command::History(HistoryQuery {
                    channel: "c".into(),
                    limit: Some(0),
                    since: Some(1234567890),
                }),
            ),
            (
                Command::History(HistoryQuery {
                    channel: "c".into(),
                    limit: None,
                    since: None,
                }),
                core::Command::History(HistoryQuery {
                    channel: "c".into(),
                    limit: None,
                    since: None,
                }),
            ),
            (
                Command::Broadcast {
                    event: odd.into(),
                    channel: "c".into(),
                    data: data.into(),
                },
                core::Command::Broadcast(core::Broadcast {
                    event: odd.into(),
                    channel: "c".into(),
                    data: raw(),
                }),
            ),
            (
                Command::Direct {
                    event: "e".into(),
                    client: "id".into(),
                    data: data.into(),
                },
                core::Command::Direct(core::Direct {
                    event: "e".into(),
                    client: "id".into(),
                    data: raw(),
                }),
            ),
            (
                Command::Rpc {
                    method: "m".into(),
                    data: data.into(),
                },
                core::Command::Rpc(core::Rpc {
                    method: "m".into(),
                    data: raw(),
                }),
            ),
            (
                Command::Ping(7),
                core::Command::Ping(RawJson::from_value(&7).unwrap()),
            ),
            (
                Command::Ping(0),
                core::Command::Ping(RawJson::from_value(&0).unwrap()),
            ),
        ];
        for (ours, theirs) in cases {
            assert_eq!(ours.to_json(), theirs.to_json());
        }
    }
}
