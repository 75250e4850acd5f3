//! # hubbub-node
//!
//! The native half of the npm package `hubbub-node`: a [`Publisher`] that talks to a hubbub
//! hub over its HTTP API, and [`token`] / [`verify_token`] for the hub's HS256 tokens.
//!
//! Everything here converts types and calls `hubbub-core` or the hub's HTTP API: request and
//! answer bodies are core's `api` types, tokens are core's `auth::sign` and `auth::verify`,
//! error names are core's `Error`. Network work runs on napi's tokio runtime, off the
//! JavaScript thread, and every method that touches the network returns a Promise.
//!
//! A failure reaches JavaScript as an `Error` whose message is `"CODE: reason"` (see
//! [`failure`]); the package's `index.js` turns it into a `HubbubError` with `.code`.

#![deny(clippy::all)]

mod failure;
mod publisher;
mod token;

pub use failure::{error_codes, Failure};
pub use publisher::Publisher;
pub use token::{token, verify_token};
