//! hubbub itself: `/ws` with the JSON protocol, `POST /api/publish`.

use crate::target::{pinned, spawn_until_line, ApiRequest, Incoming, Launch, Server, Target};
use anyhow::Result;
use hubbub_core::api::PublishRequest;
use hubbub_core::protocol::{Command, RawJson, Subscribe};
use regex::Regex;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct Hubbub {
    pub bin: PathBuf,
    /// Every channel keeps history: offsets on every delivery, a stream per channel.
    pub history: bool,
}

impl Hubbub {
    /// Starts hubbub pinned to `launch.cpus` with `extra` arguments and waits for the line
    /// saying where it listens.
    fn launch(&self, launch: &Launch, extra: &[&str]) -> Result<Server> {
        let log = launch.dir.join("hubbub.log");
        let mut command = pinned(launch.cpus, &self.bin, &log)?;
        // Zero-config mode: anonymous clients read every channel and loopback publishes
        // without a key, which is what the peers are configured to allow too.
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("HUBBUB_LOG", "info");
        if self.history {
            command.args([
                "--namespaces",
                r#"[{pattern="*", history_size=100, history_ttl="10m"}]"#,
            ]);
        }
        let listening = Regex::new(r"listening on http://([0-9.]+):([0-9]+)")?;
        let (child, addr) =
            spawn_until_line(command, &log, Duration::from_secs(20), move |line| {
                let c = listening.captures(line)?;
                format!("{}:{}", &c[1], &c[2]).parse::<SocketAddr>().ok()
            })?;
        Ok(Server {
            child,
            cpus: launch.cpus.ids.clone(),
            addr,
            log,
        })
    }
}

impl Target for Hubbub {
    fn name(&self) -> &'static str {
        if self.history {
            "hubbub-history"
        } else {
            "hubbub"
        }
    }

    fn unavailable(&self) -> Option<String> {
        (!self.bin.is_file()).then(|| {
            format!(
                "no hubbub binary at {} (cargo build --release -p hubbub-server)",
                self.bin.display()
            )
        })
    }

    fn start(&self, launch: &Launch) -> Result<Server> {
        self.launch(launch, &[])
    }

    fn cluster_unavailable(&self) -> Option<String> {
        None
    }

    /// A node with the Redis engine; every node of one run shares the Redis and the prefix.
    fn start_node(&self, launch: &Launch, redis_url: &str) -> Result<Server> {
        self.launch(
            launch,
            &[
                "--engine",
                "redis",
                "--redis-url",
                redis_url,
                "--redis-prefix",
                "bench",
            ],
        )
    }

    fn ws_path(&self, _channels: &[String]) -> String {
        "/ws".to_owned()
    }

    fn greets(&self) -> bool {
        // The welcome comes first, but commands may follow the upgrade at once.
        false
    }

    fn subscribe(&self, channels: &[String]) -> Vec<String> {
        channels
            .iter()
            .map(|c| {
                Command::Subscribe(Subscribe {
                    channel: c.clone(),
                    since: None,
                })
                .to_json()
            })
            .collect()
    }

    /// A look at the frame's key only: the load generator reads every frame, and a full
    /// parse would make it, not the server, the limit.
    fn classify(&self, frame: &str) -> Incoming {
        if frame.starts_with(r#"{"message":"#) {
            Incoming::Delivery
        } else if frame.starts_with(r#"{"subscribed":"#) {
            Incoming::Subscribed
        } else if frame.starts_with(r#"{"connected":"#) {
            Incoming::Welcome
        } else if frame.starts_with(r#"{"err":"#) {
            Incoming::Refused(frame.to_owned())
        } else {
            Incoming::Other
        }
    }

    fn publish(&self, channel: &str, payload: &str) -> ApiRequest {
        let body = PublishRequest {
            channel: channel.to_owned(),
            data: RawJson::from_value(payload).expect("a string is JSON"),
            event: "b".to_owned(),
        };
        ApiRequest::post(
            "/api/publish".to_owned(),
            serde_json::to_string(&body).expect("a publish request is JSON"),
        )
        .header("content-type", "application/json")
    }
}
