//! Accepting TCP connections: the caps on how many are open (in all, and per address),
//! the HTTP timeouts, and a shutdown that ends within its grace whatever the clients do.
//!
//! A connection holds a [`Slot`] from accept to close; a WebSocket keeps its slot after
//! the upgrade (the request carries it to the handler), so the caps count WebSockets and
//! plain HTTP connections alike.

use crate::shutdown::Shutdown;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// How many connections may be open, and how long a client may take to send a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections in all (WebSockets included).
    pub max_connections: usize,
    /// Open connections from one address; 0 for no cap.
    pub max_connections_per_ip: usize,
    /// How long a request's headers may take to arrive; an idle keep-alive connection is
    /// closed after as long.
    pub http_timeout: Duration,
}

/// The open connections, in all and by address.
#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A place taken by one open connection; dropping the last clone gives it back.
pub struct Slot {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        counts.total -= 1;
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
    }
}

fn admit(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
    let mut c = counts.lock();
    if c.total >= limits.max_connections {
        return None;
    }
    let from_ip = c.by_ip.get(&ip).copied().unwrap_or(0);
    if limits.max_connections_per_ip > 0 && from_ip >= limits.max_connections_per_ip {
        return None;
    }
    c.total += 1;
    c.by_ip.insert(ip, from_ip + 1);
    Some(Slot {
        ip,
        counts: counts.clone(),
    })
}

/// Serves `router` on `listener` until `shutdown` is triggered, then lets open HTTP
/// requests finish for at most `grace`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: Shutdown,
    grace: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http_timeout);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stopping = shutdown.triggered();
    tokio::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stopping => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait a little instead of spinning.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = admit(&counts, peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: too many open");
            continue;
        };
        // Frames are small and must go out at once: without TCP_NODELAY, Nagle's
        // algorithm holds a frame written while an earlier one is still unacknowledged.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let slot = Arc::new(slot);
        let router = router.clone();
        let request_slot = slot.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request.extensions_mut().insert(request_slot.clone());
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let http_timeout = limits.http_timeout;
        tokio::spawn(async move {
            // hyper's header timeout starts with the first byte: a client that connects
            // and sends nothing is given as long, then dropped.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(http_timeout, tcp.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .into_owned();
            let _ = watcher.watch(connection).await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still open after {grace:?}: leaving them");
    }
}

/// Raises the soft limit of open descriptors to the hard limit (as most servers do), and
/// returns how many connections fit under it with room to spare for everything else.
pub fn connections_the_system_allows() -> usize {
    // Descriptors kept for everything but clients: the listener, logs, Redis, hooks.
    const RESERVE: u64 = 64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let usable = if limit.rlim_cur == libc::RLIM_INFINITY {
        1 << 20
    } else {
        limit.rlim_cur
    };
    usable.saturating_sub(RESERVE).max(1) as usize
}
