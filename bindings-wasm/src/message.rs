//! What the client builds as JS objects itself (positions, recoveries), and application
//! data as the JSON of a command. Deliveries reach the callbacks as the hub sent them,
//! parsed by the browser (`frame`).
//!
//! `data` goes out as JSON text: the browser's own `JSON.stringify` makes it, and core
//! checks it.

use crate::error::set;
use hubbub_core::protocol::{RawJson, StreamPosition};
use hubbub_core::{Error, Rejection};
use js_sys::{Object, JSON};
use wasm_bindgen::JsValue;

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
