//! `hubbub-bench`: one load generator for hubbub and its peers (nchan, sockudo, Centrifugo,
//! Django Channels),
//! run side by side on the same machine, the servers pinned to one CPU set and the load
//! generator to the rest.

mod load;
mod report;
mod scenario;
mod soak;
mod system;
mod target;
mod targets;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use report::{Machine, Report, RunRecord, Skipped};
use scenario::{RampSettings, Run, Scenario, Settings};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use system::{Cpus, Sources};
use target::{Launch, Servers, Target};

#[derive(Parser)]
#[command(
    name = "hubbub-bench",
    version,
    about = "Load generator for hubbub, side by side with nchan, sockudo, Centrifugo and Django \
             Channels.",
    long_about = "Load generator for hubbub, side by side with nchan, sockudo, Centrifugo and \
        Django Channels.\n\n\
        Every target gets the same load from the same generator: each server is pinned to \
        --server-cpus (taskset) and the generator to --client-cpus. Rounds alternate the order \
        of the targets; the table shows medians and each peer's ratio to hubbub.\n\n\
        Scenarios:\n  \
        fanout    N subscribers on one channel; publications of --payload bytes at --fanout-rate \
                  (ramped to the ceiling unless --fixed, like channels, publish and cluster)\n  \
        channels  N clients, each on a personal channel and a group channel of 10; \
                  publications spread over all channels\n  \
        idle      N idle connections; the server's RSS per connection\n  \
        connect   new connections (one subscription each) per second, each waiting for the \
                  answers its protocol gives\n  \
        connect-pipelined  the same, each sending its subscription with the upgrade and \
                  waiting for nothing, the answers awaited together at the end: the work of \
                  a subscription in the URL (nchan's), like for like\n  \
        publish   publications per second through the publish API, one subscriber\n  \
        cluster   fanout over two nodes sharing one redis-server (--redis-bin), the \
                  subscribers split evenly between them, publications alternating; nodes and \
                  Redis all pinned to --server-cpus, their CPU and RSS summed. Same load as \
                  fanout by default (--cluster-subscribers, --cluster-rate), so the table \
                  compares it with fanout on one node. Targets without a cluster mode here \
                  (nchan, sockudo) skip it with the reason; Centrifugo runs its Redis engine, \
                  Django Channels two Daphne processes on one channel layer\n\n\
        Targets (--targets):\n  \
        hubbub      target/release/hubbub (--hubbub-bin)\n  \
        hubbub-history  the same, every channel keeping 100 messages of history (offsets on \
                    every delivery): the cost of streams\n  \
        nchan       Debian's nginx with libnginx-mod-nchan, config bench/nchan/nginx.conf\n  \
        sockudo     cargo install sockudo, config bench/sockudo/config.toml\n  \
        centrifugo  go install github.com/centrifugal/centrifugo/v6@latest (or a prebuilt \
                    binary in PATH or ~/go/bin), config bench/centrifugo/config.json\n  \
        django-channels  Daphne with channels_redis on a redis-server of its own, the \
                    project bench/django-channels/benchsite.py (--daphne-bin)\n\
        A target that is not installed is skipped with a message; bench/setup.sh installs \
        them.\n\n\
        Each reports deliveries per second, publish-to-receive latency p50/p99/max (timestamps \
        inside the payloads, HDR histogram), messages lost, and the server's CPU and RSS.",
    after_help = "Examples:\n  \
        bench/setup.sh                                   # install the peers\n  \
        cargo build --release -p hubbub-server -p hubbub-bench\n  \
        target/release/hubbub-bench run                  # everything, 3 rounds\n  \
        target/release/hubbub-bench run --targets hubbub,nchan --scenarios fanout --rounds 1\n  \
        target/release/hubbub-bench smoke                # a few seconds, hubbub only"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against targets in alternating rounds; print a table, write JSON
    Run(Box<RunArgs>),
    /// A few seconds of every scenario at small scale against hubbub only; fails on any loss
    Smoke(SmokeArgs),
    /// A long run of churn against one hubbub (default 30m): checks every delivery, samples
    /// the server's RSS and descriptors, greps its log for panics; fails on any loss
    Soak(SoakArgs),
    /// Print the table of a JSON report again
    Show {
        /// The JSON file `run` wrote
        file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetName {
    Hubbub,
    HubbubHistory,
    Nchan,
    Sockudo,
    Centrifugo,
    DjangoChannels,
}

#[derive(Args)]
struct RunArgs {
    /// Servers to run, in this order (rounds alternate it)
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "hubbub,nchan,sockudo,centrifugo,django-channels"
    )]
    targets: Vec<TargetName>,

    /// Scenarios to run
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fanout,channels,idle,connect,connect-pipelined,publish,cluster"
    )]
    scenarios: Vec<Scenario>,

    /// Rounds; each runs every target on every scenario on a freshly started server
    #[arg(long, default_value_t = 3)]
    rounds: usize,

    /// CPUs the servers are pinned to (taskset -c syntax)
    #[arg(long, default_value = "0")]
    server_cpus: Cpus,

    /// CPUs the load generator is pinned to
    #[arg(long, default_value = "1")]
    client_cpus: Cpus,

    /// Where the JSON report goes
    #[arg(long, default_value = "bench/results/latest.json")]
    json: PathBuf,

    #[command(flatten)]
    load: LoadArgs,

    #[command(flatten)]
    programs: Programs,
}

