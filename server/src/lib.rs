//! # hubbub-server
//!
//! The hub: a WebSocket endpoint for browsers, an HTTP API for publishers, and the engine
//! that carries publications, history and presence between them. The `hubbub` binary is
//! a thin `main` over [`run`]; tests may run a server in-process the same way.
//!
//! Rooms, from the outside in:
//! - `http.rs`: the routes (HTTP API, `/ws`, `/health`, the hello page).
//! - `connection.rs`: one WebSocket connection, in one task.
//! - `sse.rs`: a channel read as Server-Sent Events by a plain `EventSource`.
//! - `session.rs`: one client's identity and what each of its commands does.
//! - `node.rs`: the running node: hub, engine, configuration, and the steps that touch
//!   several of them.
//! - `hooks.rs`: calls to the application (connect, subscribe, rpc, event notices).
//! - `listener.rs`: accepting connections: caps, HTTP timeouts, a bounded shutdown.
//! - `outbox.rs`: how the node reaches a connection (its bounded queue, its controls).
//! - [`engine`]: the `Broker` and `PresenceManager` traits and their implementations.
//! - [`config`]: the configuration, from file, environment and flags.
//! - [`shutdown`]: graceful shutdown as an object.

mod admin;
pub mod check;
pub mod config;
mod connection;
pub mod engine;
mod hooks;
mod http;
mod listener;
pub mod metrics;
mod node;
mod outbox;
mod session;
pub mod shutdown;
mod sse;

pub use config::Config;
pub use shutdown::Shutdown;

use std::time::Duration;

/// How long, after shutdown starts, connections and HTTP requests may take to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves hubbub on `listener` until `shutdown` is triggered, then closes every
/// connection (1001, after what is queued for it) and finishes HTTP requests, for at most
/// [`SHUTDOWN_GRACE`].
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let limits = listener::Limits {
        max_connections: match config.max_connections {
            0 => listener::connections_the_system_allows(),
            n => n,
        },
        max_connections_per_ip: config.max_connections_per_ip,
        http_timeout: config.http_timeout,
    };
    let dev_mode = config.dev_mode;
    let anonymous_read = if config.anonymous_read == ["*"] {
        "every channel".to_owned()
    } else if config.anonymous_read.is_empty() {
        "no channel".to_owned()
    } else {
        config.anonymous_read.join(", ")
    };
    let open_api = !dev_mode && config.api_keys.is_empty() && config.allowed_ips.is_none();
    let node = node::Node::new(config, shutdown.clone())
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!(
        "hubbub {} listening on http://{addr} (at most {} connections)",
        hubbub_core::VERSION,
        limits.max_connections
    );
    if dev_mode {
        tracing::info!(
            "development mode (no config file): anonymous clients read {anonymous_read}, the HTTP \
             API accepts loopback callers without a key; open http://{addr}/ to watch the channel \"hello\""
        );
    }
    if open_api {
        tracing::warn!(
            "the HTTP API is open to every address that can reach {addr}: anyone may publish and \
             disconnect clients; set api_keys, allowed_ips or both"
        );
    }
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.triggered().await;
        tracing::info!("shutting down: closing connections, finishing HTTP requests");
    });
    listener::serve(
        listener,
        http::router(node.clone()),
        limits,
        shutdown.clone(),
        SHUTDOWN_GRACE,
    )
    .await;
    if !shutdown.connections_closed(SHUTDOWN_GRACE).await {
        tracing::warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
    }
    node.withdraw().await;
    tracing::info!("stopped");
    Ok(())
}
