//! Results: every run, the medians over rounds with each peer's ratio to hubbub, the table
//! on stdout and the JSON file.

use crate::scenario::{Latency, Metrics, Scenario, Settings};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

#[derive(Serialize, Deserialize)]
pub struct Report {
    /// Seconds since the Unix epoch when the run started.
    pub started: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub rounds: usize,
    pub skipped: Vec<Skipped>,
    pub runs: Vec<RunRecord>,
    pub summary: Vec<Summary>,
}

#[derive(Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub kernel: String,
    pub open_file_limit: u64,
    pub server_cpus: String,
    pub client_cpus: String,
}

#[derive(Serialize, Deserialize)]
pub struct Skipped {
    pub target: String,
    /// The one scenario skipped (the cluster, for a target without one); none: every
    /// scenario of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
pub struct RunRecord {
    pub round: usize,
    pub target: String,
    pub scenario: Scenario,
    pub metrics: Option<Metrics>,
    pub error: Option<String>,
}

/// The median of a scenario's runs on one target.
#[derive(Serialize, Deserialize)]
pub struct Summary {
    pub scenario: Scenario,
    pub target: String,
    pub runs: usize,
    pub failed: usize,
    pub median: Metrics,
    /// The headline figure (see `headline`) of this target over hubbub's.
    pub ratio_to_hubbub: Option<f64>,
    pub cpu_ratio_to_hubbub: Option<f64>,
    pub p99_ratio_to_hubbub: Option<f64>,
    /// Name and unit of the headline figure.
    pub headline: String,
    pub headline_value: f64,
    pub higher_is_better: bool,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Field-by-field medians of several runs.
fn median_metrics(runs: &[&Metrics]) -> Metrics {
    let f = |get: &dyn Fn(&Metrics) -> f64| median(runs.iter().map(|m| get(m)).collect());
    let opt = |get: &dyn Fn(&Metrics) -> Option<f64>| {
        let values: Vec<f64> = runs.iter().filter_map(|m| get(m)).collect();
        (!values.is_empty()).then(|| median(values))
    };
    let latency = |get: &dyn Fn(&Metrics) -> Option<Latency>| {
        let values: Vec<Latency> = runs.iter().filter_map(|m| get(m)).collect();
        (!values.is_empty()).then(|| Latency {
            p50_ms: median(values.iter().map(|l| l.p50_ms).collect()),
            p99_ms: median(values.iter().map(|l| l.p99_ms).collect()),
            max_ms: median(values.iter().map(|l| l.max_ms).collect()),
        })
    };
    Metrics {
        connections: f(&|m| m.connections as f64) as usize,
        publications: f(&|m| m.publications as f64) as u64,
        expected: f(&|m| m.expected as f64) as u64,
        delivered: f(&|m| m.delivered as f64) as u64,
        // Losses are never hidden by a median: the worst round counts.
        lost: runs.iter().map(|m| m.lost).max().unwrap_or(0),
        dropped: runs.iter().map(|m| m.dropped).max().unwrap_or(0),
        publish_errors: runs.iter().map(|m| m.publish_errors).max().unwrap_or(0),
        seconds: f(&|m| m.seconds),
        deliveries_per_s: f(&|m| m.deliveries_per_s),
        publishes_per_s: f(&|m| m.publishes_per_s),
        latency: latency(&|m| Some(m.latency)).unwrap_or_default(),
        connects_per_s: opt(&|m| m.connects_per_s),
        connect_latency: latency(&|m| m.connect_latency),
        rss_per_connection_kib: opt(&|m| m.rss_per_connection_kib),
        server_cpu_pct: f(&|m| m.server_cpu_pct),
        server_rss_mib: f(&|m| m.server_rss_mib),
        client_cpu_pct: f(&|m| m.client_cpu_pct),
        server_set_busy_pct: f(&|m| m.server_set_busy_pct),
        ramp: None,
    }
}

/// Medians per scenario and target, in the order given, with ratios to hubbub.
pub fn summarize(runs: &[RunRecord], scenarios: &[Scenario], targets: &[String]) -> Vec<Summary> {
    let mut out = Vec::new();
    for &scenario in scenarios {
        let mut rows: Vec<Summary> = Vec::new();
        for target in targets {
            let mine: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.scenario == scenario && &r.target == target)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let ok: Vec<&Metrics> = mine.iter().filter_map(|r| r.metrics.as_ref()).collect();
            let (headline, _, higher_is_better) = scenario.headline();
            let median = median_metrics(&ok);
            rows.push(Summary {
                scenario,
                target: target.clone(),
                runs: mine.len(),
                failed: mine.len() - ok.len(),
                headline_value: if ok.is_empty() {
                    0.0
                } else {
                    median.headline(scenario)
                },
                median,
                ratio_to_hubbub: None,
                cpu_ratio_to_hubbub: None,
                p99_ratio_to_hubbub: None,
                headline: headline.to_owned(),
                higher_is_better,
            });
        }
        let hubbub = rows
            .iter()
            .find(|r| r.target == "hubbub" && r.failed < r.runs)
            .map(|r| {
                (
                    r.headline_value,
                    r.median.server_cpu_pct,
                    r.median.latency.p99_ms,
                )
            });
        if let Some((headline, cpu, p99)) = hubbub {
            for row in rows.iter_mut().filter(|r| r.failed < r.runs) {
                let ratio = |mine: f64, theirs: f64| (theirs > 0.0).then(|| mine / theirs);
                row.ratio_to_hubbub = ratio(row.headline_value, headline);
                row.cpu_ratio_to_hubbub = ratio(row.median.server_cpu_pct, cpu);
                row.p99_ratio_to_hubbub = ratio(row.median.latency.p99_ms, p99);
            }
        }
        out.extend(rows);
    }
    out
}

/// What a scenario was run with, for the table's headings.
pub fn describe(scenario: Scenario, s: &Settings) -> String {
    let fixed = describe_fixed(scenario, s);
    match (&s.ramp, scenario) {
        (None, _) | (_, Scenario::Idle | Scenario::Connect | Scenario::ConnectPipelined) => fixed,
        (Some(r), _) => format!(
            "{fixed}; ramped: from {} x that rate, x {} per step of {} s, until a step loses \
             or drops anything, falls behind the rate, or has p99 over {} ms; figures are the \
             last step that held (the ceiling)",
            r.from,
            r.factor,
            r.step.as_secs_f64(),
            r.p99_bound_ms
        ),
    }
}

fn describe_fixed(scenario: Scenario, s: &Settings) -> String {
    let secs = s.duration.as_secs_f64();
    match scenario {
        Scenario::Fanout => format!(
            "{} subscribers on one channel, {} pub/s for {secs} s, {} B payloads",
            s.fanout_subscribers, s.fanout_rate, s.payload
        ),
        Scenario::Channels => format!(
            "{} clients on a personal and a group channel of 10, {} pub/s for {secs} s over all channels",
            s.channels_clients, s.channels_rate
        ),
        Scenario::Idle => format!(
            "{} idle connections (one subscription each), then one publication to all",
            s.idle_connections
        ),
        Scenario::Connect => format!(
            "{} new connections with one subscription each, {} at a time",
            s.connect_connections, s.connect_concurrency
        ),
        Scenario::ConnectPipelined => format!(
            "{} new connections with one subscription each, {} at a time, each sending its \
             subscription with the upgrade and waiting for no answer; answers (or the server's \
             count) awaited all together at the end",
            s.connect_connections, s.connect_concurrency
        ),
        Scenario::Publish if s.ramp.is_some() => format!(
            "{} pub/s to one channel with one subscriber, {} B payloads",
            s.publish_rate, s.payload
        ),
        Scenario::Publish => format!(
            "publishes as fast as {} request loops go for {secs} s, one subscriber",
            s.publish_workers
        ),
        Scenario::Cluster => format!(
            "{} subscribers on one channel split over {} nodes sharing one Redis, {} pub/s \
             (alternating between the nodes) for {secs} s, {} B payloads; the nodes and Redis \
             share the server CPUs, CPU and RSS are their sum",
            s.cluster_subscribers,
            crate::scenario::CLUSTER_NODES,
            s.cluster_rate,
            s.payload
        ),
    }
}

/// For a target's cluster row: how it compares with the same target's fanout (one node), or
/// why the two are not comparable.
fn against_one_node(report: &Report, cluster: &Summary) -> Option<String> {
    let one = report.summary.iter().find(|s| {
        s.scenario == Scenario::Fanout && s.target == cluster.target && s.failed < s.runs
    })?;
    let s = &report.settings;
    if s.fanout_subscribers != s.cluster_subscribers || s.fanout_rate != s.cluster_rate {
        return Some(format!(
            "fanout (one node) ran {} subscribers at {} pub/s: not the same load",
            s.fanout_subscribers, s.fanout_rate
        ));
    }
    let ratio = |mine: f64, theirs: f64| {
        if theirs > 0.0 {
            format!("{:.2}", mine / theirs)
        } else {
            "-".into()
        }
    };
    let (c, o) = (&cluster.median, &one.median);
    Some(format!(
        "against fanout on one node ({} deliveries/s, p99 {} ms, CPU {}%, RSS {} MiB): \
         x figure {}, x p99 {}, x CPU {}, x RSS {}",
        number(one.headline_value),
        number(o.latency.p99_ms),
        number(o.server_cpu_pct),
        number(o.server_rss_mib),
        ratio(cluster.headline_value, one.headline_value),
        ratio(c.latency.p99_ms, o.latency.p99_ms),
        ratio(c.server_cpu_pct, o.server_cpu_pct),
        ratio(c.server_rss_mib, o.server_rss_mib),
    ))
}

/// For a ramped scenario: each round's ceiling (offered publications/s) and why its ramp
/// stopped.
fn ramps(report: &Report, scenario: Scenario, target: &str) -> Option<String> {
    let rounds: Vec<String> = report
        .runs
        .iter()
        .filter(|r| r.scenario == scenario && r.target == target)
        .filter_map(|r| r.metrics.as_ref()?.ramp.as_ref())
        .map(|ramp| {
            let ceiling = ramp.ceiling_step.map_or("none held".to_owned(), |i| {
                format!("{} pub/s", number(ramp.steps[i].offered_per_s))
            });
            let stop = ramp.steps.last().and_then(|s| s.failed.as_deref());
            let bound = if ramp.generator_bound {
                ", the load generator at its CPU limit"
            } else {
                ""
            };
            match stop {
                Some(why) => format!("{ceiling} (then {why}{bound})"),
                None => format!("{ceiling} (every step held{bound})"),
            }
        })
        .collect();
    (!rounds.is_empty()).then(|| format!("ceilings: {}", rounds.join("; ")))
}

fn ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into())
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The table: one block per scenario, one row per target.
pub fn table(report: &Report, settings: Option<&Settings>) -> String {
    let mut out = String::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for s in &report.summary {
        if !scenarios.contains(&s.scenario) {
            scenarios.push(s.scenario);
        }
    }
    for scenario in scenarios {
        let (headline, _, higher) = scenario.headline();
        let _ = writeln!(out);
        let _ = write!(out, "{}", scenario.name());
        if let Some(settings) = settings {
            let _ = write!(out, ": {}", describe(scenario, settings));
        }
        let _ = writeln!(
            out,
            "\n  (median of {} rounds; x = peer / hubbub, {} is better for the first ratio)",
            report.rounds,
            if higher { "higher" } else { "lower" }
        );
        let _ = writeln!(
            out,
            "  {:<11} {:>15} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7}",
            "target",
            headline,
            "p50 ms",
            "p99 ms",
            "max ms",
            "lost",
            "dropped",
            "CPU %",
            "RSS MiB",
            "x figure",
            "x CPU",
            "x p99"
        );
        for s in report.summary.iter().filter(|s| s.scenario == scenario) {
            if s.failed == s.runs {
                let _ = writeln!(out, "  {:<11} failed in every round", s.target);
                continue;
            }
            let m = &s.median;
            let _ = writeln!(
                out,
                "  {:<11} {:>15} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7}{}",
                s.target,
                number(s.headline_value),
                number(m.latency.p50_ms),
                number(m.latency.p99_ms),
                number(m.latency.max_ms),
                m.lost,
                m.dropped,
                number(m.server_cpu_pct),
                number(m.server_rss_mib),
                ratio(s.ratio_to_hubbub),
                ratio(s.cpu_ratio_to_hubbub),
                ratio(s.p99_ratio_to_hubbub),
                if s.failed > 0 {
                    format!("  ({} of {} rounds failed)", s.failed, s.runs)
                } else {
                    String::new()
                }
            );
            if let Some(line) = ramps(report, scenario, &s.target) {
                let _ = writeln!(out, "  {:<11} {line}", "");
            }
            if scenario == Scenario::Cluster {
                if let Some(line) = against_one_node(report, s) {
                    let _ = writeln!(out, "  {:<11} {line}", "");
                }
            }
            if let Some(c) = &m.connect_latency {
                let _ = writeln!(
                    out,
                    "  {:<11} connect+subscribe p50 {} ms, p99 {} ms, max {} ms",
                    "",
                    number(c.p50_ms),
                    number(c.p99_ms),
                    number(c.max_ms)
                );
            }
        }
    }
    for s in &report.skipped {
        match s.scenario {
            Some(scenario) => {
                let _ = writeln!(
                    out,
                    "\nskipped {} {}: {}",
                    s.target,
                    scenario.name(),
                    s.reason
                );
            }
            None => {
                let _ = writeln!(out, "\nskipped {}: {}", s.target, s.reason);
            }
        }
    }
    let failures: Vec<&RunRecord> = report.runs.iter().filter(|r| r.error.is_some()).collect();
    for r in failures {
        let _ = writeln!(
            out,
            "failed: {} {} round {}: {}",
            r.target,
            r.scenario.name(),
            r.round + 1,
            r.error.as_deref().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn ratios_are_to_hubbub_and_losses_keep_the_worst_round() {
        let run = |target: &str, round, dps, lost| RunRecord {
            round,
            target: target.into(),
            scenario: Scenario::Fanout,
            metrics: Some(Metrics {
                deliveries_per_s: dps,
                lost,
                server_cpu_pct: 50.0,
                ..Metrics::default()
            }),
            error: None,
        };
        let runs = vec![
            run("hubbub", 0, 100.0, 0),
            run("hubbub", 1, 300.0, 0),
            run("hubbub", 2, 200.0, 0),
            run("peer", 0, 50.0, 0),
            run("peer", 1, 100.0, 7),
            run("peer", 2, 150.0, 0),
        ];
        let summary = summarize(
            &runs,
            &[Scenario::Fanout],
            &["hubbub".into(), "peer".into()],
        );
        assert_eq!(summary[0].headline_value, 200.0);
        assert_eq!(summary[1].ratio_to_hubbub, Some(0.5));
        assert_eq!(summary[1].cpu_ratio_to_hubbub, Some(1.0));
        assert_eq!(summary[1].median.lost, 7);
    }

    fn settings(cluster_subscribers: usize) -> Settings {
        Settings {
            payload: 100,
            duration: std::time::Duration::from_secs(1),
            fanout_subscribers: 100,
            fanout_rate: 50.0,
            channels_clients: 0,
            channels_rate: 0.0,
            idle_connections: 0,
            connect_connections: 0,
            connect_concurrency: 0,
            publish_workers: 0,
            open_concurrency: 0,
            in_flight: 0,
            cluster_subscribers,
            cluster_rate: 50.0,
            publish_rate: 0.0,
            ramp: None,
        }
    }

    #[test]
    fn a_ramp_counts_its_last_step_that_held_and_says_why_it_stopped() {
        use crate::scenario::{Ramp, RampStep};
        let step = |offered: f64, failed: Option<&str>| RampStep {
            offered_per_s: offered,
            failed: failed.map(str::to_owned),
            metrics: Metrics {
                deliveries_per_s: offered * 10.0,
                ..Metrics::default()
            },
        };
        let ramped = |steps: Vec<RampStep>, ceiling_step: Option<usize>| {
            let mut m = steps[ceiling_step.unwrap_or(0)].metrics.clone();
            m.ramp = Some(Box::new(Ramp {
                p99_bound_ms: 250.0,
                steps,
                ceiling_step,
                generator_bound: false,
            }));
            m
        };
        let held = ramped(
            vec![step(10.0, None), step(20.0, Some("p99 300 ms"))],
            Some(0),
        );
        assert_eq!(held.headline(Scenario::Fanout), 100.0);
        let none = ramped(vec![step(10.0, Some("3 lost"))], None);
        assert_eq!(none.headline(Scenario::Fanout), 0.0);
        let mut report = cluster_report(100);
        report.runs = vec![RunRecord {
            round: 0,
            target: "hubbub".into(),
            scenario: Scenario::Fanout,
            metrics: Some(held),
            error: None,
        }];
        report.summary = summarize(&report.runs, &[Scenario::Fanout], &["hubbub".into()]);
        let table = table(&report, None);
        assert!(
            table.contains("ceilings: 10.0 pub/s (then p99 300 ms)"),
            "{table}"
        );
    }

    fn cluster_report(cluster_subscribers: usize) -> Report {
        let run = |scenario, dps, cpu| RunRecord {
            round: 0,
            target: "hubbub".into(),
            scenario,
            metrics: Some(Metrics {
                deliveries_per_s: dps,
                server_cpu_pct: cpu,
                ..Metrics::default()
            }),
            error: None,
        };
        let runs = vec![
            run(Scenario::Fanout, 4000.0, 20.0),
            run(Scenario::Cluster, 3000.0, 40.0),
        ];
        let scenarios = [Scenario::Fanout, Scenario::Cluster];
        let summary = summarize(&runs, &scenarios, &["hubbub".into()]);
        Report {
            started: 0,
            machine: Machine {
                cpus: 2,
                kernel: String::new(),
                open_file_limit: 1024,
                server_cpus: "0".into(),
                client_cpus: "1".into(),
            },
            settings: settings(cluster_subscribers),
            rounds: 1,
            skipped: vec![Skipped {
                target: "nchan".into(),
                scenario: Some(Scenario::Cluster),
                reason: "no cluster here".into(),
            }],
            runs,
            summary,
        }
    }

    #[test]
    fn the_cluster_row_compares_with_fanout_on_one_node_under_the_same_load() {
        let report = cluster_report(100);
        let text = table(&report, Some(&report.settings));
        assert!(
            text.contains("against fanout on one node (4000 deliveries/s"),
            "{text}"
        );
        assert!(
            text.contains("x figure 0.75") && text.contains("x CPU 2.00"),
            "{text}"
        );
        assert!(
            text.contains("skipped nchan cluster: no cluster here"),
            "{text}"
        );

        let other = cluster_report(5000);
        let text = table(&other, Some(&other.settings));
        assert!(text.contains("not the same load"), "{text}");
    }

    #[test]
    fn reports_from_before_the_cluster_scenario_still_read() {
        let mut json = serde_json::to_value(cluster_report(100)).unwrap();
        let settings = json["settings"].as_object_mut().unwrap();
        settings.remove("cluster_subscribers");
        settings.remove("cluster_rate");
        json["skipped"][0]
            .as_object_mut()
            .unwrap()
            .remove("scenario");
        let report: Report = serde_json::from_value(json).unwrap();
        assert_eq!(report.settings.cluster_subscribers, 0);
        assert!(report.skipped[0].scenario.is_none());
    }
}
