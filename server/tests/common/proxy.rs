//! A small TCP proxy for the tests. In front of Redis it cuts a node off (a network
//! partition: every connection dropped, new ones refused, until healed); in front of
//! several nodes it balances, sending each new connection to the next backend that
//! accepts it, as a load balancer with health checks would.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    /// `host:port` to connect to instead of the backends.
    pub addr: String,
    state: Arc<State>,
    accept: AbortHandle,
}

struct State {
    backends: Vec<String>,
    next: AtomicUsize,
    cut: AtomicBool,
    links: Mutex<Vec<AbortHandle>>,
}

impl Proxy {
    /// A proxy to `backends` (`host:port`), started on the current runtime.
    pub async fn start(backends: Vec<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            backends,
            next: AtomicUsize::new(0),
            cut: AtomicBool::new(false),
            links: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept(listener, state.clone())).abort_handle();
        Proxy {
            addr,
            state,
            accept,
        }
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for link in self.state.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        if state.cut.load(Ordering::SeqCst) {
            continue;
        }
        let link = tokio::spawn(forward(inbound, state.clone())).abort_handle();
        let mut links = state.links.lock().unwrap();
        links.retain(|l| !l.is_finished());
        links.push(link);
    }
}

/// Copies bytes between `inbound` and the first backend that accepts, trying them in turn
/// from the next one; closes `inbound` when none does.
async fn forward(mut inbound: TcpStream, state: Arc<State>) {
    let n = state.backends.len();
    let first = state.next.fetch_add(1, Ordering::SeqCst);
    for i in 0..n {
        let backend = &state.backends[(first + i) % n];
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(backend));
        if let Ok(Ok(mut outbound)) = connect.await {
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            return;
        }
    }
}
