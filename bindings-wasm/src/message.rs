//! Deliveries as the plain JS objects the application's callbacks receive, and
//! application data to and from JSON.
//!
//! `data` crosses the boundary as JSON text: the browser's own `JSON.parse` and
//! `JSON.stringify` turn it into a JS value and back, and core checks what goes out.

use crate::error::set;
use hubbub_core::protocol::{DirectMessage, Message, RawJson};
use hubbub_core::{Error, Rejection};
use js_sys::{Object, JSON};
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

/// The JS value of a delivery's data.
fn data(raw: &RawJson) -> JsValue {
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
