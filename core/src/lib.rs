//! # hubbub-core
//!
//! The protocol and the hub logic of hubbub, with no sockets and no runtime, so that the
//! server, the Python and Node publishers and the browser client (WebAssembly) all share
//! one definition of the wire format.
//!
//! - [`protocol`]: every WebSocket frame, both directions, with its exact JSON.
//! - [`api`]: the bodies of the HTTP API.
//! - [`auth`]: permission patterns, users, HS256 tokens.
//! - [`channel`]: channel-name rules.
//! - [`hooks`]: what hubbub asks the application, what it answers, how it is signed.
//! - [`hub`]: subscriptions and fan-out on one node.
//! - [`namespace`]: what the channels of a namespace keep (history, presence), as the
//!   hub's config writes it.
//! - [`engine`]: the Redis engine's keys, topics, Lua scripts and lines, shared by the
//!   server and hubbub-publisher's Redis transport.
//! - [`Error`]: the protocol's error names, in one enum.

pub mod api;
pub mod auth;
pub mod channel;
pub mod engine;
mod error;
pub mod hooks;
pub mod hub;
pub mod namespace;
pub mod protocol;
pub mod shard;

pub use error::{Error, Rejection};

/// The version of hubbub, shared by every part of it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