#[derive(Args)]
struct SmokeArgs {
    /// Where the JSON report goes (none when unset)
    #[arg(long)]
    json: Option<PathBuf>,

    /// The hubbub binary
    #[arg(long, env = "HUBBUB_BIN", default_value = default_hubbub())]
    hubbub_bin: PathBuf,
}

#[derive(Args)]
struct SoakArgs {
    /// How long the churn lasts
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// How often the server's RSS and descriptors are sampled
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    sample_every: Duration,

    /// Clients that connect, subscribe, read and leave, over and over
    #[arg(long, default_value_t = 40)]
    churners: usize,

    /// Clients that drop their connection and resubscribe with `since`
    #[arg(long, default_value_t = 6)]
    recoverers: usize,

    /// Clients that read too slowly and are closed as slow consumers
    #[arg(long, default_value_t = 3)]
    slow_readers: usize,

    /// Publications per second on each of the 9 checked channels
    #[arg(long, default_value_t = 20.0)]
    rate: f64,

    /// Publications per second on the bulk channel of the slow readers
    #[arg(long, default_value_t = 100.0)]
    bulk_rate: f64,

    /// Size of the bulk channel's publications, in bytes
    #[arg(long, default_value_t = 16384)]
    bulk_size: usize,

    /// Where the JSON report (settings, samples, totals) goes
    #[arg(long, default_value = "bench/results/soak.json")]
    json: PathBuf,

    /// The hubbub binary (the release build)
    #[arg(long, env = "HUBBUB_BIN", default_value = default_hubbub())]
    hubbub_bin: PathBuf,
}

#[derive(Args)]
struct LoadArgs {
    /// Payload size in bytes (timestamp and sequence number included)
    #[arg(long, default_value_t = 100)]
    payload: usize,

    /// How long each rate-driven scenario publishes, with --fixed
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Offer each rate-driven scenario's rate once, for --duration, instead of ramping up
    /// to its ceiling (the highest rate held with nothing lost and p99 within --p99-bound)
    #[arg(long)]
    fixed: bool,

    /// Ramps start at this fraction of each scenario's rate (--fanout-rate,
    /// --channels-rate, --publish-rate, --cluster-rate)
    #[arg(long, default_value_t = 0.25)]
    ramp_from: f64,

    /// Each step of a ramp offers this many times the rate of the one before
    #[arg(long, default_value_t = 1.25)]
    ramp_factor: f64,

    /// Steps of a ramp at most
    #[arg(long, default_value_t = 24)]
    ramp_steps: usize,

    /// How long each step of a ramp publishes
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    step_duration: Duration,

    /// A step of a ramp holds only with its publish-to-receive p99 within this
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    p99_bound: Duration,

    /// fanout: subscribers on the channel
    #[arg(long, default_value_t = 10_000)]
    fanout_subscribers: usize,

    /// fanout: publications per second
    #[arg(long, default_value_t = 20.0)]
    fanout_rate: f64,

    /// cluster: subscribers on the channel, split evenly over the two nodes [default:
    /// --fanout-subscribers, for a like-for-like comparison with fanout]
    #[arg(long)]
    cluster_subscribers: Option<usize>,

