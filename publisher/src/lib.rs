//! # hubbub-publisher
//!
//! Publish to a [hubbub](https://github.com/hubbub-rs/hubbub) realtime hub from Rust: the
//! hub's HTTP API as an async client ([`Publisher`]) and a blocking one
//! ([`blocking::Publisher`]). Browsers subscribed to a channel receive what you publish
//! within milliseconds.
//!
//! It is the one publisher of hubbub: the Python package `hubbub` and the Node package
//! `hubbub-node` are thin wrappers around it, so the three read the environment, call the
//! hub and report failures exactly alike. Requests and answers are `hubbub-core`'s
//! [`api`](hubbub_core::api) types, the code the hub itself is built from.
//!
//! ```no_run
//! use hubbub_publisher::{Options, Publisher, Target};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // HUBBUB_URL and HUBBUB_API_KEY, else http://127.0.0.1:9772 without a key: a hub
//! // started with `cargo run -p hubbub-server` (zero-config mode) accepts that.
//! let hub = Publisher::new(Options::new())?;
//!
//! hub.publish("room:1", "chat", &json!({"text": "hi"})).await?;
//! hub.broadcast(["room:1", "room:2"], "news", &json!({"n": 1})).await?;
//! match hub.direct(Target::User("42".into()), "note", &json!("psst")).await {
//!     Ok(sent) => println!("{} connection(s) of user 42 got it", sent.delivered),
//!     Err(e) if e.code() == "INVALID_CLIENT" => println!("user 42 is not connected"),
//!     Err(e) => return Err(e.into()),
//! }
//! println!("{:?}", hub.info().await?);
//! # Ok(()) }
//! ```
//!
//! Outside async code, [`blocking::Publisher`] has the same calls:
//!
//! ```no_run
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = hubbub_publisher::blocking::Publisher::from_env()?;
//! hub.publish("hello", "message", &serde_json::json!({"hello": "world"}))?;
//! # Ok(()) }
//! ```
//!
//! ## Settings
//!
//! [`Options`] gives the hub's URL, the API key and the time limit of each call; each left
//! out falls back on `HUBBUB_URL` / `HUBBUB_API_KEY` (an empty variable counts as unset),
//! then on `http://127.0.0.1:9772`, no key and 5 seconds. Bad settings are a
//! [`ConfigError`] when the publisher is made; nothing is sent until the first call.
//!
//! ## Publishing through Redis
//!
//! Where the hubs run with the Redis engine, a `redis://` URL publishes straight into
//! their Redis, with no HTTP hop (the `redis` feature, on by default). The publisher must
//! then be given the hubs' `redis_url` (all of it, where it lists several instances),
//! `namespaces` (as their config writes them) and `redis_prefix`:
//!
//! ```no_run
//! use hubbub_publisher::core::namespace::NamespaceSpec;
//! use hubbub_publisher::{Options, Publisher};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Publisher::new(
//!     Options::new()
//!         .url("redis://publisher:secret@10.0.0.5:6379/0")
//!         .namespaces([NamespaceSpec {
//!             pattern: "room:*".into(),
//!             history_size: Some(100),
//!             ..Default::default()
//!         }]),
//! )?;
//! let published = hub.publish("room:1", "chat", &"hi").await?;
//! assert!(published.offset.is_some());
//! # Ok(()) }
//! ```
//!
//! It runs the hubs' own script on the hubs' own keys (`hubbub_core::engine`), so a
//! publication gets the offset, epoch and place in the history a publication through a hub
//! gets, and every subscriber on every node receives it. `history` reads the stream;
//! `direct`, `disconnect` and `channels` ask the nodes over the engine's control topic;
//! `info` and the presence calls are `UNKNOWN_COMMAND`. Whoever can write to that Redis
//! can publish anything on any channel: the hubs' API keys do not apply there. docs/rust.md
//! ("Publishing through Redis") says what must match the hubs' config and how to protect
//! the Redis.
//!
//! ## Errors
//!
//! Every call fails with an [`Error`] whose [`code`](Error::code) is one of the protocol's
//! error names (the hub refused: `INVALID_CREDENTIALS`, `ACCESS_DENIED`, `INVALID_PAYLOAD`,
//! `INVALID_CLIENT`, `LIMIT_EXCEEDED`, ...) or `UNAVAILABLE` (the hub could not be reached,
//! did not answer within the time limit, or something that is not a hub answered; through
//! Redis, the same of the Redis).
//!
//! ## Modules
//!
//! - [`Publisher`] (async) and [`blocking::Publisher`];
//! - [`Options`], [`Endpoint`] (the options resolved) and [`Connections`] (a pool of
//!   kept-alive connections);
//! - [`Error`] and [`Cause`].
//!
//! Tokens for browsers are minted with [`hubbub_core::auth::sign`]; this crate re-exports
//! `hubbub_core` as [`core`].

#![deny(missing_docs)]

mod client;
mod connections;
mod endpoint;
mod error;
#[cfg(feature = "redis")]
mod redis;

pub mod blocking;

pub use client::Publisher;
pub use connections::Connections;
pub use endpoint::{ConfigError, Endpoint, Options, API_KEY_VAR, DEFAULT_TIMEOUT, URL_VAR};
pub use error::{Cause, Error, UNAVAILABLE};
/// The protocol's types this crate's calls take and answer.
pub use hubbub_core as core;
pub use hubbub_core::api::{
    BroadcastPublished, ChannelStats, Channels, DirectDelivered, Disconnected, HistoryPage, Info,
    Presence, PresenceStats, Published, Target, DEFAULT_EVENT, DEFAULT_URL,
};
