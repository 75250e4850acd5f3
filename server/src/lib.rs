//! # hubbub-server
//!
//! The hub: a WebSocket endpoint for browsers, an HTTP API for publishers, and the engine
//! that carries publications, history and presence between them. The `hubbub` binary is
//! a thin `main` over [`run`]; tests may run a server in-process the same way.
//!
//! Rooms, from the outside in:
//! - `http.rs`: the routes (HTTP API, `/ws`, `/health`, the hello page).
//! - `connection.rs`: one WebSocket connection's reader and writer.
//! - `session.rs`: one client's identity and what each of its commands does.
//! - `node.rs`: the running node: hub, engine, configuration, and the steps that touch
//!   several of them.
//! - `outbox.rs`: how the node reaches a connection (its bounded queue, its controls).
//! - [`engine`]: the `Broker` and `PresenceManager` traits and their implementations.
//! - [`config`]: the configuration, from file, environment and flags.
//! - [`shutdown`]: graceful shutdown as an object.

pub mod config;
mod connection;
pub mod engine;
mod http;
mod node;
mod outbox;
mod session;
pub mod shutdown;

pub use config::Config;
pub use shutdown::Shutdown;

use axum::serve::ListenerExt;
use std::net::SocketAddr;
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
    // Frames are small and must go out at once: without TCP_NODELAY, Nagle's algorithm
    // holds a frame written while an earlier one is still unacknowledged.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    let dev_mode = config.dev_mode;
    let node = node::Node::new(config, shutdown.clone())
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!("hubbub {} listening on http://{addr}", hubbub_core::VERSION);
    if dev_mode {
        tracing::info!(
            "development mode (no config file): anonymous clients read every channel, the HTTP \
             API accepts loopback callers without a key; open http://{addr}/ to watch the channel \"hello\""
        );
    }
    let app = http::router(node.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let stopping = shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stopping.triggered().await;
        tracing::info!("shutting down: closing connections, finishing HTTP requests");
    });
    // Graceful shutdown waits for every HTTP connection; a client that never finishes its
    // request must not keep the server running past the grace.
    let grace_over = async {
        shutdown.triggered().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served?,
        _ = grace_over => tracing::warn!("HTTP requests still open after {SHUTDOWN_GRACE:?}: leaving them"),
    }
    if !shutdown.connections_closed(SHUTDOWN_GRACE).await {
        tracing::warn!("some connections did not close within {SHUTDOWN_GRACE:?}");
    }
    tracing::info!("stopped");
    Ok(())
}
