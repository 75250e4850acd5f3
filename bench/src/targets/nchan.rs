//! nchan (the nginx module from Debian's `libnginx-mod-nchan`): WebSocket subscribers at
//! `/sub/CHANNEL[/CHANNEL]`, publishing with `POST /pub?id=CHANNEL`. Config: `bench/nchan/nginx.conf`.

use crate::target::{
    fill, find_program, free_port, pinned, spawn_until_listening, ApiRequest, Incoming, Launch,
    Server, Target,
};
use anyhow::Result;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CONFIG: &str = include_str!("../../nchan/nginx.conf");
const MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

pub struct Nchan {
    pub bin: Option<PathBuf>,
}

impl Nchan {
    fn nginx(&self) -> Option<PathBuf> {
        find_program(self.bin.as_deref(), "nginx")
    }
}

impl Target for Nchan {
    fn name(&self) -> &'static str {
        "nchan"
    }

    fn unavailable(&self) -> Option<String> {
        if self.nginx().is_none() {
            return Some(
                "no nginx binary (bench/setup.sh installs nginx and libnginx-mod-nchan)".into(),
            );
        }
        (!Path::new(MODULE).is_file())
            .then(|| format!("no {MODULE} (bench/setup.sh installs libnginx-mod-nchan)"))
    }

    fn cluster_unavailable(&self) -> Option<String> {
        Some(
            "the harness runs nchan as one nginx only: its Redis mode (nchan_redis_pass) is \
             not configured in bench/nchan, so there is no cluster to compare"
                .into(),
        )
    }

    fn start(&self, launch: &Launch) -> Result<Server> {
        let port = free_port()?;
        let dir = launch.dir.display().to_string();
        let config = fill(
            CONFIG,
            &[
                ("WORKERS", launch.cpus.ids.len().to_string()),
                ("NOFILE", launch.nofile.to_string()),
                // More than descriptors allow, so that descriptors are the only limit (nginx
                // counts some connections of its own).
                ("CONNECTIONS", (2 * launch.nofile).to_string()),
                ("DIR", dir.clone()),
                ("PORT", port.to_string()),
            ],
        );
        let conf = launch.dir.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let log = launch.dir.join("nginx.out");
        let mut command = pinned(launch.cpus, &self.nginx().expect("checked"), &log)?;
        command
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(launch.dir.join("error.log"))
            .arg("-c")
            .arg(&conf);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut server =
            spawn_until_listening(command, addr, launch.cpus, &log, Duration::from_secs(20))?;
        // What nginx says goes to its error log, not to its output.
        server.log = launch.dir.join("error.log");
        Ok(server)
    }

    fn ws_path(&self, channels: &[String]) -> String {
        format!("/sub/{}", channels.join("/"))
    }

    fn greets(&self) -> bool {
        false
    }

    fn subscribe(&self, _channels: &[String]) -> Vec<String> {
        // The channels are in the URL; the subscription starts with the upgrade.
        Vec::new()
    }

    fn acks(&self, _channels: &[String]) -> usize {
        0
    }

    fn classify(&self, _frame: &str) -> Incoming {
        // Every text frame is a message body.
        Incoming::Delivery
    }

    fn publish(&self, channel: &str, payload: &str) -> ApiRequest {
        ApiRequest::post(format!("/pub?id={channel}"), payload.to_owned())
    }

    fn subscriptions(&self) -> Option<ApiRequest> {
        Some(ApiRequest::get("/status".to_owned()))
    }

    fn expected_subscriptions(&self, plan: &[Vec<String>]) -> u64 {
        // A multiplexed connection counts as one subscriber.
        plan.len() as u64
    }

    fn parse_subscriptions(&self, body: &str) -> Option<u64> {
        body.lines()
            .find_map(|l| l.strip_prefix("subscribers:"))
            .and_then(|n| n.trim().parse().ok())
    }
}
