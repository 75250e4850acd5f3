//! Configuration: one TOML file, every key overridable by a `HUBBUB_<KEY>` environment
//! variable and by a `--<key>` flag, checked once at start.
//!
//! The file is read into a TOML table, the flags and environment variables (clap reads
//! both) are laid over it key by key, and the result is deserialized and checked. Every
//! error names the key it is about.

use clap::Args;
use hubbub_core::auth::{Authenticator, User};
// A `[[namespaces]]` entry as written, and the namespace it makes, are core's: the Redis
// publisher is given the same entries, to keep each channel's stream as the hubs do.
use hubbub_core::namespace::NamespaceSpec as NamespaceFile;
pub use hubbub_core::namespace::{Namespace, DEFAULT_HISTORY_TTL, MAX_HISTORY_SIZE, NO_NAMESPACE};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The address hubbub listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9772";

/// The settings of `hubbub`, each a config key, an environment variable and a flag.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Settings (each also a config-file key and a HUBBUB_<KEY> variable)")]
pub struct Overrides {
    /// Address to listen on (HTTP API and WebSocket at /ws) [default: 127.0.0.1:9772]
    #[arg(long, env = "HUBBUB_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Comma-separated HTTP API keys (Authorization: Bearer KEY); no key needed when unset
    #[arg(
        long,
        env = "HUBBUB_API_KEYS",
        value_name = "KEYS",
        value_delimiter = ','
    )]
    pub api_keys: Option<Vec<String>>,

    /// Comma-separated CIDRs allowed to call the HTTP API [default: all; loopback in dev mode]
    #[arg(
        long,
        env = "HUBBUB_ALLOWED_IPS",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub allowed_ips: Option<Vec<String>>,

    /// Comma-separated Origin patterns allowed to open a WebSocket ('*' matches any run) [default: *]
    #[arg(
        long,
        env = "HUBBUB_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// Largest WebSocket frame and HTTP body, in bytes [default: 65536]
    #[arg(long, env = "HUBBUB_MAX_MESSAGE_SIZE", value_name = "BYTES")]
    pub max_message_size: Option<String>,

    /// Most subscriptions one connection may hold [default: 128]
    #[arg(long, env = "HUBBUB_MAX_CHANNELS_PER_CLIENT", value_name = "N")]
    pub max_channels_per_client: Option<String>,

    /// Deliveries queued per connection before it is closed as a slow consumer [default: 1024]
    #[arg(long, env = "HUBBUB_CLIENT_QUEUE", value_name = "N")]
    pub client_queue: Option<String>,

    /// Interval of WebSocket pings; a peer silent for two intervals is closed [default: 25s]
    #[arg(long, env = "HUBBUB_PING_INTERVAL", value_name = "DURATION")]
    pub ping_interval: Option<String>,

    /// Commands per second one connection may send, 0 for no limit [default: 0]
    #[arg(long, env = "HUBBUB_CLIENT_RATE", value_name = "N")]
    pub client_rate: Option<String>,

    /// Open connections (WebSockets and HTTP) in all; 0 for as many as the system's
    /// descriptor limit allows [default: 0]
    #[arg(long, env = "HUBBUB_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<String>,

    /// Open connections from one IP address, 0 for no cap; set it where clients connect
    /// directly, not behind a proxy whose one address they all share [default: 0]
    #[arg(long, env = "HUBBUB_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<String>,

    /// How long an HTTP client may take to send a request's headers; idle keep-alive
    /// connections are closed after as long [default: 10s]
    #[arg(long, env = "HUBBUB_HTTP_TIMEOUT", value_name = "DURATION")]
    pub http_timeout: Option<String>,

    /// Whether tokens must carry an `exp` claim [default: true]
    #[arg(long, env = "HUBBUB_TOKEN_REQUIRE_EXP", value_name = "BOOL")]
    pub token_require_exp: Option<String>,

    /// Comma-separated channel patterns anonymous clients may read [default: none; * in dev mode]
    #[arg(
        long,
        env = "HUBBUB_ANONYMOUS_READ",
        value_name = "PATTERNS",
        value_delimiter = ','
    )]
    pub anonymous_read: Option<Vec<String>>,

    /// Configured users as a TOML array, e.g. '[{name="alice", secret="s", read=["*"], write=["chat:*"]}]'
    #[arg(long, env = "HUBBUB_USERS", value_name = "TOML")]
    pub users: Option<String>,

    /// URL the app answers `connect` hooks at: who is a new connection (its cookies)?
    #[arg(long, env = "HUBBUB_HOOKS_CONNECT_URL", value_name = "URL")]
    pub hooks_connect_url: Option<String>,

    /// URL the app answers `subscribe` hooks at (namespaces with subscribe_hook = true)
    #[arg(long, env = "HUBBUB_HOOKS_SUBSCRIBE_URL", value_name = "URL")]
    pub hooks_subscribe_url: Option<String>,

    /// URL the app answers clients' `rpc` commands at
    #[arg(long, env = "HUBBUB_HOOKS_RPC_URL", value_name = "URL")]
    pub hooks_rpc_url: Option<String>,

    /// URL the app receives unsubscribe, logout and disconnect notices at
    #[arg(long, env = "HUBBUB_HOOKS_EVENTS_URL", value_name = "URL")]
    pub hooks_events_url: Option<String>,

    /// Secret that signs every hook request (HMAC-SHA256); required with any hook URL
    #[arg(
        long,
        env = "HUBBUB_HOOKS_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub hooks_secret: Option<String>,

    /// How long a hook call may take before it fails (UNAVAILABLE) [default: 5s]
    #[arg(long, env = "HUBBUB_HOOKS_TIMEOUT", value_name = "DURATION")]
    pub hooks_timeout: Option<String>,

    /// Where publications, history and presence live: memory (this node alone) or redis
    /// (many nodes sharing one Redis) [default: memory]
    #[arg(long, env = "HUBBUB_ENGINE", value_name = "ENGINE")]
    pub engine: Option<String>,

    /// The Redis of the redis engine (Redis 7 or later); several, comma-separated, spread
    /// the channels over them (every node must list the same, in the same order)
    /// [default: redis://127.0.0.1:6379/0]
    #[arg(long, env = "HUBBUB_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and topic hubbub uses [default: hubbub]
    #[arg(long, env = "HUBBUB_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,

    /// Serve Prometheus metrics at GET /metrics: true or false [default: true]
    #[arg(long, env = "HUBBUB_METRICS", value_name = "BOOL")]
    pub metrics: Option<String>,

    /// Comma-separated CIDRs allowed to read /metrics [default: loopback]
    #[arg(
        long,
        env = "HUBBUB_METRICS_ALLOWED_IPS",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub metrics_allowed_ips: Option<Vec<String>>,

    /// The admin dashboard's password: the dashboard at /admin is off without one
    #[arg(
        long,
        env = "HUBBUB_ADMIN_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// Log lines as "text" or "json" (one JSON object per line) [default: text]
    #[arg(long, env = "HUBBUB_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Namespaces as a TOML array, e.g. '[{pattern="room:*", history_size=100, presence=true}]'
    /// (keys: pattern, history_size, history_ttl, recover, presence, join_leave, subscribe_hook)
    #[arg(long, env = "HUBBUB_NAMESPACES", value_name = "TOML")]
    pub namespaces: Option<String>,
}

