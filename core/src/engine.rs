//! The Redis engine's layout: the keys and pub/sub topics hubbub uses in a shared Redis,
//! the Lua scripts that keep the channels' streams, what travels on a topic, and the
//! messages between nodes.
//!
//! Plain data and text, with no Redis client (core also compiles to WebAssembly): the
//! server's Redis engine (`server/src/engine/redis_broker.rs`) and hubbub-publisher's Redis
//! transport both build on it, so that a publication made straight into Redis is exactly
//! one made through a hub: the same topic, the same script, the same offsets, epochs and
//! history, and every subscriber on every node receives it.
//!
//! Keys, under the prefix `P` (the hubs' `redis_prefix`, [`DEFAULT_PREFIX`] unless set):
//!
//! | key | what | made by |
//! | --- | --- | --- |
//! | `P:t:<channel>` | the channel's pub/sub topic | [`topic`] |
//! | `P:m:<channel>` | the stream's epoch (`e`) and last offset (`o`), a hash | [`stream_keys`] |
//! | `P:h:<channel>` | the stream's kept messages, a list of lines | [`stream_keys`] |
//! | `P:control` | the topic every node listens to, for [`Control`] messages | [`control_topic`] |
//! | `P:nodes`, `P:nodes:expiry` | the live nodes, and when each stops counting as alive | [`nodes_keys`] |
//! | `P:p:<channel>`, `P:pe:<channel>` | presence: client id to its JSON, and expiries | [`presence_keys`] |
//!
//! The stream's two keys expire `history_ttl` after the last publication (the namespace's
//! [`StreamOptions`](crate::namespace::StreamOptions)); the list keeps the newest
//! `history_size` lines.
//!
//! What travels on a topic (and sits in a stream's list) is one line of text, see
//! [`Line`]: `m<offset> <message JSON>` for a publication (offset 0 where the channel has
//! no stream), `j<client JSON>` and `l<client JSON>` for a join and a leave, and on the
//! control topic `c<control JSON>`.
//!
//! Whoever can write to that Redis can publish anything on any channel this way (and
//! forge joins, leaves and messages between nodes): the Redis engine trusts its Redis.

use crate::api::{NodeInfo, Target};
use crate::protocol::{Message, PresentClient};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The prefix of every key and topic when the hubs' `redis_prefix` is not set.
pub const DEFAULT_PREFIX: &str = "hubbub";

/// Checks a `redis_prefix`: a word (not empty, no whitespace).
pub fn check_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        return Err("must be a word, e.g. \"hubbub\"");
    }
    Ok(())
}

/// Checks the scheme of one Redis URL: `redis://`. `rediss://` (TLS) is refused with the
/// way around, as the `redis` crate's TLS support is not built in.
pub fn check_redis_url(url: &str) -> Result<(), &'static str> {
    if url.starts_with("rediss://") {
        return Err(
            "uses TLS (rediss://), which is not built in yet: reach Redis over a \
                    private network, or through a TLS tunnel (stunnel, spiped) with a \
                    redis:// URL",
        );
    }
    if !url.starts_with("redis://") {
        return Err("is not a redis:// URL");
    }
    Ok(())
}

