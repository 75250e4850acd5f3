//! What the client builds as JS objects itself (positions, recoveries), and application
//! data as the JSON of a command. Deliveries reach the callbacks as the hub sent them,
//! parsed by the browser (`frame`).
//!
//! `data` goes out as JSON: the browser's own `JSON.stringify` writes it, and the command
//! carries that text (`command`).

use crate::error::set;
use hubbub_core::protocol::StreamPosition;
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

/// A JS value as the JSON text of a command's `data`. Values JSON cannot express
/// (undefined, functions, symbols, cycles, BigInt) are `INVALID_PAYLOAD`.
///
/// The browser's `JSON.stringify` decides what the value means as JSON (`toJSON`, dropped
/// `undefined` fields, ...) and writes it: checking that text again would take a JSON
/// parser into the package, for nothing.
pub(crate) fn to_json(value: &JsValue) -> Result<String, Rejection> {
    JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| Error::InvalidPayload.because("data must be a value JSON can express"))
}

/// The largest integer a JS number holds exactly.
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