/// What the file holds, before checking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    token_secret: Option<String>,
    token_require_exp: Option<bool>,
    api_keys: Option<Vec<String>>,
    allowed_ips: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    max_message_size: Option<u64>,
    max_channels_per_client: Option<u64>,
    client_queue: Option<u64>,
    ping_interval: Option<String>,
    client_rate: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    http_timeout: Option<String>,
    anonymous: Option<Anonymous>,
    users: Option<Vec<User>>,
    namespaces: Option<Vec<NamespaceFile>>,
    hooks: Option<HooksFile>,
    engine: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    metrics: Option<bool>,
    metrics_allowed_ips: Option<Vec<String>>,
    log_format: Option<String>,
    admin_password: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

/// Where publications, history and presence live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// This node alone, in memory.
    Memory,
    /// Many nodes sharing Redis: one instance, or several with the channels spread over
    /// them (`hubbub_core::shard`), in the order given.
    Redis { urls: Vec<String>, prefix: String },
}

/// `[hooks]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    connect_url: Option<String>,
    subscribe_url: Option<String>,
    rpc_url: Option<String>,
    events_url: Option<String>,
    secret: Option<String>,
    timeout: Option<String>,
    forward_headers: Option<Vec<String>>,
    concurrency: Option<u64>,
}

/// The app hooks: where the app answers, and how calls to it are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksConfig {
    pub connect_url: Option<reqwest::Url>,
    pub subscribe_url: Option<reqwest::Url>,
    pub rpc_url: Option<reqwest::Url>,
    pub events_url: Option<reqwest::Url>,
    pub secret: String,
    pub timeout: Duration,
    /// Headers of the WebSocket upgrade request passed on to the connect hook, lower-case.
    pub forward_headers: Vec<String>,
    /// Hook calls in flight at once, per node.
    pub concurrency: usize,
}

