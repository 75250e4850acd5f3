//! `hubbub`: a realtime push hub. Web applications publish over HTTP; browsers receive
//! over WebSocket. The command line over the `hubbub_server` library.

use clap::{Parser, Subcommand};
use hubbub_core::auth::{sign, Claims};
use hubbub_server::config::{Config, LogFormat, Overrides};
use hubbub_server::Shutdown;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hubbub",
    version,
    about = "A realtime push hub: web apps publish over HTTP, browsers receive over WebSocket.",
    long_about = "A realtime push hub: web apps publish over HTTP, browsers receive over WebSocket.\n\n\
        Without --config, hubbub runs in zero-config development mode on 127.0.0.1:9772: anonymous \
        clients may read every channel and the HTTP API accepts loopback callers without a key. \
        With --config FILE (TOML), nothing is implicit.\n\n\
        Every setting below is also a key of the config file and a HUBBUB_<KEY> environment \
        variable (e.g. listen, HUBBUB_LISTEN, --listen). A flag beats the environment, which \
        beats the file. [anonymous] read is HUBBUB_ANONYMOUS_READ / --anonymous-read; \
        [[users]] is HUBBUB_USERS / --users; [[namespaces]] (what channels keep: history, \
        recovery, presence, join/leave) is HUBBUB_NAMESPACES / --namespaces.\n\n\
        WebSocket clients connect to ws://HOST:PORT/ws; publishers call the HTTP API under \
        /api (publish, broadcast, direct, disconnect, channels, info, history/CHANNEL, \
        presence/CHANNEL) with Content-Type: application/json; GET / is a page that shows \
        what arrives on the channel \"hello\". The protocol: docs/protocol.md.",
    after_help = "Examples:\n  \
        hubbub                                   # development mode on 127.0.0.1:9772\n  \
        hubbub --config hubbub.toml              # production\n  \
        hubbub token --config hubbub.toml --user 42 --read 'room:*' --ttl 1h\n  \
        hubbub check-config hubbub.toml          # what a config means, without starting"
)]
struct Cli {
    /// TOML config file (see hubbub.example.toml); without it, development mode
    #[arg(long, short, global = true, env = "HUBBUB_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// HS256 secret that tokens are signed with; tokens are refused when unset
    #[arg(
        long,
        global = true,
        env = "HUBBUB_TOKEN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    token_secret: Option<String>,

    /// Let development mode (no config file) listen on an address other than loopback:
    /// anyone who reaches it may then read every channel
    #[arg(long)]
    dev_public: bool,

    #[command(flatten)]
    settings: Overrides,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed token (JWT) for a user, made with the configured token_secret
    Token(TokenArgs),
    /// Check a config file and print what it means (listen address, auth, namespaces, hooks,
    /// engine, limits, and the keys left to their defaults), without starting; exits 2 with
    /// the message startup would give where it is not valid
    CheckConfig {
        /// The TOML config file
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The user's id (the token's `sub`)
    #[arg(long, value_name = "ID")]
    user: String,

    /// A channel pattern the user may read ('*' matches any run); repeat for more
    #[arg(long, value_name = "PATTERN")]
    read: Vec<String>,

    /// A channel pattern the user may broadcast to; repeat for more
    #[arg(long, value_name = "PATTERN")]
    write: Vec<String>,

    /// How long the token is valid, e.g. 30m, 1h, 7d
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,

    /// A JSON object shown to others in presence, e.g. '{"name": "ann"}'
    #[arg(long, value_name = "JSON")]
    info: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return check_config(file, &cli);
    }
    let config = match Config::load(
        cli.config.as_deref(),
        cli.token_secret.clone(),
        &cli.settings,
    ) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hubbub: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Token(args)) => token(&config, args),
        Some(Command::CheckConfig { .. }) => unreachable!("answered above"),
        None if config.dev_mode && !config.listen.ip().is_loopback() && !cli.dev_public => {
            eprintln!(
                "hubbub: development mode (no config file) lets anyone read every channel, so it \
                 listens on loopback only; {} is not loopback. Give a config file (--config) for \
                 a server others reach, or --dev-public to accept the risk",
                config.listen
            );
            ExitCode::from(2)
        }
        None => serve(config),
    }
}

fn check_config(file: &std::path::Path, cli: &Cli) -> ExitCode {
    let config = match Config::load(Some(file), cli.token_secret.clone(), &cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hubbub: {e}");
            return ExitCode::from(2);
        }
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let defaulted = hubbub_server::check::defaulted(&text);
    print!(
        "{}",
        hubbub_server::check::describe(file, &config, &defaulted)
    );
    ExitCode::SUCCESS
}

fn token(config: &Config, args: TokenArgs) -> ExitCode {
    let Some(secret) = &config.token_secret else {
        eprintln!(
            "hubbub: no token_secret: give --config FILE, --token-secret or HUBBUB_TOKEN_SECRET"
        );
        return ExitCode::from(2);
    };
    let info = match args
        .info
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => None,
        Some(Ok(serde_json::Value::Object(map))) => Some(map),
        Some(_) => {
            eprintln!("hubbub: --info must be a JSON object");
            return ExitCode::from(2);
        }
    };
    let claims = Claims {
        read: args.read,
        write: args.write,
        info,
        ..Claims::new(args.user)
    }
    .issued_now(Some(args.ttl.as_secs_f64()));
    match sign(secret.as_bytes(), &claims) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hubbub: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> ExitCode {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUBBUB_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object a line, the event's fields at the top level, for log shippers.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
        })?;
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        hubbub_server::shutdown::signal().await;
        trigger.trigger();
    });
    hubbub_server::run(listener, config, shutdown).await
}
