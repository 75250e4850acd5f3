//! # hubbub-node
//!
//! The native half of the npm package `hubbub-node`: a [`Publisher`] that talks to a hubbub
//! hub over its HTTP API, [`token`] / [`verify_token`] for the hub's HS256 tokens, and
//! [`verify_hook`] / [`sign_hook`] for the signatures of the hub's hook requests.
//!
//! A thin wrapper: the publisher is `hubbub-publisher` (the URL and the environment, API
//! keys, kept-alive connections, every call, the reading of answers, the error names), and
//! tokens and hook signatures are `hubbub-core`'s `auth::sign`, `auth::verify`,
//! `hooks::sign` and `hooks::verify`. This crate converts
//! JavaScript values, runs calls on napi's tokio runtime (off the JavaScript thread; every
//! method that touches the network returns a Promise) and turns failures into JavaScript
//! errors that carry the error name in `.code` (see [`error`]); the package's `index.js`
//! makes `HubbubError`s of them.

#![deny(clippy::all)]

mod error;
mod hooks;
mod publisher;
mod token;

pub use error::error_codes;
pub use hooks::{channel_matches, sign_hook, verify_hook};
pub use publisher::Publisher;
pub use token::{token, verify_token};