    /// cluster: publications per second, alternating between the nodes [default:
    /// --fanout-rate]
    #[arg(long)]
    cluster_rate: Option<f64>,

    /// channels: clients (each on a personal channel and a group channel of 10)
    #[arg(long, default_value_t = 10_000)]
    channels_clients: usize,

    /// channels: publications per second, spread over all channels
    #[arg(long, default_value_t = 10_000.0)]
    channels_rate: f64,

    /// idle: connections (capped by the open-file limit)
    #[arg(long, default_value_t = 50_000)]
    idle_connections: usize,

    /// connect: new connections
    #[arg(long, default_value_t = 10_000)]
    connect_connections: usize,

    /// connect: connections being opened at once
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,

    /// publish: request loops publishing at once, with --fixed (flat out)
    #[arg(long, default_value_t = 32)]
    publish_workers: usize,

    /// publish: publications per second a ramp is scaled from (one subscriber)
    #[arg(long, default_value_t = 80_000.0)]
    publish_rate: f64,

    /// Connections being opened at once while setting up the other scenarios
    #[arg(long, default_value_t = 256)]
    open_concurrency: usize,

    /// Rate-driven publish requests in flight at most
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
}

#[derive(Args)]
struct Programs {
    /// The hubbub binary (the release build)
    #[arg(long, default_value = default_hubbub())]
    hubbub_bin: PathBuf,

    /// nginx with the nchan module [default: nginx in PATH or /usr/sbin]
    #[arg(long)]
    nginx_bin: Option<PathBuf>,

    /// sockudo [default: in PATH or ~/.cargo/bin]
    #[arg(long)]
    sockudo_bin: Option<PathBuf>,

    /// centrifugo [default: in PATH or ~/go/bin]
    #[arg(long)]
    centrifugo_bin: Option<PathBuf>,

    /// redis-server, the cluster scenario's Redis (and Django Channels' channel layer)
    /// [default: in PATH or /usr/sbin]
    #[arg(long)]
    redis_bin: Option<PathBuf>,

    /// Daphne, in a Python environment with bench/django-channels/requirements.txt
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/daphne"))]
    daphne_bin: PathBuf,
}

fn default_hubbub() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/hubbub")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(*args),
        Command::Smoke(args) => smoke_command(args),
        Command::Soak(args) => soak_command(args),
        Command::Show { file } => show(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hubbub-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn show(file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let report: Report = serde_json::from_str(&text)?;
    print!("{}", report::table(&report, Some(&report.settings)));
    Ok(ExitCode::SUCCESS)
}

fn make_target(name: TargetName, programs: &Programs) -> Arc<dyn Target> {
    match name {
        TargetName::Hubbub => Arc::new(targets::hubbub::Hubbub {
            bin: programs.hubbub_bin.clone(),
            history: false,
        }),
        TargetName::HubbubHistory => Arc::new(targets::hubbub::Hubbub {
            bin: programs.hubbub_bin.clone(),
            history: true,
        }),
        TargetName::Nchan => Arc::new(targets::nchan::Nchan {
            bin: programs.nginx_bin.clone(),
        }),
        TargetName::Sockudo => Arc::new(targets::sockudo::Sockudo {
            bin: programs.sockudo_bin.clone(),
        }),
        TargetName::Centrifugo => Arc::new(targets::centrifugo::Centrifugo {
            bin: programs.centrifugo_bin.clone(),
        }),
        TargetName::DjangoChannels => Arc::new(targets::django_channels::DjangoChannels {
            bin: programs.daphne_bin.clone(),
        }),
    }
}

/// Every online CPU, for runs that do not split the machine.
fn all_cpus() -> Cpus {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("0-{}", n - 1).parse().expect("a valid list")
}

fn runtime(workers: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?)
}

/// Caps each connection count at what the open-file limit allows, saying so.
fn cap(settings: &mut Settings, max: usize) {
    for (name, n) in [
        ("fanout subscribers", &mut settings.fanout_subscribers),
        ("channels clients", &mut settings.channels_clients),
        ("idle connections", &mut settings.idle_connections),
        ("connect connections", &mut settings.connect_connections),
        ("cluster subscribers", &mut settings.cluster_subscribers),
    ] {
        if *n > max {
            eprintln!(
                "hubbub-bench: {name}: {} asked, {max} run: the open-file limit cannot be raised \
                 further here (needs CAP_SYS_RESOURCE or a higher hard limit)",
                *n
            );
            *n = max;
        }
    }
}