/// The headers a connect hook gets when `forward_headers` is not given.
pub const DEFAULT_FORWARD_HEADERS: [&str; 4] =
    ["Cookie", "Authorization", "User-Agent", "X-Forwarded-For"];

/// The longest `ping_interval`, `history_ttl`, `http_timeout` and `hooks.timeout`: the
/// server doubles or adds them to the current time, which overflows, and panics, for durations near the largest
/// one `humantime` reads (the `config` fuzz target checks accepted durations for this).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

// Core checks `history_ttl` against the same limit.
const _: () = assert!(hubbub_core::namespace::MAX_HISTORY_TTL.as_secs() == MAX_DURATION.as_secs());

fn at_most_a_year(key: &str, d: Duration) -> Result<Duration, ConfigError> {
    if d > MAX_DURATION {
        return Err(key_error(key, "must be at most a year"));
    }
    Ok(d)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Anonymous {
    read: Option<Vec<String>>,
}

/// The checked configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Whether no config file was given (zero-config development mode).
    pub dev_mode: bool,
    pub listen: SocketAddr,
    pub token_secret: Option<String>,
    pub token_require_exp: bool,
    pub api_keys: Vec<String>,
    /// `None`: every address may call the HTTP API.
    pub allowed_ips: Option<Vec<IpNet>>,
    pub allowed_origins: Vec<String>,
    pub max_message_size: usize,
    pub max_channels_per_client: usize,
    pub client_queue: usize,
    pub ping_interval: Duration,
    /// Commands per second per connection; 0 for no limit.
    pub client_rate: u32,
    /// Open connections in all; 0 for as many as the system allows.
    pub max_connections: usize,
    /// Open connections per IP address; 0 for no cap.
    pub max_connections_per_ip: usize,
    pub http_timeout: Duration,
    pub anonymous_read: Vec<String>,
    pub users: Vec<User>,
    /// In order: the first whose pattern matches a channel decides for it.
    pub namespaces: Vec<Namespace>,
    /// `None` where no hook URL is set.
    pub hooks: Option<HooksConfig>,
    pub engine: Engine,
    /// Whether `GET /metrics` answers.
    pub metrics: bool,
    /// Who may read `/metrics`.
    pub metrics_allowed_ips: Vec<IpNet>,
    pub log_format: LogFormat,
    /// The admin dashboard's password; `None`: no dashboard.
    pub admin_password: Option<String>,
}

/// A configuration error, naming the key it is about.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// 127.0.0.0/8 and ::1.
fn loopback() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("valid CIDR"),
        "::1/128".parse().expect("valid CIDR"),
    ]
}

/// Whether `ip` (an IPv4-mapped IPv6 address as the IPv4 one) is in one of `nets`.
fn listed(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

fn key_error(key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("invalid config key `{key}`: {message}"))
}

