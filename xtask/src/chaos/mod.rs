//! `cargo xtask chaos`: a cluster of real `eve-node` processes, each in its own network
//! namespace, under a key-value load from several clients, through a seeded schedule of
//! faults: partitions (one process cut off, halves, bridges, one-way cuts), random loss, slow
//! links, SIGKILL and restart, SIGSTOP pauses, wall-clock skew. Every client call is recorded
//! and the history judged: linearizable per key, no acknowledged write lost, how long the
//! cluster took to serve again after each heal, latency inside and outside the faults.
//!
//! The simulator tests the protocol logic; this tests what it cannot see: the QUIC stack, the
//! runtime, the disk, timers on a real clock, the operating system. It needs root (network
//! namespaces, nftables, tc); without them it says so and stops.

mod clients;
mod history;
mod net;
mod procs;
mod schedule;
mod timeline;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use clients::Recorder;
use eve_apps::KvOp;
use eve_node::admin::RoleReport;
use eve_node::config::Mode;
use eve_node::init::{InitOptions, init};
use eve_sim::kv_history::{KvEvent, check_kv_history};
use eve_sim::linearizability::SearchBudget;
use eve_types::ReplicationMode;
use schedule::{Fault, Window};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The options of `cargo xtask chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// How long the load runs, in seconds (`300` or `300s`)
    #[arg(long, default_value = "300", value_parser = parse_seconds)]
    duration: Duration,
    /// The schedule's seed [default: drawn from the clock, and printed]
    #[arg(long)]
    seed: Option<u64>,
    /// `U,R` for Eve (such as `1,0` or `1,1`) or `pb` for primary-backup
    #[arg(long, default_value = "1,0", value_parser = crate::sim::parse_mode)]
    mode: ReplicationMode,
    /// Where each process keeps its state: memory or disk
    #[arg(long, default_value = "memory", value_parser = ["memory", "disk"])]
    storage: String,
    /// Clients calling at once
    #[arg(long, default_value_t = 6)]
    clients: u64,
    /// Keys the clients spread over
    #[arg(long, default_value_t = 24)]
    keys: u64,
    /// Fault kinds to draw, comma-separated: isolate, halves, bridge, one-way, loss, kill,
    /// pause, skew (needs libfaketime), slow [default: all available]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    faults: Option<Vec<String>>,
    /// The eve-node binary [default: built here, release]
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The report folder [default: target/chaos/seed-<SEED>]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where this machine cannot make network namespaces (not root, no nftables), say so and
    /// succeed instead of failing (for CI)
    #[arg(long)]
    skip_unavailable: bool,
    /// Print the fault schedule the seed draws, and stop
    #[arg(long)]
    plan: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    let seconds: u64 = digits
        .parse()
        .map_err(|e| format!("`{text}`: seconds, such as 300 or 300s ({e})"))?;
    if !(20..=86_400).contains(&seconds) {
        return Err(format!("`{text}`: between 20 s and a day"));
    }
    Ok(Duration::from_secs(seconds))
}

/// How long a client waits for a call before recording it as unknown.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The criterion for calls started outside every fault window: the share that must return
/// within [`SERVED_WITHIN`].
const SERVED_SHARE_MIN: f64 = 0.99;

/// See [`SERVED_SHARE_MIN`].
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// How long the cluster has, once the faults are healed and the load stopped, to bring every
/// role to the same committed batch.
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);

/// How long the cluster has to answer its first call after the processes start.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How often the run looks for processes that exited on their own (and for convergence).
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Reads of each key at the end before it is left unread (each waits up to `READY_WITHIN`).
const FINAL_READ_TRIES: usize = 5;

/// A client's rest between calls (bounds the history's size).
const THINK: Duration = Duration::from_millis(2);

/// The first port of the cluster (every process has its own address, so any port will do).
const BASE_PORT: u16 = 7700;

/// Runs a chaos run and fails when its history does.
pub fn run(args: &ChaosArgs) -> Result<()> {
    ensure!(
        (1..=64).contains(&args.clients),
        "--clients {}: 1 ..= 64",
        args.clients
    );
    ensure!(
        (1..=1000).contains(&args.keys),
        "--keys {}: 1 ..= 1000",
        args.keys
    );
    if !args.plan
        && let Some(why) = net::unavailable()
    {
        let line =
            format!("chaos runs need network namespaces, and this machine cannot make them: {why}");
        if args.skip_unavailable {
            println!("chaos: skipped: {line}");
            return Ok(());
        }
        bail!(line);
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_000)
    });
    let faketime = procs::faketime();
    let kinds = fault_kinds(args.faults.as_deref(), faketime.is_some())?;
    let disk = args.storage == "disk";
    if args.plan {
        let nodes = process_count(args.mode);
        let tolerated = match args.mode {
            ReplicationMode::Eve { u, .. } => u as usize,
            ReplicationMode::PrimaryBackup => 1,
        };
        let options = schedule_options(nodes, tolerated, disk, kinds);
        for w in schedule::draw(seed, args.duration, &options) {
            println!(
                "{:>6.1} s to {:>6.1} s  {}",
                w.start.as_secs_f64(),
                w.end.as_secs_f64(),
                w.fault
            );
        }
        return Ok(());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/chaos/seed-{seed}")));
    let repeat = format!(
        "cargo xtask chaos --seed {seed} --duration {} --mode {} --storage {} --clients {} --keys {} --faults {}",
        args.duration.as_secs(),
        mode_arg(args.mode),
        args.storage,
        args.clients,
        args.keys,
        kinds.join(",")
    );
    println!("chaos: {repeat}");
    if faketime.is_none() && args.faults.is_none() {
        println!("chaos: no clock skew: libfaketime is not installed (apt-get install faketime)");
    }
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => build_node()?,
    };
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let cluster_dir = out.join("cluster");
    let (mode, u, r) = match args.mode {
        ReplicationMode::Eve { u, r } => (Mode::Eve, u, r),
        ReplicationMode::PrimaryBackup => (Mode::PrimaryBackup, 1, 0),
    };
    let processes = process_count(args.mode);
    ensure!(processes <= net::NODES_MAX, "too many processes");
    let written = init(
        &InitOptions {
            name: "chaos".to_owned(),
            mode,
            u,
            r,
            // One for each load client and one for the final reads.
            clients: args.clients + 1,
            process_hosts: (0..processes).map(net::address).collect(),
            base_port: BASE_PORT,
            disk,
            ..InitOptions::default()
        },
        &cluster_dir,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let options = schedule_options(processes, u as usize, disk, kinds.clone());
    let windows = schedule::draw(seed, args.duration, &options);
    let net = net::Net::build(processes)?;
    let mut procs = procs::Processes::new(&binary, &written.nodes, &out, faketime);
    procs.start_all()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let outcome = runtime.block_on(drive(
        args,
        seed,
        &written.clients,
        &windows,
        &net,
        &mut procs,
    ));
    let mut tails = String::new();
    for i in 0..procs.len() {
        let _ = writeln!(
            tails,
            "--- node-{i} (last lines)\n{}",
            procs.log_tail(i, 15)
        );
    }
    drop(procs);
    drop(net);
    let run = outcome?;
    let verdict = judge(&run, &windows, args.duration);
    let report = report(&repeat, &run, &windows, &verdict);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.md"), &report)?;
    let mut jsonl = String::new();
    for event in &run.history {
        jsonl += &serde_json::to_string(event)?;
        jsonl.push('\n');
    }
    std::fs::write(out.join("history.jsonl"), jsonl)?;
    for (process, metrics) in &run.metrics {
        let text = metrics
            .as_deref()
            .unwrap_or("# the process did not answer\n");
        std::fs::write(out.join(format!("{process}.metrics")), text)?;
    }
    timeline::draw(
        &out.join("timeline.svg"),
        &format!(
            "chaos seed {seed}, {} {}",
            mode_arg(args.mode),
            args.storage
        ),
        &history::timeline(&run.history, run.end_us),
        &windows,
    )?;
    println!("{report}");
    println!("wrote {}", out.display());
    if !verdict.failures.is_empty() {
        eprintln!("{tails}");
        bail!(
            "the chaos run failed ({}); repeat it with: {repeat}",
            verdict.failures.join("; ")
        );
    }
    Ok(())
}

/// The processes a cluster of `mode` runs (replica `i` and verifier `i` together).
fn process_count(mode: ReplicationMode) -> usize {
    match mode {
        ReplicationMode::Eve { u, r } => {
            let sizes = eve_types::QuorumSizes::eve(u, r);
            sizes.n_exec.max(sizes.n_ver)
        }
        ReplicationMode::PrimaryBackup => 2,
    }
}

/// What the schedule draws from: fault windows of 6 to 20 s (longer than every timeout of the
/// protocol and of the clients), quiet spells of 5 to 12 s between them.
fn schedule_options(
    nodes: usize,
    tolerated: usize,
    disk: bool,
    kinds: Vec<&'static str>,
) -> schedule::Options {
    schedule::Options {
        nodes,
        tolerated,
        disk,
        kinds,
        fault_min: Duration::from_secs(6),
        fault_max: Duration::from_secs(20),
        quiet_min: Duration::from_secs(5),
        quiet_max: Duration::from_secs(12),
    }
}

fn mode_arg(mode: ReplicationMode) -> String {
    match mode {
        ReplicationMode::Eve { u, r } => format!("{u},{r}"),
        ReplicationMode::PrimaryBackup => "pb".to_owned(),
    }
}

/// The kinds to draw: those asked for, or every kind this machine can lay on.
fn fault_kinds(asked: Option<&[String]>, faketime: bool) -> Result<Vec<&'static str>> {
    let Some(asked) = asked else {
        return Ok(schedule::KINDS
            .iter()
            .copied()
            .filter(|&k| k != "skew" || faketime)
            .collect());
    };
    let mut kinds = Vec::new();
    for name in asked {
        let kind = schedule::KINDS
            .iter()
            .copied()
            .find(|k| k == name)
            .with_context(|| {
                format!(
                    "unknown fault {name:?}: one of {}",
                    schedule::KINDS.join(", ")
                )
            })?;
        ensure!(
            kind != "skew" || faketime,
            "--faults skew needs libfaketime (apt-get install faketime)"
        );
        kinds.push(kind);
    }
    ensure!(!kinds.is_empty(), "--faults needs at least one kind");
    Ok(kinds)
}

/// Builds eve-node in release and returns its path.
fn build_node() -> Result<PathBuf> {
    println!("chaos: cargo build --release -p eve-node");
    crate::node_binary::build()
}

/// What the run recorded.
struct Run {
    history: Vec<KvEvent>,
    /// When the load stopped, in µs from the start.
    end_us: u64,
    /// Processes that exited without being killed: `(index, status)`.
    crashed: Vec<(usize, String)>,
    /// When each window's fault was laid and healed, in µs (as it happened).
    applied: Vec<(u64, u64)>,
    /// Each process's roles as they stood at the end.
    roles: Vec<(String, Option<Vec<RoleReport>>)>,
    /// How long after the load stopped every role agreed (or what still differed).
    converged: Result<u64, String>,
    /// Each process's metrics at the end (`None`: no answer), for the report folder.
    metrics: Vec<(String, Option<String>)>,
}

async fn drive(
    args: &ChaosArgs,
    seed: u64,
    client_configs: &[PathBuf],
    windows: &[Window],
    net: &net::Net,
    procs: &mut procs::Processes,
) -> Result<Run> {
    let start = Instant::now();
    let final_config = client_configs.last().expect("init wrote the clients");
    // The cluster serves before the load and the faults begin.
    let mut reader = Recorder::connect(final_config, start, READY_WITHIN)?;
    let ready = reader
        .call(KvOp::Get {
            key: clients::key(0),
        })
        .await;
    ensure!(
        ready.is_some(),
        "the cluster did not answer within {READY_WITHIN:?} of starting: see the processes' logs in the report folder"
    );
    // Time from here on.
    let start = Instant::now();
    reader.rebase(start);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (c, config) in client_configs[..args.clients as usize].iter().enumerate() {
        let mut recorder = Recorder::connect(config, start, CALL_TIMEOUT)?;
        let (stop, keys) = (stop.clone(), args.keys);
        let client_seed = eve_types::splitmix64(seed ^ c as u64);
        tasks.push(tokio::spawn(async move {
            recorder.drive(keys, client_seed, THINK, stop).await;
            recorder.close().await
        }));
    }
    let mut crashed = Vec::new();
    let mut applied = Vec::new();
    let us = |at: Instant| (at - start).as_micros() as u64;
    for window in windows {
        wait_watching(procs, start + window.start, &mut crashed).await;
        println!(
            "chaos: {:>6.1} s  {}",
            start.elapsed().as_secs_f64(),
            window.fault
        );
        let laid = Instant::now();
        lay(&window.fault, net, procs).with_context(|| format!("laying {}", window.fault))?;
        wait_watching(procs, start + window.end, &mut crashed).await;
        heal(&window.fault, net, procs).with_context(|| format!("healing {}", window.fault))?;
        println!("chaos: {:>6.1} s  healed", start.elapsed().as_secs_f64());
        applied.push((us(laid), us(Instant::now())));
    }
    wait_watching(procs, start + args.duration, &mut crashed).await;
    stop.store(true, Ordering::Relaxed);
    let mut history = Vec::new();
    for task in tasks {
        history.extend(task.await.context("a client task")?);
    }
    let end_us = us(Instant::now());
    // The final reads: every key, each until it is answered (the faults are over).
    for k in 0..args.keys {
        for _ in 0..FINAL_READ_TRIES {
            if reader
                .call(KvOp::Get {
                    key: clients::key(k),
                })
                .await
                .is_some()
            {
                break;
            }
        }
    }
    history.extend(reader.close().await);
    // The liveness phase: with every fault healed and the load stopped, every role must reach
    // the same committed batch (and every replica the same state) within CONVERGE_WITHIN.
    let converge_deadline = Instant::now() + CONVERGE_WITHIN;
    let (roles, converged) = loop {
        let roles = statuses(final_config).await;
        let converged = converged(&roles);
        if converged.is_ok() || Instant::now() >= converge_deadline {
            break (roles, converged);
        }
        tokio::time::sleep(WATCH_EVERY).await;
    };
    let converged = converged.map(|()| us(Instant::now()) - end_us);
    let metrics = end_metrics(final_config).await;
    wait_watching(procs, Instant::now(), &mut crashed).await;
    Ok(Run {
        history,
        end_us,
        crashed,
        applied,
        roles,
        converged,
        metrics,
    })
}

/// Whether every role answered and stands at the same committed batch, every replica with the
/// same state root; otherwise what differs.
fn converged(roles: &[(String, Option<Vec<RoleReport>>)]) -> Result<(), String> {
    let mut committed = std::collections::BTreeMap::new();
    let mut roots = std::collections::BTreeSet::new();
    for (process, reports) in roles {
        let reports = reports
            .as_ref()
            .ok_or_else(|| format!("{process} does not answer"))?;
        for r in reports {
            committed.insert(r.node.clone(), r.committed);
            if let Some(root) = &r.state_root {
                roots.insert(root.clone());
            }
        }
    }
    let lowest = committed.values().min();
    let highest = committed.values().max();
    if lowest != highest {
        return Err(format!("committed batches differ: {committed:?}"));
    }
    if roots.len() > 1 {
        return Err(format!("{} different state roots", roots.len()));
    }
    Ok(())
}

/// Every role's status at the end, from its process's admin endpoint (`None`: no answer).
async fn statuses(config: &Path) -> Vec<(String, Option<Vec<RoleReport>>)> {
    from_every_process(config, eve_node::admin::fetch_status).await
}

/// Every process's metrics at the end, from its admin endpoint (`None`: no answer): the
/// counters (drops by reason, view changes, catch-ups) that explain a failed run.
async fn end_metrics(config: &Path) -> Vec<(String, Option<String>)> {
    from_every_process(config, eve_node::admin::fetch_metrics).await
}

/// What `fetch` reads from the admin endpoint of every process of the cluster `config`
/// describes, by process name (`None`: no answer; empty if the configuration does not load).
async fn from_every_process<T, F, Fut>(config: &Path, fetch: F) -> Vec<(String, Option<T>)>
where
    F: Fn(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let Ok(loaded) = eve_node::config::LoadedConfig::load(config) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (process, &addr) in &loaded.file.cluster.admin {
        out.push((process.clone(), fetch(addr).await.ok()));
    }
    out
}

/// Sleeps until `until`, noting every [`WATCH_EVERY`] the processes that exited on their own.
async fn wait_watching(
    procs: &mut procs::Processes,
    until: Instant,
    crashed: &mut Vec<(usize, String)>,
) {
    loop {
        crashed.extend(
            procs
                .exited()
                .into_iter()
                .map(|(i, status)| (i, status.to_string())),
        );
        let now = Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep_until((now + WATCH_EVERY).min(until)).await;
    }
}

/// Lays `fault`.
fn lay(fault: &Fault, net: &net::Net, procs: &mut procs::Processes) -> Result<()> {
    match fault {
        Fault::Kill { nodes } => nodes.iter().try_for_each(|&i| procs.kill(i)),
        Fault::Pause { node } => procs.pause(*node, true),
        Fault::Skew { node, offset_s } => procs.skew(*node, *offset_s),
        network => net.apply(network),
    }
}

/// Heals `fault`.
fn heal(fault: &Fault, net: &net::Net, procs: &mut procs::Processes) -> Result<()> {
    match fault {
        Fault::Kill { nodes } => nodes.iter().try_for_each(|&i| procs.start(i)),
        Fault::Pause { node } => procs.pause(*node, false),
        Fault::Skew { node, .. } => procs.skew(*node, 0),
        _ => net.heal(),
    }
}

/// What the history shows.
struct Verdict {
    outcomes: history::Outcomes,
    lost: usize,
    linearizable: Result<String, String>,
    recoveries: Vec<Option<Duration>>,
    /// The longest stretch without a reply from each heal to the next fault.
    stalls: Vec<Duration>,
    outside: history::Latency,
    during: history::Latency,
    failures: Vec<String>,
}

fn judge(run: &Run, windows: &[Window], duration: Duration) -> Verdict {
    let outcomes = history::outcomes(&run.history);
    let lost = history::lost_writes(&run.history).len();
    let linearizable = match check_kv_history(&run.history, SearchBudget::default()) {
        Ok(stats) => Ok(format!(
            "linearizable: {} calls on {} keys ({} search states)",
            stats.calls, stats.keys, stats.states_explored
        )),
        Err(violation) => Err(shorten(&violation.to_string())),
    };
    let recoveries: Vec<Option<Duration>> = run
        .applied
        .iter()
        .map(|&(_, healed)| history::recovery(&run.history, Duration::from_micros(healed)))
        .collect();
    // From each heal to the next fault (or the end of the load).
    let stalls: Vec<Duration> = run
        .applied
        .iter()
        .enumerate()
        .map(|(i, &(_, healed))| {
            let next = run.applied.get(i + 1).map_or(run.end_us, |&(laid, _)| laid);
            history::longest_stall(
                &run.history,
                Duration::from_micros(healed),
                Duration::from_micros(next.max(healed)),
            )
        })
        .collect();
    let outside = history::latency(&run.history, windows, false, SERVED_WITHIN, run.end_us);
    let during = history::latency(&run.history, windows, true, SERVED_WITHIN, run.end_us);
    let mut failures = Vec::new();
    if lost > 0 {
        failures.push(format!("{lost} acknowledged writes lost"));
    }
    if let Err(violation) = &linearizable {
        failures.push(format!("not linearizable: {violation}"));
    }
    for (i, status) in &run.crashed {
        failures.push(format!("node-{i} exited on its own ({status})"));
    }
    if outside.within_share() < SERVED_SHARE_MIN {
        failures.push(format!(
            "{:.2}% of calls started outside the faults returned within {SERVED_WITHIN:?} (at least {}% required)",
            outside.within_share() * 100.0,
            SERVED_SHARE_MIN * 100.0
        ));
    }
    let healed_before_end = run
        .applied
        .iter()
        .zip(&recoveries)
        .filter(|((_, healed), _)| Duration::from_micros(*healed) + SERVED_WITHIN < duration);
    for (i, (_, recovery)) in healed_before_end.enumerate() {
        if recovery.is_none() {
            failures.push(format!("no call returned after window {i} healed"));
        }
    }
    if outcomes.ok == 0 {
        failures.push("no call returned".to_owned());
    }
    if let Err(differs) = &run.converged {
        failures.push(format!(
            "the roles did not converge within {CONVERGE_WITHIN:?} of the end: {differs}"
        ));
    }
    Verdict {
        outcomes,
        lost,
        linearizable,
        recoveries,
        stalls,
        outside,
        during,
        failures,
    }
}

/// `text` cut to its first 600 characters (a violation lists every call it placed).
fn shorten(text: &str) -> String {
    const SHOWN: usize = 600;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{} ... ({} characters)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

fn report(repeat: &str, run: &Run, windows: &[Window], verdict: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# chaos run\n\n`{repeat}`\n");
    let o = verdict.outcomes;
    let _ = writeln!(
        out,
        "- calls: {} ok, {} failed, {} unknown (timed out: may or may not have taken effect)",
        o.ok, o.failed, o.unknown
    );
    let _ = writeln!(out, "- acknowledged writes lost: {}", verdict.lost);
    let _ = writeln!(
        out,
        "- history: {}",
        match &verdict.linearizable {
            Ok(stats) => stats.clone(),
            Err(violation) => format!("NOT LINEARIZABLE: {violation}"),
        }
    );
    let latency = |name: &str, l: &history::Latency| {
        format!(
            "- started {name} a fault: {} calls, p99 {:.1} ms, {:.2}% returned within {} s",
            l.calls,
            l.p99_ms,
            l.within_share() * 100.0,
            SERVED_WITHIN.as_secs()
        )
    };
    let _ = writeln!(out, "{}", latency("outside", &verdict.outside));
    let _ = writeln!(out, "{}", latency("during", &verdict.during));
    let longest = verdict.stalls.iter().max();
    let _ = writeln!(
        out,
        "- longest unavailability after a heal (no reply at all, until the next fault): {}",
        longest.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
    );
    if run.crashed.is_empty() {
        let _ = writeln!(out, "- processes that exited on their own: none");
    } else {
        let _ = writeln!(
            out,
            "- processes that exited on their own: {:?}",
            run.crashed
        );
    }
    let answered = run.metrics.iter().filter(|(_, m)| m.is_some()).count();
    let _ = writeln!(
        out,
        "- metrics at the end (`PROCESS.metrics` beside this report): {answered} of {} processes answered",
        run.metrics.len()
    );
    let _ = writeln!(
        out,
        "\n| # | from (s) | to (s) | fault | first reply after heal (ms) | longest stall after heal (ms) |\n| ---: | ---: | ---: | --- | ---: | ---: |"
    );
    for (i, (((window, (laid, healed)), recovery), stall)) in windows
        .iter()
        .zip(&run.applied)
        .zip(&verdict.recoveries)
        .zip(&verdict.stalls)
        .enumerate()
    {
        let _ = writeln!(
            out,
            "| {i} | {:.1} | {:.1} | {} | {} | {} |",
            *laid as f64 / 1e6,
            *healed as f64 / 1e6,
            window.fault,
            recovery.map_or("-".to_owned(), |d| d.as_millis().to_string()),
            stall.as_millis()
        );
    }
    let _ = writeln!(
        out,
        "- every role on the same committed batch after the load stopped: {}",
        match &run.converged {
            Ok(us) => format!("yes, within {:.1} s", *us as f64 / 1e6),
            Err(differs) => format!("NO: {differs}"),
        }
    );
    let _ = writeln!(out, "\nAt the end (views count the view changes):\n");
    for (process, roles) in &run.roles {
        match roles {
            None => {
                let _ = writeln!(out, "- {process}: no answer");
            }
            Some(roles) => {
                for r in roles {
                    let _ = writeln!(
                        out,
                        "- {}: view {}, committed {}{}",
                        r.node,
                        r.view,
                        r.committed,
                        r.state_root.as_ref().map_or(String::new(), |root| format!(
                            ", root {}",
                            &root[..12.min(root.len())]
                        ))
                    );
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\nverdict: {}",
        if verdict.failures.is_empty() {
            "passed".to_owned()
        } else {
            format!("FAILED: {}", verdict.failures.join("; "))
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(node: &str, committed: u64, root: Option<&str>) -> RoleReport {
        RoleReport {
            node: node.to_owned(),
            role: if root.is_some() {
                "replica"
            } else {
                "verifier"
            }
            .to_owned(),
            view: 1,
            primary: None,
            committed,
            stable: None,
            state_root: root.map(str::to_owned),
            recovering: false,
            objects: None,
            bytes: None,
            dropped: 0,
            refused: 0,
        }
    }

    #[test]
    fn the_liveness_phase_wants_every_role_on_one_batch_and_one_root() {
        let process = |roles: Vec<RoleReport>| ("node-0".to_owned(), Some(roles));
        let agreed = [process(vec![
            role("replica-0", 9, Some("ab")),
            role("verifier-0", 9, None),
        ])];
        assert_eq!(converged(&agreed), Ok(()));
        let behind = [process(vec![
            role("replica-0", 9, Some("ab")),
            role("verifier-0", 8, None),
        ])];
        assert!(
            converged(&behind)
                .unwrap_err()
                .contains("committed batches differ")
        );
        let forked = [process(vec![
            role("replica-0", 9, Some("ab")),
            role("replica-1", 9, Some("cd")),
        ])];
        assert!(
            converged(&forked)
                .unwrap_err()
                .contains("2 different state roots")
        );
        let silent = [("node-1".to_owned(), None)];
        assert!(
            converged(&silent)
                .unwrap_err()
                .contains("node-1 does not answer")
        );
    }
}
