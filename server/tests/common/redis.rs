//! A real `redis-server` for the tests that need one, on a free port.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// One `redis-server` for the whole file (each test uses channels of its own); it ends
/// with the test process.
pub fn redis_url() -> &'static str {
    static REDIS: OnceLock<String> = OnceLock::new();
    REDIS.get_or_init(kept_redis)
}

/// A second `redis-server`, for the engine spread over two instances.
#[allow(dead_code)]
pub fn second_redis_url() -> &'static str {
    static REDIS: OnceLock<String> = OnceLock::new();
    REDIS.get_or_init(kept_redis)
}

/// Starts a `redis-server` from a thread that lives as long as the process: it is killed
/// when its parent thread ends (PR_SET_PDEATHSIG), that is, with the tests.
fn kept_redis() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (_child, url) = start_redis();
        tx.send(url).unwrap();
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
}

fn start_redis() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
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
    let url = format!("redis://127.0.0.1:{port}/0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, url)
}

/// A `redis-server` a test controls: stopped with SIGKILL, paused with SIGSTOP, started
/// again on the same port with or without what it wrote to disk. With `durable`, every
/// write is in its append-only file before Redis answers (`appendfsync always`), so a
/// restart keeps all of it; otherwise it keeps nothing.
pub struct RedisProcess {
    pub port: u16,
    dir: tempfile::TempDir,
    durable: bool,
    child: Option<Child>,
}

impl RedisProcess {
    pub fn start(durable: bool) -> RedisProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = RedisProcess {
            port,
            dir: tempfile::tempdir().unwrap(),
            durable,
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it again (after [`RedisProcess::kill`]) on the same port, from what it wrote.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is running");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.durable {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        // SAFETY: prctl between fork and exec touches nothing but the child.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("redis-server is installed"));
        // Up once it answers PING (a durable one loads its file first).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(1)));
                let mut answer = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut answer).is_ok()
                    && &answer == b"+PONG\r\n"
                {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops it the hard way, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Forgets everything it wrote: the next start is empty.
    pub fn wipe(&self) {
        assert!(self.child.is_none(), "redis-server is running");
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }

    /// Writes a snapshot of everything it holds (`SAVE`), which it starts from next time.
    pub fn save(&self) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"SAVE\r\n").unwrap();
        let mut answer = [0u8; 5];
        s.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"+OK\r\n");
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("redis-server is running");
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGCONT);
            }
        }
        self.kill();
    }
}
