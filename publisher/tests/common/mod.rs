//! Real servers for the publisher's tests: `hubbub` processes on ephemeral ports, a port
//! where nothing listens, one that never answers, and a plain HTTP server that is not a hub.

#![allow(dead_code)] // each test file uses some of it

pub mod browser;
pub mod redis;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `hubbub` binary: `$HUBBUB_BIN`, else the one cargo built beside these tests
/// (`cargo test` builds the server's binary with the workspace's default members).
pub fn hubbub_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HUBBUB_BIN") {
        return bin.into();
    }
    // target/<profile>/deps/<this test> -> target/<profile>/hubbub
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    profile_dir.join(format!("hubbub{}", std::env::consts::EXE_SUFFIX))
}

/// One `hubbub` process, stopped when dropped.
pub struct Hub {
    child: Child,
    pub url: String,
    pub port: u16,
}

impl Hub {
    /// Starts `hubbub --listen 127.0.0.1:0 ARGS` and waits until it says where it listens.
    pub fn start(args: &[&str]) -> Hub {
        let bin = hubbub_bin();
        assert!(
            bin.exists(),
            "no hubbub binary at {}: build it first (cargo build -p hubbub-server) or set HUBBUB_BIN",
            bin.display()
        );
        let mut command = Command::new(&bin);
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HUBBUB_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().expect("hubbub starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = mpsc::channel();
        // Reads the log to the end, so the hub never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on http://".len()..];
                    let address: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    if let Some(found) = found.take() {
                        let _ = found.send(address);
                    }
                }
            }
        });
        let address = address
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("hubbub {args:?} did not start"));
        let port = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        Hub {
            child,
            url: format!("http://{address}"),
            port,
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback URL where nothing listens.
pub fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A loopback port that accepts connections (the kernel completes the handshakes) and
/// never answers: nobody accepts or reads. Kept open while the listener lives.
pub fn silent() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A plain HTTP server that is not a hub: every request is answered with the status of the
/// first path segment (`/500/api/info` gets 500) and an HTML page. Runs on `runtime`.
pub fn other_server(runtime: &tokio::runtime::Runtime) -> String {
    use axum::http::{StatusCode, Uri};
    use axum::response::Html;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|uri: Uri| async move {
        let status = uri
            .path()
            .split('/')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::NOT_FOUND);
        (status, Html("<html>not a hub</html>"))
    });
    runtime.spawn(async move { axum::serve(listener, app).await });
    url
}