fn run_command(args: RunArgs) -> Result<ExitCode> {
    let mut settings = Settings {
        payload: args.load.payload,
        duration: args.load.duration,
        fanout_subscribers: args.load.fanout_subscribers,
        fanout_rate: args.load.fanout_rate,
        channels_clients: args.load.channels_clients,
        channels_rate: args.load.channels_rate,
        idle_connections: args.load.idle_connections,
        connect_connections: args.load.connect_connections,
        connect_concurrency: args.load.connect_concurrency,
        publish_workers: args.load.publish_workers,
        open_concurrency: args.load.open_concurrency,
        in_flight: args.load.in_flight,
        cluster_subscribers: args
            .load
            .cluster_subscribers
            .unwrap_or(args.load.fanout_subscribers),
        cluster_rate: args.load.cluster_rate.unwrap_or(args.load.fanout_rate),
        publish_rate: args.load.publish_rate,
        ramp: (!args.load.fixed).then_some(RampSettings {
            from: args.load.ramp_from,
            factor: args.load.ramp_factor,
            max_steps: args.load.ramp_steps,
            step: args.load.step_duration,
            p99_bound_ms: args.load.p99_bound.as_secs_f64() * 1000.0,
            client_cpus: args.client_cpus.ids.len(),
        }),
    };
    let biggest = [
        settings.fanout_subscribers,
        settings.cluster_subscribers,
        settings.channels_clients,
        settings.idle_connections,
        settings.connect_connections,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let nofile = system::raise_nofile(biggest as u64 + 1000);
    cap(&mut settings, system::max_connections(nofile));
    system::pin_self(&args.client_cpus).context("pinning the load generator")?;
    let targets: Vec<Arc<dyn Target>> = args
        .targets
        .iter()
        .map(|&t| make_target(t, &args.programs))
        .collect();
    let plan = Plan {
        targets,
        scenarios: args.scenarios.clone(),
        rounds: args.rounds.max(1),
        settings,
        server_cpus: args.server_cpus.clone(),
        client_cpus: args.client_cpus.clone(),
        nofile,
        redis: args.programs.redis_bin.clone(),
    };
    let report = runtime(args.client_cpus.ids.len())?.block_on(plan.execute())?;
    print!("{}", report::table(&report, Some(&plan.settings)));
    write_json(&report, &args.json)?;
    eprintln!("\nwrote {}", args.json.display());
    Ok(ExitCode::SUCCESS)
}

fn soak_command(args: SoakArgs) -> Result<ExitCode> {
    if !args.hubbub_bin.is_file() {
        bail!("no hubbub binary at {}", args.hubbub_bin.display());
    }
    let settings = soak::Settings {
        duration: args.duration,
        sample_every: args.sample_every,
        churners: args.churners,
        recoverers: args.recoverers,
        slow_readers: args.slow_readers,
        rate: args.rate,
        bulk_rate: args.bulk_rate,
        bulk_size: args.bulk_size,
    };
    system::raise_nofile(4096);
    let dir = tempfile::tempdir()?;
    let report = runtime(2)?.block_on(soak::run(&args.hubbub_bin, settings, dir.path()))?;
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    print!("{}", soak::summary(&report));
    eprintln!("wrote {}", args.json.display());
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn smoke_command(args: SmokeArgs) -> Result<ExitCode> {
    let settings = Settings {
        payload: 100,
        duration: Duration::from_secs(1),
        fanout_subscribers: 100,
        fanout_rate: 50.0,
        channels_clients: 100,
        channels_rate: 200.0,
        idle_connections: 200,
        connect_connections: 200,
        connect_concurrency: 16,
        publish_workers: 4,
        open_concurrency: 64,
        in_flight: 64,
        cluster_subscribers: 100,
        cluster_rate: 50.0,
        publish_rate: 200.0,
        // Two short steps: the ramp works, not where the ceiling is. The bound is loose so
        // that only a loss fails the smoke on a busy machine.
        ramp: Some(RampSettings {
            from: 0.5,
            factor: 2.0,
            max_steps: 2,
            step: Duration::from_secs(1),
            p99_bound_ms: 10_000.0,
            client_cpus: 2,
        }),
    };
    let nofile = system::raise_nofile(4096);
    let programs = Programs {
        hubbub_bin: args.hubbub_bin,
        nginx_bin: None,
        sockudo_bin: None,
        centrifugo_bin: None,
        redis_bin: None,
        daphne_bin: PathBuf::new(),
    };
    let plan = Plan {
        targets: vec![make_target(TargetName::Hubbub, &programs)],
        scenarios: Scenario::ALL.to_vec(),
        rounds: 1,
        settings,
        server_cpus: all_cpus(),
        client_cpus: all_cpus(),
        nofile,
        redis: None,
    };
    let report = runtime(2)?.block_on(plan.execute())?;
    print!("{}", report::table(&report, Some(&plan.settings)));
    if let Some(path) = &args.json {
        write_json(&report, path)?;
    }
    let mut problems = Vec::new();
    for skipped in &report.skipped {
        let what = skipped.scenario.map_or("hubbub", |s| s.name());
        problems.push(format!("{what} was skipped: {}", skipped.reason));
    }
    for run in &report.runs {
        let name = run.scenario.name();
        match (&run.metrics, &run.error) {
            (_, Some(e)) => problems.push(format!("{name}: {e}")),
            (Some(m), None) => {
                if m.delivered == 0 || m.expected == 0 {
                    problems.push(format!("{name}: nothing was delivered"));
                }
                if m.lost > 0 || m.dropped > 0 || m.publish_errors > 0 {
                    problems.push(format!(
                        "{name}: {} lost, {} connections dropped, {} publish errors",
                        m.lost, m.dropped, m.publish_errors
                    ));
                }
            }
            (None, None) => problems.push(format!("{name}: no result")),
        }
    }
    if report.runs.len() != Scenario::ALL.len() {
        problems.push(format!(
            "{} runs for {} scenarios",
            report.runs.len(),
            Scenario::ALL.len()
        ));
    }
    if problems.is_empty() {
        println!("\nsmoke: {} scenarios, 0 lost", report.runs.len());
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("smoke: {p}");
        }
        bail!("the smoke run failed")
    }
}

fn write_json(report: &Report, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("{}", path.display()))
}

