//! A server under test, seen through one trait: how to start it, how a client subscribes,
//! what a delivery looks like, and how the application publishes.
//!
//! Each target maps the load generator's three verbs onto its own protocol: "subscribe a
//! connection to channels C", "publish payload P to channel C" and "this frame is a
//! delivery". Everything else (connections, timing, counting) is shared, so every server
//! meets exactly the same load.

use crate::system::{Cpus, ProcessTree};
use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a frame from the server is, as far as the load generator cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// The server's greeting after the upgrade.
    Welcome,
    /// One subscription confirmed.
    Subscribed,
    /// A publication: the payload is somewhere inside.
    Delivery,
    /// A refusal; the text says why.
    Refused(String),
    /// Anything else (pings, notices).
    Other,
}

/// An HTTP request to the server's publishing API.
pub struct ApiRequest {
    pub method: reqwest::Method,
    /// Path and query, appended to `http://HOST:PORT`.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl ApiRequest {
    pub fn post(path: String, body: String) -> ApiRequest {
        ApiRequest {
            method: reqwest::Method::POST,
            path,
            headers: Vec::new(),
            body,
        }
    }

    pub fn get(path: String) -> ApiRequest {
        ApiRequest {
            method: reqwest::Method::GET,
            path,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiRequest {
        self.headers.push((name, value.into()));
        self
    }
}

/// What every server start needs to know.
pub struct Launch<'a> {
    /// The CPUs the server is pinned to (`taskset -c`).
    pub cpus: &'a Cpus,
    /// A fresh directory for config files and logs, removed after the run.
    pub dir: &'a Path,
    /// The open-file limit the server inherits.
    pub nofile: u64,
}

pub trait Target: Send + Sync {
    /// The name in tables, charts and on the command line.
    fn name(&self) -> &'static str;

    /// Why this target cannot run on this machine, if it cannot.
    fn unavailable(&self) -> Option<String>;

    /// Starts the server pinned to `launch.cpus` and waits until it accepts connections.
    fn start(&self, launch: &Launch) -> Result<Server>;

    /// The WebSocket path (with query) of a connection that wants `channels`.
    fn ws_path(&self, channels: &[String]) -> String;

    /// Whether the client waits for a greeting before it subscribes.
    fn greets(&self) -> bool;

    /// The frames a connection sends to subscribe to `channels`.
    fn subscribe(&self, channels: &[String]) -> Vec<String>;

    /// How many `Subscribed` answers the frames of [`Target::subscribe`] bring.
    fn acks(&self, channels: &[String]) -> usize {
        channels.len()
    }

    /// Classifies a text frame from the server.
    fn classify(&self, frame: &str) -> Incoming;

    /// A frame to send back after `frame`, where the protocol asks for one (application-level
    /// pings).
    fn reply(&self, _frame: &str) -> Option<String> {
        None
    }

    /// The request that publishes `payload` (plain ASCII, no quotes) on `channel`.
    fn publish(&self, channel: &str, payload: &str) -> ApiRequest;

    /// For servers that do not confirm subscriptions: a request for the number of
    /// subscriptions the server holds, and how to read it from the answer.
    fn subscriptions(&self) -> Option<ApiRequest> {
        None
    }

    fn parse_subscriptions(&self, _body: &str) -> Option<u64> {
        None
    }

    /// What [`Target::parse_subscriptions`] should reach once connections holding `plan`
    /// are all in place: one per channel by default.
    fn expected_subscriptions(&self, plan: &[Vec<String>]) -> u64 {
        plan.iter().map(|c| c.len() as u64).sum()
    }

    /// Whether even one node of this target needs a Redis (its message bus): then every
    /// scenario starts a `redis-server` and the node(s) with [`Target::start_node`].
    fn needs_redis(&self) -> bool {
        false
    }

    /// Why this target cannot run the cluster scenario (several nodes sharing one Redis), if
    /// it cannot.
    fn cluster_unavailable(&self) -> Option<String> {
        Some(format!(
            "{} has no cluster mode in this harness (only single-node scenarios)",
            self.name()
        ))
    }

    /// Starts one node of a cluster whose nodes share the Redis at `redis_url`, pinned to
    /// `launch.cpus`, and waits until it accepts connections.
    fn start_node(&self, launch: &Launch, redis_url: &str) -> Result<Server> {
        let _ = (launch, redis_url);
        bail!("{} has no cluster mode in this harness", self.name())
    }
}

/// What a scenario runs against: one server, or the nodes of a cluster and the Redis they
/// share.
pub struct Servers {
    /// Where clients and publishers go: one server, or each node of a cluster.
    pub nodes: Vec<Server>,
    /// Processes the nodes depend on (a cluster's Redis): counted in the server's CPU and
    /// memory, never connected to by clients.
    pub backing: Vec<Server>,
}

impl Servers {
    pub fn single(server: Server) -> Servers {
        Servers {
            nodes: vec![server],
            backing: Vec::new(),
        }
    }

