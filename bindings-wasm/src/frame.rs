//! Server frames, read with the browser's own `JSON.parse` and walked here.
//!
//! Parsing with serde_json in the WebAssembly would carry a JSON parser, serde's visitors
//! for every frame type and their error messages (with float formatting) into the package:
//! most of its weight. The browser has a JSON parser already. What the client needs to
//! steer itself (the frame's kind, channels, offsets, positions, error names) is read into
//! hubbub-core's types ([`Resubscribed`], [`Rejection`]); what goes to the application's
//! callbacks (a message, a join, a history page, ...) is the parsed object itself, whose
//! shape is the protocol's (`docs/protocol.md`), `data` included, decoded once.

use crate::error::get;
use crate::options::whole_number;
use hubbub_core::protocol::Resubscribed;
use hubbub_core::{Error, Rejection};
use js_sys::{Object, JSON};
use wasm_bindgen::{JsCast, JsValue};

/// One frame from the hub.
pub(crate) enum Frame {
    /// The welcome, with this connection's client id.
    Connected(String),
    /// A publication: its channel and offset (where the channel keeps history), and the
    /// object the subscriptions' callbacks receive, `{channel, event, data, offset?, from?}`.
    Message {
        channel: String,
        offset: Option<u64>,
        object: JsValue,
    },
    /// `{event, data, from?}`, for the direct-message handlers.
    DirectMessage(JsValue),
    /// `{channel, client, user, info?}`
    Join(String, JsValue),
    /// `{channel, client, user}`
    Leave(String, JsValue),
    /// The answer to a subscription with `since`.
    Resubscribed(Resubscribed),
    /// `{channel, epoch, offset, messages}`
    History(JsValue),
    /// `{channel, clients}`
    Presence(JsValue),
    /// The app's data, or its error as a `HubbubError`.
    RpcResult(Result<JsValue, JsValue>),
    /// An `err` frame.
    Err(Rejection),
    /// Any other answer (`subscribed`, `authenticated`, `pong`, ...): its kind says all.
    Answer,
}

impl Frame {
    /// Reads one frame's text.
    pub fn parse(text: &str) -> Result<Frame, Rejection> {
        let frame = JSON::parse(text).map_err(|_| malformed("not JSON"))?;
        if !frame.is_object() {
            return Err(malformed("not an object"));
        }
        let err = get(&frame, "err");
        if !err.is_undefined() {
            let error = err
                .as_string()
                .and_then(|name| Error::from_name(&name))
                .ok_or_else(|| malformed("an unknown error name"))?;
            let reason = get(&frame, "reason").as_string();
            return Ok(Frame::Err(Rejection { error, reason }));
        }
        let keys = Object::keys(frame.unchecked_ref::<Object>());
        if keys.length() != 1 {
            return Err(malformed("a frame holds exactly one key"));
        }
        let kind = keys
            .iter()
            .next()
            .and_then(|k| k.as_string())
            .unwrap_or_default();
        let arg = get(&frame, &kind);
        Ok(match kind.as_str() {
            "connected" => Frame::Connected(string(&arg, "client")?),
            "message" => Frame::Message {
                channel: string(&arg, "channel")?,
                offset: whole_number(&get(&arg, "offset")),
                object: arg,
            },
            "directMessage" => Frame::DirectMessage(arg),
            "join" => Frame::Join(string(&arg, "channel")?, arg),
            "leave" => Frame::Leave(string(&arg, "channel")?, arg),
            "resubscribed" => Frame::Resubscribed(Resubscribed {
                channel: string(&arg, "channel")?,
                recovered: get(&arg, "recovered").as_bool().unwrap_or(false),
                epoch: string(&arg, "epoch")?,
                offset: whole_number(&get(&arg, "offset"))
                    .ok_or_else(|| malformed("resubscribed without an offset"))?,
            }),
            "history" => Frame::History(arg),
            "presence" => Frame::Presence(arg),
            "rpcResult" => {
                let error = get(&arg, "error");
                Frame::RpcResult(if error.is_object() {
                    let code = string(&error, "code")?;
                    let reason = get(&error, "reason").as_string();
                    Err(crate::error::error(&code, reason.as_deref()))
                } else {
                    let data = get(&arg, "data");
                    Ok(if data.is_undefined() {
                        JsValue::NULL
                    } else {
                        data
                    })
                })
            }
            "authenticated" | "subscribed" | "unsubscribed" | "broadcasted" | "directSent"
            | "loggedOut" | "pong" => Frame::Answer,
            _ => return Err(Error::UnknownCommand.because("an unknown kind of frame")),
        })
    }
}

/// A string field the client needs.
fn string(object: &JsValue, key: &str) -> Result<String, Rejection> {
    get(object, key)
        .as_string()
        .ok_or_else(|| malformed("a field is missing or not a string"))
}

fn malformed(reason: &'static str) -> Rejection {
    Error::InvalidPayload.because(reason)
}
