//! The errors the client hands to JavaScript.
//!
//! Every error is a JS `Error` named `HubbubError` with a `code`: the protocol's error name
//! where the server refused something (`ACCESS_DENIED`, ...), or one of the client's own
//! codes below where the connection was not there to answer. The TypeScript declarations
//! list both (`ErrorCode` in `types.d.ts`).

use hubbub_core::Rejection;
use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// A command could not be answered: the client was not connected when it was called, or
/// the connection dropped before the answer came.
pub(crate) const DISCONNECTED: &str = "DISCONNECTED";

/// The client was closed (`close()`, or the server refused its credentials).
pub(crate) const CLOSED: &str = "CLOSED";

/// The codes the client adds to the protocol's error names.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const CLIENT_CODES: [&str; 2] = [DISCONNECTED, CLOSED];

/// A `HubbubError` with a code and an optional reason.
pub(crate) fn error(code: &str, reason: Option<&str>) -> JsValue {
    let mut message = code.to_owned();
    if let Some(reason) = reason {
        message.push_str(": ");
        message.push_str(reason);
    }
    let error = js_sys::Error::new(&message);
    set(&error, "name", &"HubbubError".into());
    set(&error, "code", &code.into());
    if let Some(reason) = reason {
        set(&error, "reason", &reason.into());
    }
    error.into()
}

/// The error for a connection the hub closed with one of its own codes: `closeCode` says
/// which.
pub(crate) fn closed(code: &str, reason: &str, close_code: u16) -> JsValue {
    let error = error(code, Some(reason));
    set(&error, "closeCode", &close_code.into());
    error
}

/// The error for a refusal by the server (or by the same rule checked before sending).
pub(crate) fn rejection(rejection: &Rejection) -> JsValue {
    error(rejection.error.name(), rejection.reason.as_deref())
}

/// The error for a refusal concerning one channel: the error carries the channel's name.
pub(crate) fn channel_rejection(rejection: &Rejection, channel: &str) -> JsValue {
    let error = self::rejection(rejection);
    set(&error, "channel", &channel.into());
    error
}

/// Sets a property on an object the client just created (which cannot fail), or an event
/// handler.
pub(crate) fn set(target: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &key.into(), value);
}

/// A property of an object; `undefined` where there is none, or `object` is none.
pub(crate) fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}
