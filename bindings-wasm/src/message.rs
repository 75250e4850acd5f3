//! Deliveries as the plain JS objects the application's callbacks receive, and
//! application data to and from JSON.
//!
//! `data` crosses the boundary as JSON text: the browser's own `JSON.parse` and
//! `JSON.stringify` turn it into a JS value and back, and core checks what goes out.

use crate::error::set;
use hubbub_core::protocol::{
    DirectMessage, HistoryPage, Join, Leave, Message, Presence, RawJson, StreamPosition,
};
use hubbub_core::{Error, Rejection};
use js_sys::{Array, Object, JSON};
use wasm_bindgen::JsValue;

/// `{channel, event, data, offset?, from?}`
pub(crate) fn message(m: &Message) -> JsValue {
    let object: JsValue = Object::new().into();
    set(&object, "channel", &m.channel.as_str().into());
    set(&object, "event", &m.event.as_str().into());
    set(&object, "data", &data(&m.data));
    if let Some(offset) = m.offset {
        set(&object, "offset", &(offset as f64).into());
    }
    if let Some(from) = &m.from {
        set(&object, "from", &from.as_str().into());
    }
    object
}

/// `{event, data, from?}`
pub(crate) fn direct_message(m: &DirectMessage) -> JsValue {
    let object: JsValue = Object::new().into();
    set(&object, "event", &m.event.as_str().into());
    set(&object, "data", &data(&m.data));
    if let Some(from) = &m.from {
        set(&object, "from", &from.as_str().into());
    }
    object
}

/// `{recovered, epoch, offset}`: what `onRecover` hears after a resubscription.
pub(crate) fn recovery(recovered: bool, position: &StreamPosition) -> JsValue {
    let object = self::position(position);
    set(&object, "recovered", &recovered.into());
    object
}

/// `{epoch, offset}`
pub(crate) fn position(position: &StreamPosition) -> JsValue {
    let object: JsValue = Object::new().into();
    set(&object, "epoch", &position.epoch.as_str().into());
    set(&object, "offset", &(position.offset as f64).into());
    object
}

/// `{channel, client, user, info?}`
pub(crate) fn join(j: &Join) -> JsValue {
    let object = client(&j.channel, &j.client, j.user.as_deref());
    if let Some(info) = &j.info {
        set(&object, "info", &data(info));
    }
    object
}

/// `{channel, client, user}`
pub(crate) fn leave(l: &Leave) -> JsValue {
    client(&l.channel, &l.client, l.user.as_deref())
}

/// `{channel, epoch, offset, messages}`, the messages as deliveries are.
pub(crate) fn history(page: &HistoryPage) -> JsValue {
    let messages: Array = page.messages.iter().map(message).collect();
    let object = position(&StreamPosition {
        epoch: page.epoch.clone(),
        offset: page.offset,
    });
    set(&object, "channel", &page.channel.as_str().into());
    set(&object, "messages", &messages);
    object
}

/// `{channel, clients: [{client, user, info?}]}`
pub(crate) fn presence(p: &Presence) -> JsValue {
    let clients: Array = p
        .clients
        .iter()
        .map(|c| {
            let object: JsValue = Object::new().into();
            set(&object, "client", &c.client.as_str().into());
            set(&object, "user", &user(c.user.as_deref()));
            if let Some(info) = &c.info {
                set(&object, "info", &data(info));
            }
            object
        })
        .collect();
    let object: JsValue = Object::new().into();
    set(&object, "channel", &p.channel.as_str().into());
    set(&object, "clients", &clients);
    object
}

/// `{channel, client, user}`, the part a join and a leave share.
fn client(channel: &str, client: &str, who: Option<&str>) -> JsValue {
    let object: JsValue = Object::new().into();
    set(&object, "channel", &channel.into());
    set(&object, "client", &client.into());
    set(&object, "user", &user(who));
    object
}

/// A user id, `null` for an anonymous connection.
fn user(user: Option<&str>) -> JsValue {
    user.map_or(JsValue::NULL, JsValue::from)
}

/// The JS value of a delivery's (or an rpc answer's) data.
pub(crate) fn data(raw: &RawJson) -> JsValue {
    // The server passes on only valid JSON; null stands in should that ever not hold.
    JSON::parse(raw.get()).unwrap_or(JsValue::NULL)
}

/// A JS value as the JSON `data` of a command. Values JSON cannot express (undefined,
/// functions, symbols, cycles, BigInt) are `INVALID_PAYLOAD`.
pub(crate) fn to_json(value: &JsValue) -> Result<RawJson, Rejection> {
    let refused = || Error::InvalidPayload.because("data must be a value JSON can express");
    let text = JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(refused)?;
    RawJson::from_string(text).map_err(|_| refused())
}