impl Config {
    /// Reads `path` (none for development mode), lays `token_secret` and the overrides over
    /// it, and checks the result.
    pub fn load(
        path: Option<&Path>,
        token_secret: Option<String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => read_file(path)?,
            None => empty_file(),
        };
        Self::build(path.is_none(), file, token_secret, overrides)
    }

    /// Reads a configuration from TOML text, as if from a file, with no overrides (for
    /// running a server in-process).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError(e.to_string()))?;
        let file: File = serde_path_to_error::deserialize(de)
            .map_err(|e| key_error(&e.path().to_string(), e.into_inner().message()))?;
        Self::build(false, file, None, &Overrides::default())
    }

    fn build(
        dev_mode: bool,
        file: File,
        token_secret: Option<String>,
        o: &Overrides,
    ) -> Result<Config, ConfigError> {
        let listen_text = o
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|e| key_error("listen", format!("{listen_text:?} is not HOST:PORT ({e})")))?;

        let token_secret = token_secret.or(file.token_secret);
        if token_secret.as_deref() == Some("") {
            return Err(key_error("token_secret", "is empty"));
        }

        let api_keys = o.api_keys.clone().or(file.api_keys).unwrap_or_default();
        if api_keys.iter().any(|k| k.is_empty()) {
            return Err(key_error("api_keys", "holds an empty key"));
        }

        let metrics_allowed_ips = match o.metrics_allowed_ips.clone().or(file.metrics_allowed_ips) {
            Some(list) => list
                .iter()
                .map(|s| parse_cidr(s).map_err(|e| key_error("metrics_allowed_ips", e)))
                .collect::<Result<Vec<_>, _>>()?,
            None => loopback(),
        };
        let admin_password = o.admin_password.clone().or(file.admin_password);
        if admin_password.as_deref().is_some_and(|p| p.len() < 12) {
            return Err(key_error(
                "admin_password",
                "must be at least 12 characters: it guards every channel and connection",
            ));
        }
        let log_format = match o.log_format.clone().or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(key_error(
                    "log_format",
                    format!("{other:?} is neither \"text\" nor \"json\""),
                ))
            }
        };

        let allowed_ips = match o.allowed_ips.clone().or(file.allowed_ips) {
            Some(list) => Some(
                list.iter()
                    .map(|s| parse_cidr(s).map_err(|e| key_error("allowed_ips", e)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None if dev_mode => Some(loopback()),
            None => None,
        };

        let allowed_origins = o
            .allowed_origins
            .clone()
            .or(file.allowed_origins)
            .unwrap_or_else(|| vec!["*".to_owned()]);

        let max_message_size = positive(
            "max_message_size",
            number("max_message_size", &o.max_message_size)?.or(file.max_message_size),
            65536,
        )?;
        let max_channels_per_client = positive(
            "max_channels_per_client",
            number("max_channels_per_client", &o.max_channels_per_client)?
                .or(file.max_channels_per_client),
            128,
        )?;
        let client_queue = positive(
            "client_queue",
            number("client_queue", &o.client_queue)?.or(file.client_queue),
            1024,
        )?;

        let ping_text = o
            .ping_interval
            .clone()
            .or(file.ping_interval)
            .unwrap_or_else(|| "25s".to_owned());
        let ping_interval = humantime::parse_duration(&ping_text).map_err(|e| {
            key_error(
                "ping_interval",
                format!("{ping_text:?}: {e} (e.g. \"25s\")"),
            )
        })?;
        if ping_interval < Duration::from_millis(10) {
            return Err(key_error("ping_interval", "must be at least 10ms"));
        }
        let ping_interval = at_most_a_year("ping_interval", ping_interval)?;

        let client_rate = number("client_rate", &o.client_rate)?
            .or(file.client_rate)
            .unwrap_or(0);
        let client_rate =
            u32::try_from(client_rate).map_err(|_| key_error("client_rate", "is too large"))?;

        let max_connections = usize::try_from(
            number("max_connections", &o.max_connections)?
                .or(file.max_connections)
                .unwrap_or(0),
        )
        .map_err(|_| key_error("max_connections", "is too large"))?;
        let max_connections_per_ip = usize::try_from(
            number("max_connections_per_ip", &o.max_connections_per_ip)?
                .or(file.max_connections_per_ip)
                .unwrap_or(0),
        )
        .map_err(|_| key_error("max_connections_per_ip", "is too large"))?;
        let http_text = o
            .http_timeout
            .clone()
            .or(file.http_timeout)
            .unwrap_or_else(|| "10s".to_owned());
        let http_timeout = humantime::parse_duration(&http_text)
            .map_err(|e| key_error("http_timeout", format!("{http_text:?}: {e} (e.g. \"10s\")")))?;
        if http_timeout < Duration::from_millis(100) {
            return Err(key_error("http_timeout", "must be at least 100ms"));
        }
        let http_timeout = at_most_a_year("http_timeout", http_timeout)?;

        let anonymous_read = o
            .anonymous_read
            .clone()
            .or(file.anonymous.and_then(|a| a.read))
            .unwrap_or_else(|| {
                if dev_mode {
                    vec!["*".to_owned()]
                } else {
                    Vec::new()
                }
            });

        let users = match &o.users {
            Some(text) => parse_users(text)?,
            None => file.users.unwrap_or_default(),
        };
        let mut names = std::collections::HashSet::new();
        for u in &users {
            if u.name.is_empty() {
                return Err(key_error("users", "a user has an empty name"));
            }
            if !names.insert(&u.name) {
                return Err(key_error(
                    "users",
                    format!("user {:?} is listed twice", u.name),
                ));
            }
            if u.secret.is_empty() {
                return Err(key_error(
                    "users",
                    format!("user {:?} has an empty secret", u.name),
                ));
            }
        }

        let namespaces = match &o.namespaces {
            Some(text) => parse_namespaces(text)?,
            None => file.namespaces.unwrap_or_default(),
        }
        .into_iter()
        .enumerate()
        .map(|(i, n)| namespace(i, n))
        .collect::<Result<Vec<_>, _>>()?;

        let engine = match o.engine.clone().or(file.engine).as_deref() {
            None | Some("memory") => Engine::Memory,
            Some("redis") => {
                let listed = o
                    .redis_url
                    .clone()
                    .or(file.redis_url)
                    .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_owned());
                // Several instances, comma-separated: the channels are spread over them.
                let urls: Vec<String> = listed.split(',').map(|u| u.trim().to_owned()).collect();
                for url in &urls {
                    if let Err(why) = hubbub_core::engine::check_redis_url(url) {
                        let shown = hubbub_core::engine::shown_redis_url(url);
                        return Err(key_error("redis_url", format!("{shown:?} {why}")));
                    }
                }
                if urls.iter().collect::<std::collections::HashSet<_>>().len() < urls.len() {
                    return Err(key_error("redis_url", "lists the same Redis twice"));
                }
                let prefix = o
                    .redis_prefix
                    .clone()
                    .or(file.redis_prefix)
                    .unwrap_or_else(|| hubbub_core::engine::DEFAULT_PREFIX.to_owned());
                hubbub_core::engine::check_prefix(&prefix)
                    .map_err(|e| key_error("redis_prefix", e))?;
                Engine::Redis { urls, prefix }
            }
            Some(other) => {
                return Err(key_error(
                    "engine",
                    format!("{other:?}: give \"memory\" or \"redis\""),
                ))
            }
        };

        let hooks = hooks_config(file.hooks.unwrap_or_default(), o)?;
        for (i, n) in namespaces.iter().enumerate() {
            let has_url = hooks.as_ref().is_some_and(|h| h.subscribe_url.is_some());
            if n.subscribe_hook && !has_url {
                return Err(key_error(
                    &format!("namespaces[{i}].subscribe_hook"),
                    "needs hooks.subscribe_url",
                ));
            }
        }

        Ok(Config {
            dev_mode,
            listen,
            token_secret,
            token_require_exp: boolean("token_require_exp", &o.token_require_exp)?
                .or(file.token_require_exp)
                .unwrap_or(true),
            api_keys,
            allowed_ips,
            allowed_origins,
            max_message_size,
            max_channels_per_client,
            client_queue,
            ping_interval,
            client_rate,
            max_connections,
            max_connections_per_ip,
            http_timeout,
            anonymous_read,
            users,
            namespaces,
            hooks,
            engine,
            metrics: boolean("metrics", &o.metrics)?
                .or(file.metrics)
                .unwrap_or(true),
            metrics_allowed_ips,
            log_format,
            admin_password,
        })
    }

    /// The namespace that decides for `channel`: the first that matches, or one that
    /// keeps nothing.
    pub fn namespace(&self, channel: &str) -> &Namespace {
        hubbub_core::namespace::find(&self.namespaces, channel)
    }

    /// The authenticator this configuration describes.
    pub fn authenticator(&self) -> Authenticator {
        Authenticator::new(
            self.users.clone(),
            self.token_secret.as_deref(),
            self.token_require_exp,
            self.anonymous_read.clone(),
        )
    }

    /// Whether `ip` may call the HTTP API.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        match &self.allowed_ips {
            Some(nets) => listed(nets, ip),
            None => true,
        }
    }

    /// Whether `ip` may read `/metrics`.
    pub fn metrics_ip_allowed(&self, ip: IpAddr) -> bool {
        listed(&self.metrics_allowed_ips, ip)
    }

    /// Whether a browser from `origin` may open a WebSocket.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|p| hubbub_core::auth::origin_matches(p, origin))
    }
}

