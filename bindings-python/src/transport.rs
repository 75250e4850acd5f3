//! The I/O thread and connection pool that `AsyncPublisher`'s calls run on.
//!
//! Blocking calls (`Publisher`) need nothing here: hubbub-publisher's blocking publisher
//! runs each call on the calling thread, with that thread's own pool. Calls for asyncio run
//! on one I/O thread per process, with its own pool, so that awaiting never blocks an
//! event loop and one publisher serves every loop of the process.
//!
//! It is made on first use and made again in a child after `fork()` (Celery's prefork pool,
//! gunicorn with `--preload`): the parent's I/O thread does not exist in the child, and its
//! pooled sockets are shared with the parent, so the child leaves them be.

use hubbub_publisher::Connections;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The I/O thread and connection pool of the current process, for asyncio calls.
pub struct Process {
    pid: u32,
    pub runtime: tokio::runtime::Runtime,
    pub connections: Connections,
}

static CURRENT: AtomicPtr<Process> = AtomicPtr::new(ptr::null_mut());

impl Process {
    fn new(pid: u32) -> Result<Process, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hubbub-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let connections = Connections::new().map_err(|e| e.to_string())?;
        Ok(Process {
            pid,
            runtime,
            connections,
        })
    }

    /// The runtime and pool of this process, made on first use and after a fork.
    ///
    /// Lock-free on purpose: a lock held by another thread at the moment of a `fork()`
    /// would stay locked forever in the child.
    pub fn current() -> PyResult<&'static Process> {
        let pid = std::process::id();
        let seen = CURRENT.load(Ordering::Acquire);
        // SAFETY: a pointer stored in CURRENT comes from Box::into_raw and is never freed.
        if let Some(process) = unsafe { seen.as_ref() } {
            if process.pid == pid {
                return Ok(process);
            }
        }
        let fresh = Process::new(pid).map_err(|e| {
            PyRuntimeError::new_err(format!("hubbub cannot start its I/O thread: {e}"))
        })?;
        let fresh = Box::into_raw(Box::new(fresh));
        match CURRENT.compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // The parent's Process, if any, is left allocated: its runtime's threads do not
            // exist in this process, so it must not be dropped (dropping would wait on
            // them), and other threads may still hold a reference.
            // SAFETY: `fresh` was just leaked from a Box.
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(winner) => {
                // Another thread of this process made one first: use it, drop ours.
                // SAFETY: `fresh` was never shared; `winner` is a leaked Box of this process.
                drop(unsafe { Box::from_raw(fresh) });
                Ok(unsafe { &*winner })
            }
        }
    }
}