    /// The address of each node.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|s| s.addr).collect()
    }

    /// Every process of every node and of what they share, as one tree.
    pub fn tree(&self) -> ProcessTree {
        let roots: Vec<u32> = self
            .nodes
            .iter()
            .chain(&self.backing)
            .map(Server::pid)
            .collect();
        let mut cpus: Vec<usize> = self
            .nodes
            .iter()
            .chain(&self.backing)
            .flat_map(|s| s.cpus.iter().copied())
            .collect();
        cpus.sort_unstable();
        cpus.dedup();
        ProcessTree::of(&roots, &cpus)
    }

    /// Where the logs are, for error messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .chain(&self.backing)
            .map(|s| s.log.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Stops the nodes, then what they share.
    pub fn stop(self, grace: Duration) {
        for server in self.nodes.into_iter().chain(self.backing) {
            server.stop(grace);
        }
    }
}

/// A `redis-server` for a cluster: on a free port of 127.0.0.1, without persistence, pinned
/// to `launch.cpus` like the servers. Its address is `redis://ADDR/0`.
pub fn start_redis(program: &Path, launch: &Launch) -> Result<Server> {
    let port = free_port()?;
    let log = launch.dir.join("redis.log");
    let mut command = pinned(launch.cpus, program, &log)?;
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(launch.dir);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    spawn_until_listening(command, addr, launch.cpus, &log, Duration::from_secs(20))
}

/// A running server process (and its children).
pub struct Server {
    pub child: Child,
    /// The CPUs it is pinned to.
    pub cpus: Vec<usize>,
    /// Where clients and publishers connect.
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server to stop (SIGTERM), and kills it if it has not after `grace`.
    pub fn stop(mut self, grace: Duration) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1, for servers that cannot be told to pick one.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `taskset -c CPUS program args...`, with output going to `log`.
pub fn pinned(cpus: &Cpus, program: &Path, log: &Path) -> Result<Command> {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(&cpus.list).arg(program);
    let out = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    Ok(command)
}

/// Spawns `command` with its stderr read line by line (copied to `log`), and waits for a line
/// that `ready` accepts; returns what `ready` made of it.
pub fn spawn_until_line<T: Send + 'static>(
    mut command: Command,
    log: &Path,
    timeout: Duration,
    ready: impl Fn(&str) -> Option<T> + Send + 'static,
) -> Result<(Child, T)> {
    command.stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .context("cannot start the server (is `taskset` installed?)")?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut copy = std::fs::OpenOptions::new().append(true).open(log)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(copy, "{line}");
            if let Some(found) = tx.as_ref().and_then(|_| ready(&line)) {
                let _ = tx.take().expect("sender is there").send(found);
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(found) => Ok((child, found)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the server did not say it was ready within {timeout:?}; see {}",
                log.display()
            )
        }
    }
}

/// Spawns `command`, pinned to `cpus`, and returns it as a server once `addr` accepts TCP
/// connections.
pub fn spawn_until_listening(
    command: Command,
    addr: SocketAddr,
    cpus: &Cpus,
    log: &Path,
    timeout: Duration,
) -> Result<Server> {
    let child = spawn_listening(command, addr, log, timeout)?;
    Ok(Server {
        child,
        cpus: cpus.ids.clone(),
        addr,
        log: log.to_owned(),
    })
}

fn spawn_listening(
    mut command: Command,
    addr: SocketAddr,
    log: &Path,
    timeout: Duration,
) -> Result<Child> {
    let mut child = command
        .spawn()
        .context("cannot start the server (is `taskset` installed?)")?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited with {status}; see {}", log.display());
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the server did not listen on {addr} within {timeout:?}; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Finds an executable: the given path, or a name looked up in PATH, ~/.cargo/bin and ~/go/bin.
pub fn find_program(given: Option<&Path>, name: &str) -> Option<PathBuf> {
    if let Some(path) = given {
        return path.is_file().then(|| path.to_owned());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    if let Some(home) = home {
        dirs.push(home.join(".cargo/bin"));
        dirs.push(home.join("go/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Puts `template`'s `{{KEY}}` placeholders in place.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}
