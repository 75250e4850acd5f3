//! Django Channels: what a Django developer would run instead of hubbub. Daphne serves the
//! minimal project in `bench/django-channels/benchsite.py` (a consumer that joins a group of
//! the channel layer per channel, and a `group_send` publish view), with `channels_redis`
//! as its channel layer on a `redis-server` the harness starts for every run, so Redis is
//! always part of it: its CPU and memory count as the server's, as in the cluster scenario.
//! Installed into the project's virtualenv by `bench/setup.sh`
//! (`bench/django-channels/requirements.txt`).

use crate::target::{
    free_port, pinned, spawn_until_listening, ApiRequest, Incoming, Launch, Server, Target,
};
use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct DjangoChannels {
    /// Daphne, from the virtualenv that has the project's requirements.
    pub bin: PathBuf,
}

/// Where `benchsite.py` lives.
fn site_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/django-channels"))
}

impl Target for DjangoChannels {
    fn name(&self) -> &'static str {
        "django-channels"
    }

    fn unavailable(&self) -> Option<String> {
        (!self.bin.is_file()).then(|| {
            format!(
                "no daphne at {} (bench/setup.sh installs Django Channels into .venv)",
                self.bin.display()
            )
        })
    }

    fn needs_redis(&self) -> bool {
        true
    }

    fn start(&self, _launch: &Launch) -> Result<Server> {
        anyhow::bail!("Django Channels needs its Redis: the harness starts it as a node")
    }

    fn cluster_unavailable(&self) -> Option<String> {
        None
    }

    /// One Daphne process on the channel layer's Redis at `redis_url`.
    fn start_node(&self, launch: &Launch, redis_url: &str) -> Result<Server> {
        let port = free_port()?;
        let log = launch.dir.join("daphne.log");
        let mut command = pinned(launch.cpus, &self.bin, &log)?;
        command
            .current_dir(site_dir())
            .env("DJANGO_SETTINGS_MODULE", "benchsite")
            .env("BENCH_REDIS_URL", redis_url)
            .args(["-b", "127.0.0.1", "-p", &port.to_string()])
            // Daphne logs every request at the default verbosity.
            .args(["-v", "0", "benchsite:application"]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        spawn_until_listening(command, addr, launch.cpus, &log, Duration::from_secs(60))
    }

    fn ws_path(&self, _channels: &[String]) -> String {
        "/ws".to_owned()
    }

    fn greets(&self) -> bool {
        false
    }

    fn subscribe(&self, channels: &[String]) -> Vec<String> {
        channels
            .iter()
            .map(|c| format!(r#"{{"subscribe":"{c}"}}"#))
            .collect()
    }

    fn classify(&self, frame: &str) -> Incoming {
        if frame.starts_with(r#"{"subscribed":"#) {
            Incoming::Subscribed
        } else if frame.starts_with("bench|") {
            Incoming::Delivery
        } else {
            Incoming::Other
        }
    }

    fn publish(&self, channel: &str, payload: &str) -> ApiRequest {
        ApiRequest::post(format!("/publish?channel={channel}"), payload.to_owned())
    }
}
