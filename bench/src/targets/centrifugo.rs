//! Centrifugo (`go install github.com/centrifugal/centrifugo/v6@latest`, where the Go module
//! proxy serves it): the JSON client protocol at `/connection/websocket`, publishing with
//! `POST /api/publish` and `X-API-Key`. Config: `bench/centrifugo/config.json` (client
//! insecure mode: anonymous connections may subscribe to any channel, which is what the
//! other servers allow in these runs). In the cluster scenario each node runs with the Redis
//! engine (`engine.type = "redis"`, `engine.redis.address`), added to the same config.

use crate::target::{
    fill, find_program, free_port, pinned, spawn_until_listening, ApiRequest, Incoming, Launch,
    Server, Target,
};
use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const CONFIG: &str = include_str!("../../centrifugo/config.json");
const API_KEY: &str = "bench-api-key";

pub struct Centrifugo {
    pub bin: Option<PathBuf>,
}

impl Centrifugo {
    fn program(&self) -> Option<PathBuf> {
        find_program(self.bin.as_deref(), "centrifugo")
    }

    /// Starts Centrifugo with the bench config (and the Redis engine at `redis_url`, when
    /// given) and waits until it listens.
    fn launch(&self, launch: &Launch, redis_url: Option<&str>) -> Result<Server> {
        let port = free_port()?;
        let filled = fill(
            CONFIG,
            &[("PORT", port.to_string()), ("API_KEY", API_KEY.into())],
        );
        let mut config: serde_json::Value = serde_json::from_str(&filled)?;
        if let Some(url) = redis_url {
            config["engine"] = serde_json::json!({
                "type": "redis",
                "redis": { "address": url },
            });
        }
        let conf = launch.dir.join("config.json");
        std::fs::write(&conf, serde_json::to_string_pretty(&config)?)?;
        let log = launch.dir.join("centrifugo.log");
        let mut command = pinned(launch.cpus, &self.program().expect("checked"), &log)?;
        command.current_dir(launch.dir).arg("--config").arg(&conf);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        spawn_until_listening(command, addr, launch.cpus, &log, Duration::from_secs(30))
    }
}

impl Target for Centrifugo {
    fn name(&self) -> &'static str {
        "centrifugo"
    }

    fn unavailable(&self) -> Option<String> {
        self.program().is_none().then(|| {
            "no centrifugo binary: `go install github.com/centrifugal/centrifugo/v6@latest` \
             failed or was not run (bench/setup.sh tries it; the Go module proxy may refuse it)"
                .into()
        })
    }

    fn start(&self, launch: &Launch) -> Result<Server> {
        self.launch(launch, None)
    }

    fn cluster_unavailable(&self) -> Option<String> {
        self.unavailable().map(|why| {
            format!(
                "{why}; with a binary, the cluster runs two Centrifugo nodes on its Redis engine"
            )
        })
    }

    /// A node with Centrifugo's Redis engine; the nodes find each other through the Redis.
    fn start_node(&self, launch: &Launch, redis_url: &str) -> Result<Server> {
        self.launch(launch, Some(redis_url))
    }

    fn ws_path(&self, _channels: &[String]) -> String {
        "/connection/websocket".to_owned()
    }

    fn greets(&self) -> bool {
        false
    }

    fn subscribe(&self, channels: &[String]) -> Vec<String> {
        // The connect command must come first; commands are answered by id.
        let mut frames = vec![r#"{"id":1,"connect":{}}"#.to_owned()];
        frames.extend(
            channels
                .iter()
                .enumerate()
                .map(|(i, c)| format!(r#"{{"id":{},"subscribe":{{"channel":"{c}"}}}}"#, i + 2)),
        );
        frames
    }

    fn acks(&self, channels: &[String]) -> usize {
        channels.len() + 1
    }

    fn classify(&self, frame: &str) -> Incoming {
        if frame.starts_with(r#"{"push":"#) {
            Incoming::Delivery
        } else if frame.contains(r#""error":"#) {
            Incoming::Refused(frame.to_owned())
        } else if frame.contains(r#""connect":"#) || frame.contains(r#""subscribe":"#) {
            Incoming::Subscribed
        } else {
            Incoming::Other
        }
    }

    fn reply(&self, frame: &str) -> Option<String> {
        // The server's ping is an empty object; the client answers with one.
        (frame.trim() == "{}").then(|| "{}".to_owned())
    }

    fn publish(&self, channel: &str, payload: &str) -> ApiRequest {
        ApiRequest::post(
            "/api/publish".to_owned(),
            format!(r#"{{"channel":"{channel}","data":"{payload}"}}"#),
        )
        .header("content-type", "application/json")
        .header("x-api-key", API_KEY)
    }
}
