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
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set when the interpreter begins to exit: from then on, the I/O thread hands nothing
/// more to Python.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Callbacks of the I/O thread that are attaching to Python or running in it.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` with the GIL on the I/O thread, unless the interpreter is exiting: a thread
/// that takes the GIL while Python finalizes brings the process down ("PyGILState_Release
/// ... finalizing"), so an answer that comes too late is dropped, with nobody left to
/// tell.
pub fn in_python(f: impl FnOnce(Python<'_>)) {
    if CLOSING.load(Ordering::Acquire) {
        return;
    }
    IN_PYTHON.fetch_add(1, Ordering::AcqRel);
    // Checked again: `close` may have started between the first check and the count.
    if !CLOSING.load(Ordering::Acquire) {
        Python::try_attach(f);
    }
    IN_PYTHON.fetch_sub(1, Ordering::AcqRel);
}

/// Registered with `atexit`: stops the I/O thread's callbacks before the interpreter
/// finalizes, waiting (with the GIL released, at most a second) for those already on
/// their way in.
#[pyfunction]
pub fn close(py: Python<'_>) {
    CLOSING.store(true, Ordering::Release);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(1);
        while IN_PYTHON.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

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