/// A Redis URL as it may be shown (in messages and logs): its password replaced by `***`,
/// in each URL of a comma-separated list. Done on the text, so that a URL that does not
/// parse (and is shown in the error saying so) loses its password too; everything up to
/// the last `@` after the scheme counts as the user and password.
pub fn shown_redis_url(url: &str) -> String {
    if url.contains(',') {
        return url
            .split(',')
            .map(shown_redis_url)
            .collect::<Vec<_>>()
            .join(",");
    }
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let Some(at) = url[start..].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// Adds `protocol=resp3` to a Redis URL that names no protocol: the engine's connections
/// speak RESP3, whose pushes tell a connection at once that Redis went away.
pub fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// The pub/sub topic of `channel`: `P:t:<channel>`.
pub fn topic(prefix: &str, channel: &str) -> String {
    format!("{prefix}:t:{channel}")
}

/// What every channel's topic starts with (`P:t:`): the channel is the rest.
pub fn topic_prefix(prefix: &str) -> String {
    format!("{prefix}:t:")
}

/// The stream of `channel`: its hash (epoch and last offset) and its list (the kept
/// lines), `P:m:<channel>` and `P:h:<channel>`.
pub fn stream_keys(prefix: &str, channel: &str) -> (String, String) {
    (
        format!("{prefix}:m:{channel}"),
        format!("{prefix}:h:{channel}"),
    )
}

/// The topic of the messages between nodes: `P:control`.
pub fn control_topic(prefix: &str) -> String {
    format!("{prefix}:control")
}

/// The live nodes (a hash of node id to its [`NodeInfo`] JSON) and when each stops
/// counting as alive (a sorted set of node ids by expiry in ms): `P:nodes`,
/// `P:nodes:expiry`.
pub fn nodes_keys(prefix: &str) -> (String, String) {
    (format!("{prefix}:nodes"), format!("{prefix}:nodes:expiry"))
}

/// The presence of `channel` (a hash of client id to its [`PresentClient`] JSON) and when
/// each entry expires (a sorted set): `P:p:<channel>`, `P:pe:<channel>`.
pub fn presence_keys(prefix: &str, channel: &str) -> (String, String) {
    (
        format!("{prefix}:p:{channel}"),
        format!("{prefix}:pe:{channel}"),
    )
}

/// Appends a publication to a stream and publishes it, atomically: the next offset, the
/// line kept, the list trimmed, both keys' ttl renewed, then `PUBLISH`.
///
/// KEYS: the stream's hash and list ([`stream_keys`]). ARGV: the topic ([`topic`]), the
/// message's JSON ([`message_json`]), `history_size`, `history_ttl` in ms, an epoch for a
/// stream that does not exist ([`epoch`]). Answers `{offset, epoch}`.
///
/// A channel whose namespace keeps no history has no stream: its publications are a plain
/// `PUBLISH` of [`publication_line`].
pub const PUBLISH_SCRIPT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local payload = 'm' .. offset .. ' ' .. ARGV[2]
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], payload)
return {offset, epoch}
"#;

/// A stream's position and kept lines, making the stream where there is none (so that
/// the position handed out stays good for the next publication).
///
/// KEYS: the stream's hash and list ([`stream_keys`]). ARGV: an epoch for a new stream
/// ([`epoch`]), `history_ttl` in ms, then the call's `since` and `limit`
/// ([`history_range`]). Answers `{epoch, offset, lines}`, the lines oldest first
/// ([`read_line`] reads them; [`select_history`] picks what the call asked for).
///
/// Only the lines the call may want are read: the list holds the newest publications, one
/// line each, at consecutive offsets ending at the stream's, so those after `since` are its
/// last `offset - since` lines (one more is read, in case the list and the offset ever
/// disagree; [`select_history`] filters by offset regardless).
pub const HISTORY_SCRIPT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local since = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local kept = redis.call('LLEN', KEYS[2])
local first, last = 0, kept - 1
if since >= 0 then
  if since >= offset then return {epoch, offset, {}} end
  first = math.max(0, kept - (offset - since) - 1)
  if limit >= 0 then last = math.min(last, first + limit) end
elseif limit >= 0 then
  if limit == 0 then return {epoch, offset, {}} end
  first = math.max(0, kept - limit)
end
return {epoch, offset, redis.call('LRANGE', KEYS[2], first, last)}
"#;

/// The `since` and `limit` arguments of [`HISTORY_SCRIPT`]: -1 where the call gives none.
pub fn history_range(since: Option<u64>, limit: Option<usize>) -> (i64, i64) {
    let arg = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
    (arg(since), arg(limit.map(|l| l as u64)))
}

/// Drops the nodes that stopped announcing themselves, then lists the rest.
///
/// KEYS: [`nodes_keys`]. ARGV: now, in ms since the Unix epoch. Answers the live nodes'
/// [`NodeInfo`] JSON.
pub const NODES_SCRIPT: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
end
return redis.call('HVALS', KEYS[1])
"#;

/// How long a request to every node ([`Control::Direct`], [`Control::Disconnect`],
/// [`Control::Channels`]) waits for their replies: the nodes that have not replied by
/// then are not counted.
pub const CLUSTER_WAIT: Duration = Duration::from_secs(1);

/// A new stream's epoch from 6 random bytes: 12 lowercase hex digits. Random, so that a
/// position in a stream that was lost (expired, a Redis that lost its data) is never
/// mistaken for one of the new stream.
pub fn epoch(random: [u8; 6]) -> String {
    hex::encode(random)
}

