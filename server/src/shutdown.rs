//! Graceful shutdown as an object: one signal that everything watches, and a tracker of
//! the WebSocket connections still closing.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

/// The server's shutdown: triggered once by SIGINT or SIGTERM, watched by every connection.
#[derive(Clone, Default)]
pub struct Shutdown {
    signal: CancellationToken,
    connections: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown: connections close with 1001, new ones are refused.
    pub fn trigger(&self) {
        self.signal.cancel();
        self.connections.close();
    }

    pub fn is_triggered(&self) -> bool {
        self.signal.is_cancelled()
    }

    /// Resolves once the shutdown has started.
    pub async fn triggered(&self) {
        self.signal.cancelled().await
    }

    /// A token held by a live connection; the shutdown waits until every token is dropped.
    pub fn connection(&self) -> TaskTrackerToken {
        self.connections.token()
    }

    /// Waits (at most `grace`) for every connection to finish closing. Returns whether they all did.
    pub async fn connections_closed(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_ok()
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
