//! # hubbub-node
//!
//! The native half of the npm package `hubbub-node`: a [`Publisher`] that talks to a hubbub
//! hub over its HTTP API, and [`token`] / [`verify_token`] for the hub's HS256 tokens.
//!
//! A thin wrapper: the publisher is `hubbub-publisher` (the URL and the environment, API
//! keys, kept-alive connections, every call, the reading of answers, the error names), and
//! tokens are `hubbub-core`'s `auth::sign` and `auth::verify`. This crate converts
//! JavaScript values, runs calls on napi's tokio runtime (off the JavaScript thread; every
//! method that touches the network returns a Promise) and turns failures into JavaScript
//! errors that carry the error name in `.code` (see [`error`]); the package's `index.js`
//! makes `HubbubError`s of them.

#![deny(clippy::all)]

mod error;
mod publisher;
mod token;

pub use error::error_codes;
pub use publisher::Publisher;
pub use token::{token, verify_token};
