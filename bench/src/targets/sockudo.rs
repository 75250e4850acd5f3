//! sockudo (`cargo install sockudo`): the Pusher protocol at `/app/KEY`, publishing with the
//! signed HTTP API `POST /apps/ID/events`. Config: `bench/sockudo/config.toml`.

use crate::target::{
    fill, find_program, free_port, pinned, spawn_until_listening, ApiRequest, Incoming, Launch,
    Server, Target,
};
use anyhow::Result;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CONFIG: &str = include_str!("../../sockudo/config.toml");
const APP_ID: &str = "bench";
const APP_KEY: &str = "bench-key";
const APP_SECRET: &str = "bench-secret";

pub struct Sockudo {
    pub bin: Option<PathBuf>,
}

impl Sockudo {
    fn program(&self) -> Option<PathBuf> {
        find_program(self.bin.as_deref(), "sockudo")
    }
}

/// The Pusher HTTP API signature: the query string carries the key, a timestamp and the
/// body's MD5, and `auth_signature` is the HMAC-SHA256 of "METHOD\nPATH\nSORTED_QUERY".
pub fn signed_path(path: &str, body: &str, key: &str, secret: &str, timestamp: u64) -> String {
    let body_md5 = hex::encode(Md5::digest(body.as_bytes()));
    let query =
        format!("auth_key={key}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("POST\n{path}\n{query}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    format!("{path}?{query}&auth_signature={signature}")
}

impl Target for Sockudo {
    fn name(&self) -> &'static str {
        "sockudo"
    }

    fn unavailable(&self) -> Option<String> {
        self.program()
            .is_none()
            .then(|| "no sockudo binary (bench/setup.sh runs `cargo install sockudo`)".into())
    }

    fn cluster_unavailable(&self) -> Option<String> {
        Some(
            "the harness runs sockudo with its memory drivers only: its Redis adapter is not \
             configured in bench/sockudo, so there is no cluster to compare"
                .into(),
        )
    }

    fn start(&self, launch: &Launch) -> Result<Server> {
        let port = free_port()?;
        let config = fill(
            CONFIG,
            &[
                ("PORT", port.to_string()),
                ("APP_ID", APP_ID.into()),
                ("APP_KEY", APP_KEY.into()),
                ("APP_SECRET", APP_SECRET.into()),
            ],
        );
        let conf = launch.dir.join("config.toml");
        std::fs::write(&conf, config)?;
        let log = launch.dir.join("sockudo.log");
        let mut command = pinned(launch.cpus, &self.program().expect("checked"), &log)?;
        // The working directory is the run's own, so no stray config/config.toml is read.
        command
            .current_dir(launch.dir)
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "warn");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        spawn_until_listening(command, addr, launch.cpus, &log, Duration::from_secs(30))
    }

    fn ws_path(&self, _channels: &[String]) -> String {
        format!("/app/{APP_KEY}?protocol=7&client=hubbub-bench&version=1.0")
    }

    fn greets(&self) -> bool {
        true
    }

    fn subscribe(&self, channels: &[String]) -> Vec<String> {
        channels
            .iter()
            .map(|c| format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{c}"}}}}"#))
            .collect()
    }

    fn classify(&self, frame: &str) -> Incoming {
        if frame.contains(r#""event":"b""#) {
            Incoming::Delivery
        } else if frame.contains("pusher_internal:subscription_succeeded") {
            Incoming::Subscribed
        } else if frame.contains("pusher:connection_established") {
            Incoming::Welcome
        } else if frame.contains("pusher:error") || frame.contains("subscription_error") {
            Incoming::Refused(frame.to_owned())
        } else {
            Incoming::Other
        }
    }

    fn reply(&self, frame: &str) -> Option<String> {
        frame
            .contains("pusher:ping")
            .then(|| r#"{"event":"pusher:pong","data":{}}"#.to_owned())
    }

    fn publish(&self, channel: &str, payload: &str) -> ApiRequest {
        let body = format!(r#"{{"name":"b","channel":"{channel}","data":"{payload}"}}"#);
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = signed_path(
            &format!("/apps/{APP_ID}/events"),
            &body,
            APP_KEY,
            APP_SECRET,
            timestamp,
        );
        ApiRequest::post(path, body).header("content-type", "application/json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_pusher_reference() {
        // The worked example of Pusher's HTTP API reference ("Generating authentication
        // signatures"), body {"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}.
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let path = signed_path(
            "/apps/3/events",
            body,
            "278d425bdf160c739803",
            "7ad3773142a6692b25b8",
            1353088179,
        );
        assert!(path.contains("body_md5=ec365a775a4cd0599faeb73354201b6f"));
        assert!(path.ends_with(
            "auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        ));
    }
}