/// What to run: every target on every scenario, `rounds` times.
struct Plan {
    targets: Vec<Arc<dyn Target>>,
    scenarios: Vec<Scenario>,
    rounds: usize,
    settings: Settings,
    server_cpus: Cpus,
    client_cpus: Cpus,
    nofile: u64,
    /// redis-server for the cluster scenario (found in PATH when not given).
    redis: Option<PathBuf>,
}

impl Plan {
    async fn execute(&self) -> Result<Report> {
        let mut skipped = Vec::new();
        let mut runnable: Vec<Arc<dyn Target>> = Vec::new();
        for target in &self.targets {
            match target.unavailable() {
                Some(reason) => {
                    eprintln!("hubbub-bench: skipping {}: {reason}", target.name());
                    skipped.push(Skipped {
                        target: target.name().into(),
                        scenario: None,
                        reason,
                    });
                }
                None => runnable.push(target.clone()),
            }
        }
        // The cluster scenario needs a redis-server, and a target with a cluster mode.
        let mut no_cluster: Vec<&'static str> = Vec::new();
        if self.scenarios.contains(&Scenario::Cluster) {
            let redis = self.redis_program();
            for target in &self.targets {
                let reason = match (&redis, target.cluster_unavailable()) {
                    (_, Some(reason)) => reason,
                    (None, None) => "no redis-server (bench/setup.sh installs it; or \
                                     --redis-bin)"
                        .into(),
                    (Some(_), None) => continue,
                };
                eprintln!(
                    "hubbub-bench: skipping the cluster scenario of {}: {reason}",
                    target.name()
                );
                no_cluster.push(target.name());
                skipped.push(Skipped {
                    target: target.name().into(),
                    scenario: Some(Scenario::Cluster),
                    reason,
                });
            }
        }
        let mut sources = Sources::new();
        let mut runs = Vec::new();
        for round in 0..self.rounds {
            // Alternate the order so that no server always runs first (or last).
            let mut order = runnable.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for target in &order {
                for &scenario in &self.scenarios {
                    if scenario == Scenario::Cluster && no_cluster.contains(&target.name()) {
                        continue;
                    }
                    let result = self.once(target.clone(), scenario, &mut sources).await;
                    let record = match result {
                        Ok(m) => {
                            eprintln!(
                                "round {} {:<10} {:<8} {:>12.0} {} p99 {:.2} ms, lost {}, CPU {:.0}% (server CPUs busy {:.0}%, load generator {:.0}%)",
                                round + 1,
                                target.name(),
                                scenario.name(),
                                m.headline(scenario),
                                scenario.headline().0,
                                m.latency.p99_ms,
                                m.lost,
                                m.server_cpu_pct,
                                m.server_set_busy_pct,
                                m.client_cpu_pct
                            );
                            RunRecord {
                                round,
                                target: target.name().into(),
                                scenario,
                                metrics: Some(m),
                                error: None,
                            }
                        }
                        Err(e) => {
                            eprintln!(
                                "round {} {:<10} {:<8} failed: {e:#}",
                                round + 1,
                                target.name(),
                                scenario.name()
                            );
                            RunRecord {
                                round,
                                target: target.name().into(),
                                scenario,
                                metrics: None,
                                error: Some(format!("{e:#}")),
                            }
                        }
                    };
                    runs.push(record);
                }
            }
        }
        let names: Vec<String> = runnable.iter().map(|t| t.name().to_owned()).collect();
        let summary = report::summarize(&runs, &self.scenarios, &names);
        Ok(Report {
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                open_file_limit: self.nofile,
                server_cpus: self.server_cpus.list.clone(),
                client_cpus: self.client_cpus.list.clone(),
            },
            settings: self.settings.clone(),
            rounds: self.rounds,
            skipped,
            runs,
            summary,
        })
    }

    /// How a server starts: pinned to the server CPUs, with `dir` for its files.
    fn launch<'a>(&'a self, dir: &'a Path) -> Launch<'a> {
        Launch {
            cpus: &self.server_cpus,
            dir,
            nofile: self.nofile,
        }
    }

    fn redis_program(&self) -> Option<PathBuf> {
        target::find_program(self.redis.as_deref(), "redis-server")
    }

    /// Starts what `scenario` runs against: one server, or (cluster) a redis-server and the
    /// nodes sharing it, every process pinned to the server CPUs, each with a directory of
    /// its own under `dir`.
    fn start(&self, target: &dyn Target, scenario: Scenario, dir: &Path) -> Result<Servers> {
        if scenario.nodes() == 1 && !target.needs_redis() {
            return Ok(Servers::single(target.start(&self.launch(dir))?));
        }
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir)?;
        let program = self
            .redis_program()
            .context("no redis-server (bench/setup.sh installs it; or --redis-bin)")?;
        let redis = target::start_redis(&program, &self.launch(&redis_dir))?;
        let url = format!("redis://{}/0", redis.addr);
        let mut servers = Servers {
            nodes: Vec::new(),
            backing: vec![redis],
        };
        for i in 0..scenario.nodes() {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            // On failure, `servers` drops: every process started so far is killed.
            servers
                .nodes
                .push(target.start_node(&self.launch(&node_dir), &url)?);
        }
        Ok(servers)
    }

    /// One scenario on a freshly started server.
    async fn once(
        &self,
        target: Arc<dyn Target>,
        scenario: Scenario,
        sources: &mut Sources,
    ) -> Result<scenario::Metrics> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hubbub-bench-{}-", target.name()))
            .tempdir()?;
        let servers = match self.start(target.as_ref(), scenario, dir.path()) {
            Ok(servers) => servers,
            Err(e) => {
                let _ = dir.keep();
                return Err(e);
            }
        };
        let result = scenario::run(
            scenario,
            Run {
                target: target.clone(),
                servers: &servers,
                settings: &self.settings,
                sources,
            },
        )
        .await;
        let log = servers.logs();
        servers.stop(Duration::from_secs(10));
        // Give the kernel a moment to take down the last run's sockets.
        tokio::time::sleep(Duration::from_millis(500)).await;
        if result.is_err() {
            // Keep the server's log for the error message to point at.
            let _ = dir.keep();
        }
        result.with_context(|| format!("server logs: {log}"))
    }
}
