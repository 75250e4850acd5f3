//! `hubbub._native`: the compiled half of the Python package `hubbub`.
//!
//! The package publishes to a hubbub hub over its HTTP API, mints the tokens browsers
//! connect with and checks the signatures of the hub's hook requests. It is a thin
//! wrapper: the publisher is `hubbub-publisher` (the URL and the environment, API keys,
//! kept-alive connections, every call, the reading of answers, the error names), tokens
//! are `hubbub-core`'s `auth::sign` and `auth::verify`, hook signatures its `hooks::sign`
//! and `hooks::verify`. This crate converts Python values, releases the GIL while calls
//! wait, runs asyncio's calls on an I/O thread and raises Python exceptions. The Python
//! files beside it (`python/hubbub/`) only re-export these names and add the asyncio glue
//! and the Django integration (its hook receivers included).
//!
//! - [`json`]: Python values to JSON and back.
//! - [`transport`]: the I/O thread and connection pool of asyncio's calls.
//! - [`publisher`]: the `Publisher` class and the callback-driven half of `AsyncPublisher`.
//! - [`token`]: `token()` and `verify_token()`.
//! - [`hooks`]: `verify_hook()`, `sign_hook()`, `pattern_matches()` and the hook headers'
//!   names.
//! - [`errors`]: the exception classes, one per protocol error name.

use pyo3::prelude::*;

mod errors;
mod hooks;
mod json;
mod publisher;
mod token;
mod transport;

/// The version of this package, which is the version of hubbub.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", VERSION)?;
    m.add_class::<publisher::Publisher>()?;
    m.add_class::<publisher::CallbackPublisher>()?;
    m.add_class::<publisher::PendingCall>()?;
    m.add_class::<json::Json>()?;
    m.add_function(wrap_pyfunction!(token::token, m)?)?;
    m.add_function(wrap_pyfunction!(token::verify_token, m)?)?;
    m.add_function(wrap_pyfunction!(hooks::verify_hook, m)?)?;
    m.add_function(wrap_pyfunction!(hooks::sign_hook, m)?)?;
    m.add_function(wrap_pyfunction!(hooks::pattern_matches, m)?)?;
    m.add(
        "HOOK_TIMESTAMP_HEADER",
        hubbub_core::hooks::TIMESTAMP_HEADER,
    )?;
    m.add(
        "HOOK_SIGNATURE_HEADER",
        hubbub_core::hooks::SIGNATURE_HEADER,
    )?;
    m.add("HOOK_MAX_AGE", hubbub_core::hooks::MAX_AGE_S)?;
    errors::register(m)?;
    let close = wrap_pyfunction!(transport::close, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (close,))?;
    Ok(())
}
