//! Real `redis-server`s on free ports, for the tests that publish through Redis (as in
//! `server/tests/common/redis.rs`).

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One `redis-server` for the whole file (each test uses a key prefix of its own); it ends
/// with the test process.
pub fn shared_redis_url() -> &'static str {
    static REDIS: OnceLock<String> = OnceLock::new();
    REDIS.get_or_init(|| {
        // Started from a thread that lives as long as the process: the server is killed
        // when that thread ends (PR_SET_PDEATHSIG), that is, with the tests.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let redis = Redis::start();
            tx.send(redis.url.clone()).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of one test's own, stopped when dropped (and with the test process).
pub struct Redis {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Redis {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start() -> Redis {
        Redis::start_with(free_port(), &[])
    }

    /// Starts one on `port` (a port this test had before) and waits until it accepts
    /// connections.
    pub fn start_on(port: u16) -> Redis {
        Redis::start_with(port, &[])
    }

    /// Starts one on a free port with more arguments (`--requirepass`, ...).
    pub fn start_with_args(args: &[&str]) -> Redis {
        Redis::start_with(free_port(), args)
    }

    fn start_with(port: u16, args: &[&str]) -> Redis {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(args)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl between fork and exec touches nothing but the child.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("redis-server is installed (scripts/test-rust.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
