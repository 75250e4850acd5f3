//! A real `hubbub` process on an ephemeral port, and real WebSocket and HTTP clients.

#![allow(dead_code)]

pub mod proxy;
pub mod redis;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Child,
    pub addr: String,
    /// Lines the server logs after start.
    pub log: mpsc::Receiver<String>,
    _config: Option<tempfile::NamedTempFile>,
}

impl Server {
    /// Zero-config development mode.
    pub fn dev() -> Server {
        Server::start(None, &[])
    }

    /// Development mode with these extra flags.
    pub fn dev_with(args: &[&str]) -> Server {
        Server::start(None, args)
    }

    /// A server with this TOML config and these extra flags.
    pub fn with_config(toml: &str, args: &[&str]) -> Server {
        Server::start(Some(toml), args)
    }

    pub fn start(toml: Option<&str>, args: &[&str]) -> Server {
        Server::start_with_env(toml, args, &[])
    }

    /// A server with a config, extra flags and extra environment variables.
    pub fn start_with_env(toml: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_configured(toml, args, env, |_| {})
    }

    /// A server with a config, extra flags, extra environment variables, and anything
    /// else `configure` does to its command before it starts.
    pub fn start_configured(
        toml: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let config = toml.map(|t| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut f, t.as_bytes()).unwrap();
            f
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubbub"));
        cmd.args(["--listen", "127.0.0.1:0"]);
        if let Some(f) = &config {
            cmd.arg("--config").arg(f.path());
        }
        cmd.args(args)
            .env_remove("HUBBUB_CONFIG")
            .env("HUBBUB_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("hubbub starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
            log,
            _config: config,
        };
        let line = server
            .wait_for_log("listening on http://")
            .expect("hubbub says where it listens");
        let at = line.find("http://").unwrap() + "http://".len();
        // Up to a space, or the quote that ends a JSON log line's message.
        server.addr = line[at..]
            .split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap()
            .to_owned();
        server
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "hubbub did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGKILL, as a crash or the OOM killer would: no goodbye to anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's resident set size, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(self.url(path)).await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string(), None).await
    }

    pub async fn post_raw(&self, path: &str, body: String, key: Option<&str>) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            r = r.bearer_auth(key);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Publishes through the HTTP API.
    pub async fn publish(&self, channel: &str, data: Value) {
        let (status, body) = self
            .post(
                "/api/publish",
                serde_json::json!({"channel": channel, "data": data}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Waits until `GET /api/info` reports `n` connections.
    pub async fn wait_for_connections(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, info) = self.get("/api/info").await;
            if info["connections"] == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "connections stayed at {}",
                info["connections"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that has read its `connected` welcome.
pub struct Client {
    pub ws: Socket,
    pub id: String,
}

impl Client {
    pub async fn connect(server: &Server) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .expect("websocket connects");
        let mut client = Client {
            ws,
            id: String::new(),
        };
        let welcome = client.recv().await;
        client.id = welcome["connected"]["client"]
            .as_str()
            .expect("the first frame is the welcome")
            .to_owned();
        client
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    /// The next text frame, as text.
    pub async fn recv_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("the socket is open")
                .expect("a good frame");
            match message {
                Message::Text(t) => return t.to_string(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_text().await).unwrap()
    }

    /// The next frame that is not a `join` or `leave`: those may come between any two
    /// frames (another client's disconnect races whatever this one awaits).
    pub async fn recv_skipping_presence(&mut self) -> Value {
        loop {
            let frame = self.recv().await;
            if frame.get("join").is_none() && frame.get("leave").is_none() {
                return frame;
            }
        }
    }

    /// Sends a command and returns its answer.
    pub async fn ask(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.recv().await
    }

    /// Sends a command and checks its answer.
    pub async fn expect(&mut self, frame: Value, answer: Value) {
        assert_eq!(self.ask(frame.clone()).await, answer, "answer to {frame}");
    }

    pub async fn subscribe(&mut self, channel: &str) {
        self.expect(
            serde_json::json!({"subscribe": {"channel": channel}}),
            serde_json::json!({"subscribed": channel}),
        )
        .await;
    }

    /// Reads until the server closes; returns the close code, if a close frame came.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the server closes within the wait")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Asserts nothing arrives for a moment (used only after a round-trip proves the
    /// server has handled everything before it).
    pub async fn assert_quiet(&mut self) {
        self.expect(
            serde_json::json!({"ping": "q"}),
            serde_json::json!({"pong": "q"}),
        )
        .await;
    }
}
