//! A real `redis-server` for the tests that need one, on a free port.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// One `redis-server` for the whole file (each test uses channels of its own); it ends
/// with the test process.
pub fn redis_url() -> &'static str {
    static REDIS: OnceLock<String> = OnceLock::new();
    REDIS.get_or_init(|| {
        // The server is started from a thread that lives as long as the process: it is
        // killed when its parent thread ends (PR_SET_PDEATHSIG), that is, with the tests.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (_child, url) = start_redis();
            tx.send(url).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
}

/// A second `redis-server`, for the engine spread over two instances.
#[allow(dead_code)]
pub fn second_redis_url() -> &'static str {
    static REDIS: OnceLock<String> = OnceLock::new();
    REDIS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (_child, url) = start_redis();
            tx.send(url).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
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