/// A message between the nodes of a cluster, not for subscribers: what the HTTP API and
/// `direct` ask of connections wherever they are, and the nodes' answers. Travels on
/// [`control_topic`] as a [`control_line`]; every node receives every one, its own
/// included, and answers each request with one [`Control::Reply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Control {
    /// Queue `frame` (an encoded `directMessage`) for the connections `target` names.
    Direct {
        request: String,
        target: Target,
        frame: String,
    },
    /// Close the connections `target` names, as `POST /api/disconnect` does (4000).
    Disconnect { request: String, target: Target },
    /// Tell how many subscribers each channel has.
    Channels { request: String },
    /// A node's answer to a request: how many connections it reached, or its channels.
    Reply {
        request: String,
        node: String,
        count: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channels: Option<BTreeMap<String, usize>>,
    },
}

impl Control {
    /// The id of the request, or of the request a reply answers.
    pub fn request(&self) -> &str {
        match self {
            Control::Direct { request, .. }
            | Control::Disconnect { request, .. }
            | Control::Channels { request }
            | Control::Reply { request, .. } => request,
        }
    }
}

/// One line read from a topic or a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A publication, with its offset where the channel has a stream.
    Message(Message),
    /// Someone subscribed to a channel with join/leave events.
    Join(PresentClient),
    /// Someone left a channel with join/leave events.
    Leave(PresentClient),
    /// A message between nodes (on the control topic).
    Control(Control),
}

/// A publication's JSON as its stream keeps it and its topic carries it: the message
/// without its offset (the line carries it).
pub fn message_json(message: &Message) -> String {
    let json = serde_json::to_string(message).expect("messages serialize");
    if message.offset.is_none() {
        return json;
    }
    let mut bare = message.clone();
    bare.offset = None;
    serde_json::to_string(&bare).expect("messages serialize")
}

/// The line of a publication on a channel without a stream: `m0 <message JSON>`.
/// ([`PUBLISH_SCRIPT`] writes those of channels with one.)
pub fn publication_line(message_json: &str) -> String {
    format!("m0 {message_json}")
}

/// The line telling a channel's subscribers that `client` joined: `j<client JSON>`.
pub fn join_line(client: &PresentClient) -> String {
    format!(
        "j{}",
        serde_json::to_string(client).expect("clients serialize")
    )
}

/// The line telling a channel's subscribers that `client` left: `l<client JSON>`.
pub fn leave_line(client: &PresentClient) -> String {
    format!(
        "l{}",
        serde_json::to_string(client).expect("clients serialize")
    )
}

/// The line of a message between nodes: `c<control JSON>`.
pub fn control_line(control: &Control) -> String {
    format!(
        "c{}",
        serde_json::to_string(control).expect("control messages serialize")
    )
}

/// Reads a line back; `None` for one that is not hubbub's.
pub fn read_line(line: &[u8]) -> Option<Line> {
    let text = std::str::from_utf8(line).ok()?;
    match text.as_bytes().first()? {
        b'm' => {
            let (offset, json) = text[1..].split_once(' ')?;
            let offset: u64 = offset.parse().ok()?;
            let mut message: Message = serde_json::from_str(json).ok()?;
            message.offset = (offset > 0).then_some(offset);
            Some(Line::Message(message))
        }
        b'j' => serde_json::from_str(&text[1..]).ok().map(Line::Join),
        b'l' => serde_json::from_str(&text[1..]).ok().map(Line::Leave),
        b'c' => serde_json::from_str(&text[1..]).ok().map(Line::Control),
        _ => None,
    }
}

/// The messages of a history call, from those a stream keeps (oldest first): with
/// `since`, the first `limit` after that offset; without, the newest `limit`; without
/// `limit`, all of them.
pub fn select_history(
    kept: Vec<Message>,
    since: Option<u64>,
    limit: Option<usize>,
) -> Vec<Message> {
    match since {
        Some(since) => kept
            .into_iter()
            .filter(|m| m.offset.is_some_and(|o| o > since))
            .take(limit.unwrap_or(usize::MAX))
            .collect(),
        None => {
            let n = limit.unwrap_or(kept.len()).min(kept.len());
            let skip = kept.len() - n;
            kept.into_iter().skip(skip).collect()
        }
    }
}

