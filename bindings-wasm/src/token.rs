//! Tokens that refresh: the `getToken` option.
//!
//! The client reads `exp` from the token's claims (the middle part of the JWT, decoded by
//! the browser's own `atob` and `JSON.parse`; the signature is the hub's business) and asks
//! `getToken` for a new token before then: the new one goes out as `authenticate` on the
//! open connection, which the hub takes as the session's new identity and expiry, so the
//! page never reconnects for it. A token without `exp` is never refreshed.

use js_sys::{Function, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The browser's base64 decoder (on windows and workers alike).
    #[wasm_bindgen(catch)]
    fn atob(data: &str) -> Result<String, JsValue>;

    /// A promise whose `then` takes plain functions (js-sys's takes closures).
    #[wasm_bindgen(js_name = Promise)]
    type Thenable;

    #[wasm_bindgen(method)]
    fn then(this: &Thenable, resolve: &JsValue, reject: &JsValue);
}

/// The longest a token is refreshed ahead of its `exp`, in ms.
const AHEAD_MAX_MS: f64 = 30_000.0;

/// When a token should be replaced, in ms since the epoch: halfway through what is left of
/// its life, and no more than 30 s before `exp`; `None` for a token without `exp` (or not
/// a JWT), which lasts as long as the hub takes it.
pub(crate) fn refresh_at(token: &str, now: f64) -> Option<f64> {
    let left = exp_ms(token)? - now;
    Some(now + left - (left / 2.0).clamp(0.0, AHEAD_MAX_MS))
}

/// The `exp` claim, in ms since the epoch.
fn exp_ms(token: &str) -> Option<f64> {
    let claims = token.split('.').nth(1)?;
    // base64url without padding, which `atob` reads once made plain base64.
    let claims: String = claims
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let claims = JSON::parse(&atob(&claims).ok()?).ok()?;
    let exp = Reflect::get(&claims, &"exp".into()).ok()?.as_f64()?;
    Some(exp * 1000.0)
}

/// Calls `getToken` and hands its outcome to `done` once settled: `Ok` with what it
/// resolved to (or returned), `Err` with what it threw or rejected with.
pub(crate) fn fetch(get_token: &Function, done: impl FnOnce(Result<JsValue, JsValue>) + 'static) {
    let promise = match get_token.call0(&JsValue::UNDEFINED) {
        Ok(value) => Promise::resolve(&value),
        Err(thrown) => Promise::reject(&thrown),
    };
    on_settled(promise, done);
}

/// Hands a promise's outcome to `done` once settled.
pub(crate) fn on_settled(promise: Promise, done: impl FnOnce(Result<JsValue, JsValue>) + 'static) {
    // One closure for both outcomes, bound to each: exactly one of them runs, and a
    // once-closure frees itself when it runs (two closures would leak the one never run).
    let settle: Function = Closure::once_into_js(move |fulfilled: JsValue, value: JsValue| {
        done(if fulfilled.is_truthy() {
            Ok(value)
        } else {
            Err(value)
        })
    })
    .unchecked_into();
    promise.unchecked_ref::<Thenable>().then(
        &settle.bind1(&JsValue::NULL, &JsValue::TRUE),
        &settle.bind1(&JsValue::NULL, &JsValue::FALSE),
    );
}