fn empty_file() -> File {
    toml::from_str("").expect("an empty file is a valid config")
}

fn read_file(path: &Path) -> Result<File, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
    let de = toml::Deserializer::parse(&text)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_owned();
        if key == "." {
            ConfigError(format!("{}: {message}", path.display()))
        } else {
            ConfigError(format!(
                "{}: invalid config key `{key}`: {message}",
                path.display()
            ))
        }
    })
}

fn parse_users(text: &str) -> Result<Vec<User>, ConfigError> {
    #[derive(Deserialize)]
    struct Wrapper {
        users: Vec<User>,
    }
    let wrapped = format!("users = {text}");
    let de = toml::Deserializer::parse(&wrapped).map_err(|e| key_error("users", e))?;
    serde_path_to_error::deserialize::<_, Wrapper>(de)
        .map(|w| w.users)
        .map_err(|e| key_error(&e.path().to_string(), e.into_inner().message()))
}

fn parse_namespaces(text: &str) -> Result<Vec<NamespaceFile>, ConfigError> {
    #[derive(Deserialize)]
    struct Wrapper {
        namespaces: Vec<NamespaceFile>,
    }
    let wrapped = format!("namespaces = {text}");
    let de = toml::Deserializer::parse(&wrapped).map_err(|e| key_error("namespaces", e))?;
    serde_path_to_error::deserialize::<_, Wrapper>(de)
        .map(|w| w.namespaces)
        .map_err(|e| key_error(&e.path().to_string(), e.into_inner().message()))
}