/// Reads the live nodes the [`NODES_SCRIPT`] lists, sorted by id; unreadable entries are
/// left out.
pub fn read_nodes(values: &[String]) -> Vec<NodeInfo> {
    let mut nodes: Vec<NodeInfo> = values
        .iter()
        .filter_map(|v| serde_json::from_str(v).ok())
        .collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RawJson;

    fn message(offset: Option<u64>) -> Message {
        Message {
            channel: "room:1".into(),
            event: "chat".into(),
            data: RawJson::from_string(r#"{"text":"hi"}"#.into()).unwrap(),
            offset,
            from: None,
        }
    }

    #[test]
    fn keys_and_topics() {
        assert_eq!(topic("hubbub", "room:1"), "hubbub:t:room:1");
        assert!(topic("p", "c").starts_with(&topic_prefix("p")));
        assert_eq!(
            stream_keys("p", "c"),
            ("p:m:c".to_owned(), "p:h:c".to_owned())
        );
        assert_eq!(control_topic("p"), "p:control");
        assert_eq!(
            nodes_keys("p"),
            ("p:nodes".to_owned(), "p:nodes:expiry".to_owned())
        );
        assert_eq!(
            presence_keys("p", "c"),
            ("p:p:c".to_owned(), "p:pe:c".to_owned())
        );
        assert!(check_prefix("hubbub").is_ok());
        assert_eq!(with_resp3("redis://h/0"), "redis://h/0?protocol=resp3");
        assert_eq!(
            with_resp3("redis://h/0?a=1"),
            "redis://h/0?a=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h?protocol=resp2"),
            "redis://h?protocol=resp2"
        );
        assert!(check_prefix("").is_err() && check_prefix("a b").is_err());
    }

    #[test]
    fn lines_read_back() {
        let json = message_json(&message(Some(7)));
        assert_eq!(
            json,
            r#"{"channel":"room:1","event":"chat","data":{"text":"hi"}}"#
        );
        assert_eq!(
            read_line(publication_line(&json).as_bytes()),
            Some(Line::Message(message(None)))
        );
        // What the publish script writes for offset 7.
        assert_eq!(
            read_line(format!("m7 {json}").as_bytes()),
            Some(Line::Message(message(Some(7))))
        );
        let client = PresentClient {
            client: "c1".into(),
            user: Some("u".into()),
            info: None,
        };
        assert_eq!(
            read_line(join_line(&client).as_bytes()),
            Some(Line::Join(client.clone()))
        );
        assert_eq!(
            read_line(leave_line(&client).as_bytes()),
            Some(Line::Leave(client))
        );
        let control = Control::Reply {
            request: "r".into(),
            node: "n".into(),
            count: 2,
            channels: None,
        };
        assert_eq!(
            control_line(&control),
            r#"c{"kind":"reply","request":"r","node":"n","count":2}"#
        );
        assert_eq!(
            read_line(control_line(&control).as_bytes()),
            Some(Line::Control(control))
        );
        for bad in [&b""[..], b"x", b"m1", b"mx {}", b"m1 {", b"j{", b"\xff"] {
            assert_eq!(read_line(bad), None);
        }
    }

    #[test]
    fn history_selection() {
        let kept: Vec<Message> = (1..=5).map(|o| message(Some(o))).collect();
        let offsets = |v: Vec<Message>| v.iter().map(|m| m.offset.unwrap()).collect::<Vec<_>>();
        assert_eq!(
            offsets(select_history(kept.clone(), None, None)),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(offsets(select_history(kept.clone(), None, Some(2))), [4, 5]);
        assert_eq!(
            offsets(select_history(kept.clone(), None, Some(9))),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(
            offsets(select_history(kept.clone(), Some(2), Some(2))),
            [3, 4]
        );
        assert_eq!(
            offsets(select_history(kept.clone(), Some(5), None)),
            [] as [u64; 0]
        );
        assert!(select_history(kept, None, Some(0)).is_empty());
    }

    #[test]
    fn epochs_are_twelve_hex_digits() {
        assert_eq!(epoch([0, 1, 0xab, 0xcd, 0xef, 0xff]), "0001abcdefff");
    }
}
