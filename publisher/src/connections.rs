//! A pool of kept-alive HTTP connections (and Redis connections, for `redis://` URLs), and
//! the TLS settings every pool shares.

use crate::endpoint::ConfigError;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

/// A pool of kept-alive connections to hubs (HTTP/1.1, `https://` with the system's
/// certificate authorities), and to the hubs' Redis for `redis://` URLs (one multiplexed
/// connection per Redis, which many calls share at once). Cheap to clone: clones share the
/// pool.
///
/// A connection belongs to the tokio runtime that opened it and is only served while that
/// runtime runs, so a pool should be used from one runtime: a [`Publisher`](crate::Publisher)
/// made with [`Publisher::new`](crate::Publisher::new) has its own; the
/// [`blocking::Publisher`](crate::blocking::Publisher) keeps one per thread.
#[derive(Clone, Debug)]
pub struct Connections {
    pub(crate) http: reqwest::Client,
    #[cfg(feature = "redis")]
    pub(crate) redis: crate::redis::Pool,
}

impl Connections {
    /// An empty pool. Connections are opened by the first calls and kept for the next,
    /// HTTP ones until idle for a minute.
    pub fn new() -> Result<Connections, ConfigError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hubbub-publisher/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .tls_backend_preconfigured(tls()?)
            .build()
            .map_err(|e| ConfigError::new(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Connections {
            http,
            #[cfg(feature = "redis")]
            redis: Default::default(),
        })
    }
}

/// The TLS settings of every pool in the process, for `https://` hubs: the system's
/// certificate authorities (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`).
///
/// Loading them takes about a millisecond, far longer than a call on a warm connection,
/// so it is done once per process rather than for each pool (the blocking publisher makes
/// one per thread).
static TLS: AtomicPtr<rustls::ClientConfig> = AtomicPtr::new(ptr::null_mut());

fn tls() -> Result<rustls::ClientConfig, ConfigError> {
    let seen = TLS.load(Ordering::Acquire);
    // SAFETY: a pointer stored in TLS comes from Box::into_raw and is never freed.
    if let Some(config) = unsafe { seen.as_ref() } {
        return Ok(config.clone());
    }
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| ConfigError::new(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let made = Box::into_raw(Box::new(config));
    // Lock-free rather than a OnceLock: a process may fork (Python's Celery, gunicorn)
    // while another thread is making these, and a lock or a once-cell caught half-way
    // would stay so forever in the child. Two threads may both make them; one is kept.
    match TLS.compare_exchange(seen, made, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `made` was just leaked from a Box.
        Ok(_) => Ok(unsafe { &*made }.clone()),
        Err(winner) => {
            // SAFETY: `made` was never shared; `winner` is a leaked Box.
            drop(unsafe { Box::from_raw(made) });
            Ok(unsafe { &*winner }.clone())
        }
    }
}