/// Checks the `i`th namespace; errors name its keys as `namespaces[i].key`.
fn namespace(i: usize, n: NamespaceFile) -> Result<Namespace, ConfigError> {
    Namespace::from_spec(n).map_err(|e| key_error(&format!("namespaces[{i}].{}", e.key), e.message))
}

/// Checks `[hooks]` with the flags laid over it; `None` where no URL is set.
fn hooks_config(file: HooksFile, o: &Overrides) -> Result<Option<HooksConfig>, ConfigError> {
    let url = |key: &str, given: &Option<String>, written: Option<String>| match given
        .clone()
        .or(written)
    {
        None => Ok(None),
        Some(text) => {
            let url = reqwest::Url::parse(&text).map_err(|e| {
                key_error(
                    &format!("hooks.{key}"),
                    format!("{text:?} is not a URL: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(key_error(
                    &format!("hooks.{key}"),
                    "must be http:// or https://",
                ));
            }
            Ok(Some(url))
        }
    };
    let connect_url = url("connect_url", &o.hooks_connect_url, file.connect_url)?;
    let subscribe_url = url("subscribe_url", &o.hooks_subscribe_url, file.subscribe_url)?;
    let rpc_url = url("rpc_url", &o.hooks_rpc_url, file.rpc_url)?;
    let events_url = url("events_url", &o.hooks_events_url, file.events_url)?;
    let secret = o.hooks_secret.clone().or(file.secret);
    if connect_url.is_none() && subscribe_url.is_none() && rpc_url.is_none() && events_url.is_none()
    {
        return Ok(None);
    }
    let secret = match secret {
        Some(s) if !s.is_empty() => s,
        _ => {
            return Err(key_error(
                "hooks.secret",
                "is required with any hook URL: it signs every hook request",
            ))
        }
    };
    let timeout_text = o
        .hooks_timeout
        .clone()
        .or(file.timeout)
        .unwrap_or_else(|| "5s".to_owned());
    let timeout = humantime::parse_duration(&timeout_text).map_err(|e| {
        key_error(
            "hooks.timeout",
            format!("{timeout_text:?}: {e} (e.g. \"5s\")"),
        )
    })?;
    if timeout < Duration::from_millis(100) {
        return Err(key_error("hooks.timeout", "must be at least 100ms"));
    }
    let timeout = at_most_a_year("hooks.timeout", timeout)?;
    let forward_headers = file
        .forward_headers
        .unwrap_or_else(|| DEFAULT_FORWARD_HEADERS.map(str::to_owned).to_vec());
    for name in &forward_headers {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(key_error(
                "hooks.forward_headers",
                format!("{name:?} is not a header name"),
            ));
        }
    }
    let concurrency = file.concurrency.unwrap_or(100);
    if concurrency == 0 {
        return Err(key_error("hooks.concurrency", "must be greater than 0"));
    }
    Ok(Some(HooksConfig {
        connect_url,
        subscribe_url,
        rpc_url,
        events_url,
        secret,
        timeout,
        forward_headers: forward_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        concurrency: usize::try_from(concurrency)
            .map_err(|_| key_error("hooks.concurrency", "is too large"))?,
    }))
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.trim()
        .parse::<IpNet>()
        .or_else(|_| text.trim().parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR (e.g. \"10.0.0.0/8\")"))
}

