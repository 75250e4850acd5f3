//! What the client builds as JS objects itself (positions, recoveries), and application
//! data as the JSON of a command. Deliveries reach the callbacks as the hub sent them,
//! parsed by the browser (`frame`).
//!
//! `data` goes out as JSON: the browser's own `JSON.stringify` says what a value is as JSON,
//! and core's `RawJson` carries it.

use crate::error::set;
use hubbub_core::protocol::{RawJson, StreamPosition};
use hubbub_core::{Error, Rejection};
use js_sys::{Array, Object, Reflect, JSON};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use wasm_bindgen::{JsCast, JsValue};

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
///
/// The browser's `JSON.stringify` decides what the value means as JSON (`toJSON`, dropped
/// `undefined` fields, ...) and `JSON.parse` makes that a plain value, which [`Plain`]
/// writes out through core's `RawJson`: checking JSON text that the browser wrote would
/// take a JSON parser into the package, for nothing.
pub(crate) fn to_json(value: &JsValue) -> Result<RawJson, Rejection> {
    let refused = || Error::InvalidPayload.because("data must be a value JSON can express");
    let text = JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(refused)?;
    let plain = JSON::parse(&text).map_err(|_| refused())?;
    RawJson::from_value(&Plain(plain)).map_err(|_| refused())
}

/// A value `JSON.parse` made: null, a boolean, a finite number, a string, an array or a
/// plain object of those.
struct Plain(JsValue);

impl Serialize for Plain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = &self.0;
        if let Some(b) = value.as_bool() {
            serializer.serialize_bool(b)
        } else if let Some(n) = value.as_f64() {
            // Whole numbers as JSON.stringify writes them, without a fraction.
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
                serializer.serialize_i64(n as i64)
            } else {
                serializer.serialize_f64(n)
            }
        } else if let Some(s) = value.as_string() {
            serializer.serialize_str(&s)
        } else if Array::is_array(value) {
            let array = Array::from(value);
            let mut seq = serializer.serialize_seq(Some(array.length() as usize))?;
            for item in array.iter() {
                seq.serialize_element(&Plain(item))?;
            }
            seq.end()
        } else if value.is_object() {
            let object: &Object = value.unchecked_ref();
            let keys = Object::keys(object);
            let mut map = serializer.serialize_map(Some(keys.length() as usize))?;
            for key in keys.iter() {
                let field = Reflect::get(object, &key).unwrap_or(JsValue::NULL);
                map.serialize_entry(&key.as_string().unwrap_or_default(), &Plain(field))?;
            }
            map.end()
        } else {
            serializer.serialize_unit()
        }
    }
}

/// The largest integer a JS number holds exactly.
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