/// Where a setting given on the command line or in the environment comes from, for
/// error messages: the user may have set either.
fn sources(key: &str) -> String {
    format!(
        "--{} or HUBBUB_{}",
        key.replace('_', "-"),
        key.to_ascii_uppercase()
    )
}

/// A whole number given by flag or environment.
fn number(key: &str, text: &Option<String>) -> Result<Option<u64>, ConfigError> {
    text.as_deref()
        .map(|t| {
            t.trim().parse::<u64>().map_err(|_| {
                key_error(
                    key,
                    format!("{t:?} (from {}) is not a whole number", sources(key)),
                )
            })
        })
        .transpose()
}

/// A boolean given by flag or environment.
fn boolean(key: &str, text: &Option<String>) -> Result<Option<bool>, ConfigError> {
    text.as_deref()
        .map(|t| match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(key_error(
                key,
                format!("{t:?} (from {}) is not true or false", sources(key)),
            )),
        })
        .transpose()
}

fn positive(key: &str, value: Option<u64>, default: u64) -> Result<usize, ConfigError> {
    let v = value.unwrap_or(default);
    if v == 0 {
        return Err(key_error(key, "must be greater than 0"));
    }
    usize::try_from(v).map_err(|_| key_error(key, "is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(file: &str, o: &Overrides) -> Result<Config, ConfigError> {
        let f: File = toml::from_str(file).unwrap();
        Config::build(false, f, None, o)
    }

    #[test]
    fn defaults_with_a_file_are_strict() {
        let c = build("", &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.anonymous_read.is_empty());
        assert!(c.allowed_ips.is_none());
        assert_eq!(c.max_message_size, 65536);
        assert_eq!(c.max_channels_per_client, 128);
        assert_eq!(c.client_queue, 1024);
        assert_eq!(c.ping_interval, Duration::from_secs(25));
        assert_eq!(c.client_rate, 0);
    }

    #[test]
    fn dev_mode_reads_everything_and_trusts_loopback() {
        let c = Config::build(true, empty_file(), None, &Overrides::default()).unwrap();
        assert_eq!(c.anonymous_read, ["*"]);
        assert!(c.ip_allowed("127.0.0.1".parse().unwrap()));
        assert!(c.ip_allowed("::1".parse().unwrap()));
        assert!(c.ip_allowed("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.ip_allowed("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn overrides_win_over_the_file() {
        let o = Overrides {
            listen: Some("127.0.0.1:1".into()),
            client_queue: Some("7".into()),
            ..Overrides::default()
        };
        let c = build("listen = \"127.0.0.1:2\"\nclient_queue = 9", &o).unwrap();
        assert_eq!(c.listen.port(), 1);
        assert_eq!(c.client_queue, 7);
    }

    #[test]
    fn a_flag_that_is_not_a_boolean_is_refused_naming_the_key() {
        let o = Overrides {
            metrics: Some("perhaps".into()),
            ..Overrides::default()
        };
        let e = build("", &o).unwrap_err();
        assert!(e.0.contains("`metrics`"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("listen = \"nowhere\"", "listen"),
            ("allowed_ips = [\"10.0.0.0/99\"]", "allowed_ips"),
            ("ping_interval = \"soon\"", "ping_interval"),
            ("client_queue = 0", "client_queue"),
            ("token_secret = \"\"", "token_secret"),
            (
                "[[users]]\nname = \"a\"\nsecret = \"\"",
                "users",
            ),
            (
                "[[namespaces]]\npattern = \"a:*\"\n[[namespaces]]\npattern = \"b:*\"\nhistory_size = 5\nhistory_ttl = \"soon\"",
                "namespaces[1].history_ttl",
            ),
            (
                "[[namespaces]]\npattern = \"a:*\"\nrecover = true",
                "namespaces[0].recover",
            ),
            (
                "[[namespaces]]\npattern = \"a:*\"\nhistory_size = 1000000",
                "namespaces[0].history_size",
            ),
            ("[[namespaces]]\npattern = \"\"", "namespaces[0].pattern"),
            (
                "[[namespaces]]\npattern = \"a:*\"\nsubscribe_hook = true",
                "namespaces[0].subscribe_hook",
            ),
            ("[hooks]\nrpc_url = \"http://app/rpc\"", "hooks.secret"),
            ("engine = \"etcd\"", "engine"),
            ("log_format = \"xml\"", "log_format"),
            ("admin_password = \"short\"", "admin_password"),
            ("metrics_allowed_ips = [\"nowhere\"]", "metrics_allowed_ips"),
            ("engine = \"redis\"\nredis_url = \"http://x\"", "redis_url"),
            ("engine = \"redis\"\nredis_url = \"rediss://x\"", "redis_url"),
            (
                "engine = \"redis\"\nredis_url = \"redis://a,http://b\"",
                "redis_url",
            ),
            (
                "engine = \"redis\"\nredis_url = \"redis://a, redis://a\"",
                "redis_url",
            ),
            (
                "[hooks]\nrpc_url = \"ftp://app/rpc\"\nsecret = \"s\"",
                "hooks.rpc_url",
            ),
            (
                "[hooks]\nconnect_url = \"not a url\"\nsecret = \"s\"",
                "hooks.connect_url",
            ),
            (
                "[hooks]\nrpc_url = \"http://app/rpc\"\nsecret = \"s\"\ntimeout = \"1ms\"",
                "hooks.timeout",
            ),
            (
                "[hooks]\nrpc_url = \"http://app/rpc\"\nsecret = \"s\"\nforward_headers = [\"bad header\"]",
                "hooks.forward_headers",
            ),
            // Were accepted, then panicked at the first connection (twice the ping
            // interval overflows) or publication (now + ttl overflows). The fractional
            // `ping_interval` is the input the config fuzz target kept (fuzz/seeds/config).
            ("ping_interval = \"300000000000y\"", "ping_interval"),
            ("http_timeout = \"300000000000y\"", "http_timeout"),
            (
                "[hooks]\nrpc_url = \"http://app/rpc\"\nsecret = \"s\"\ntimeout = \"300000000000y\"",
                "hooks.timeout",
            ),
            ("ping_interval = \"4s0000.033us333330000000y\"", "ping_interval"),
            (
                "[[namespaces]]\npattern = \"a:*\"\nhistory_size = 5\nhistory_ttl = \"300000000000y\"",
                "namespaces[0].history_ttl",
            ),
        ];
        for (file, key) in cases {
            let err = build(file, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{file}: {err}");
        }
        let o = Overrides {
            users: Some("[{name=\"a\"}]".into()),
            ..Overrides::default()
        };
        let err = build("", &o).unwrap_err().to_string();
        assert!(err.contains("users"), "{err}");
    }

    #[test]
    fn bad_numbers_name_the_variable_and_the_flag() {
        let o = Overrides {
            client_queue: Some("abc".into()),
            ..Overrides::default()
        };
        let err = build("", &o).unwrap_err().to_string();
        assert!(err.contains("HUBBUB_CLIENT_QUEUE"), "{err}");
        assert!(err.contains("--client-queue"), "{err}");
        let o = Overrides {
            token_require_exp: Some("maybe".into()),
            ..Overrides::default()
        };
        let err = build("", &o).unwrap_err().to_string();
        assert!(err.contains("HUBBUB_TOKEN_REQUIRE_EXP"), "{err}");
    }

    #[test]
    fn users_from_the_environment() {
        let o = Overrides {
            users: Some("[{name=\"a\", secret=\"s\", read=[\"*\"]}]".into()),
            ..Overrides::default()
        };
        let c = build("", &o).unwrap();
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].read, ["*"]);
    }

    #[test]
    fn the_first_matching_namespace_decides() {
        let c = build(
            "[[namespaces]]\npattern = \"room:staff\"\npresence = true\n\
             [[namespaces]]\npattern = \"room:*\"\nhistory_size = 10\njoin_leave = true",
            &Overrides::default(),
        )
        .unwrap();
        let staff = c.namespace("room:staff");
        assert!(staff.presence && !staff.stream.keeps_history());
        let room = c.namespace("room:1");
        assert_eq!(room.stream.history_size, 10);
        assert_eq!(room.stream.history_ttl, DEFAULT_HISTORY_TTL);
        assert!(room.recover && room.join_leave && !room.presence);
        assert_eq!(c.namespace("lobby"), &NO_NAMESPACE);
    }
}
