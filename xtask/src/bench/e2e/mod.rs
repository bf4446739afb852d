//! `cargo xtask bench e2e`: the replicated service end to end, side by side with its baselines
//! on the same machine and workload.
//!
//! For every point (work per request, conflict rate) each system is started fresh, driven by
//! the same load generator ([`load`]) for a warm-up and a measured window, and stopped:
//! - `eve-seq`: Eve's cluster with the sequential mixer, classic sequential-execution
//!   replication (the paper's main baseline);
//! - `eve`: Eve, u = 1, r = 0, parallel execution (3 replicas, 3 verifiers);
//! - `pb`: Eve's primary-backup mode, parallel (what the paper compares with Remus);
//! - `alone`: the application alone, unreplicated, parallel: the ceiling;
//! - `eve-r1`: Eve tolerating a Byzantine fault (u = 1, r = 1), and `eve-disk`: Eve with every
//!   role on disk: what each costs;
//! - `etcd`: three etcd members on loopback, found on the `PATH` (YCSB workloads only): the
//!   peer a user would otherwise pick, driven through its JSON gateway ([`etcd`]).
//!
//! The report gives throughput and latency percentiles per system, and the ratios eve/eve-seq,
//! pb/eve-seq and eve/alone beside the limit the machine sets: replicas that share one machine
//! share its cores, so with `R` replicas on `C` cores parallel replication can use `C` cores
//! where sequential uses `R`, and eve/eve-seq can reach at most about `max(1, C / R)`.

mod alone;
mod charts;
mod etcd;
mod keys;
mod kv;
mod load;
mod micro;
mod plot;
mod systems;

use super::calibrate::Calibration;
use super::report::{Column, Header, Table};
use crate::release;
use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use clap::Args;
use eve_apps::{BusyWork, KvStore};
use eve_types::ClientId;
use eve_types::limits::{MERKLE_BUCKET_BITS_MAX, MERKLE_BUCKET_BITS_MIN};
use keys::KeyDist;
use kv::{KvDraw, Ycsb};
use load::{Caller, Draw, Load, LoadReport, Progress};
use micro::Micro;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use systems::{Running, Setup, System};

/// The options of `cargo xtask bench e2e`.
#[derive(Debug, Args)]
pub struct E2eArgs {
    /// Systems to measure, comma-separated, in this order: eve-seq, eve, pb, alone, eve-r1,
    /// eve-disk, etcd (YCSB only; from the PATH) [default: all; etcd when installed]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    systems: Option<Vec<String>>,
    /// Workloads, comma-separated: micro (busy work, see --work-us), ycsb-a, ycsb-b, ycsb-c
    /// (key-value, see --keys), transfer (multi-key transactions, see --keys)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "micro"
    )]
    workloads: Vec<String>,
    /// micro: microseconds of busy work per request, comma-separated
    #[arg(
        long = "work-us",
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "1,100,1000"
    )]
    work_us: Vec<u64>,
    /// micro: percent of requests that write one shared hot object
    #[arg(long, default_value_t = 0)]
    conflicts: u64,
    /// Key-value workloads: how records are drawn, comma-separated: zipfian (YCSB's 0.99),
    /// uniform
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "zipfian"
    )]
    keys: Vec<String>,
    /// Key-value workloads: records (YCSB) or accounts (transfer), loaded before measuring
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// YCSB: bytes per value
    #[arg(long = "value-bytes", default_value_t = 100)]
    value_bytes: usize,
    /// Clients, each with one call outstanding
    #[arg(long, default_value_t = 64)]
    clients: u64,
    /// Open loop: calls due per second, comma-separated: a sweep of latency against load
    /// (latencies count from when a call was due); without it, a closed loop
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    rate: Vec<f64>,
    /// Seconds measured per system and point, after a warm-up of a fifth as long (at least 1 s)
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Executor worker threads per replica, comma-separated: a sweep [default: the cores
    /// available]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    threads: Option<Vec<usize>>,
    /// The state's Merkle tree has 2^BITS buckets
    #[arg(long = "bucket-bits", default_value_t = 12)]
    bucket_bits: u8,
    /// The first port of the clusters' nodes (each system started takes the next 8)
    #[arg(long, default_value_t = 7800)]
    base_port: u16,
    /// The cost of divergence: eve is measured again with this percent of its parallel
    /// batches forced to diverge on every replica (each rolled back and executed again
    /// sequentially), comma-separated; 0 adds nothing
    #[arg(long, value_delimiter = ',', value_name = "LIST", default_value = "0")]
    diverge: Vec<f64>,
    /// Times each system is measured at each point, in turn; the report gives the run of
    /// median throughput and the range of all
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Seed of the workload's draws
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as Markdown to FILE, and as CSV next to it
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// One workload of a point.
#[derive(Clone, Copy, Debug)]
enum Workload {
    Micro { work_us: u64, rounds: u32 },
    Ycsb { workload: Ycsb, keys: KeyDist },
    Transfer { keys: KeyDist },
}

impl Workload {
    fn label(self) -> String {
        match self {
            Workload::Micro { work_us, .. } => format!("micro-{work_us}us"),
            Workload::Ycsb { workload, keys } => {
                format!("{}-{}", workload.name(), keys.name())
            }
            Workload::Transfer { keys } => format!("transfer-{}", keys.name()),
        }
    }
}

/// The workloads the arguments ask for.
fn workloads(args: &E2eArgs, calibration: &Calibration) -> Result<Vec<Workload>> {
    let dists: Vec<KeyDist> = args
        .keys
        .iter()
        .map(|k| KeyDist::parse(k))
        .collect::<Result<_>>()?;
    ensure!(!dists.is_empty(), "--keys needs at least one distribution");
    let mut out = Vec::new();
    for name in &args.workloads {
        match name.as_str() {
            "micro" => {
                ensure!(
                    !args.work_us.is_empty(),
                    "--work-us needs at least one value"
                );
                for &work_us in &args.work_us {
                    let rounds = calibration.rounds_for(work_us)?;
                    out.push(Workload::Micro { work_us, rounds });
                }
            }
            "ycsb-a" | "ycsb-b" | "ycsb-c" => {
                let workload = match name.as_str() {
                    "ycsb-a" => Ycsb::A,
                    "ycsb-b" => Ycsb::B,
                    _ => Ycsb::C,
                };
                out.extend(dists.iter().map(|&keys| Workload::Ycsb { workload, keys }));
            }
            "transfer" => out.extend(dists.iter().map(|&keys| Workload::Transfer { keys })),
            other => anyhow::bail!(
                "unknown workload {other:?}: micro, ycsb-a, ycsb-b, ycsb-c or transfer"
            ),
        }
    }
    ensure!(!out.is_empty(), "--workloads needs at least one workload");
    Ok(out)
}

/// Longest measurement a point may ask for, in seconds.
const SECONDS_MAX: f64 = 3600.0;

/// Most measurements of one system at one point.
const REPEAT_MAX: usize = 100;

/// Highest rate an open loop may offer, in calls per second.
const RATE_MAX: f64 = 10_000_000.0;

/// Where a measurement lies: indices into the thread counts, workloads and loads measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    threads: usize,
    workload: usize,
    load: usize,
}

/// Everything measured.
#[derive(Default)]
pub struct Results {
    /// Each system at each point.
    plain: BTreeMap<(At, System), LoadReport>,
    /// eve at each point with the `d`th forced divergence rate.
    diverged: BTreeMap<(At, usize), LoadReport>,
}

/// The name of a load in the tables.
fn load_label(load: Load) -> String {
    match load {
        Load::Closed => "closed".to_owned(),
        Load::Open { per_second } => format!("{per_second}/s"),
    }
}

const COLUMNS: [Column; 13] = [
    Column::new("threads", 7),
    Column::new("workload", 22),
    Column::new("load", 9),
    Column::new("system", 12),
    Column::new("ops_s", 9),
    Column::new("ops_s_range", 13),
    Column::new("p50_ms", 7),
    Column::new("p99_ms", 7),
    Column::new("p999_ms", 8),
    Column::new("svc_p99_ms", 10),
    Column::new("failed", 6),
    Column::new("missed", 6),
    Column::new("vs_eve_seq", 10),
];

const RATIO_COLUMNS: [Column; 10] = [
    Column::new("threads", 7),
    Column::new("workload", 22),
    Column::new("load", 9),
    Column::new("eve/eve-seq", 11),
    Column::new("limit", 5),
    Column::new("pb/eve-seq", 10),
    Column::new("eve/alone", 9),
    Column::new("eve-r1/eve", 10),
    Column::new("eve-disk/eve", 12),
    Column::new("eve-disk/etcd", 13),
];

const DIVERGENCE_COLUMNS: [Column; 6] = [
    Column::new("threads", 7),
    Column::new("workload", 22),
    Column::new("load", 9),
    Column::new("diverged_pct", 12),
    Column::new("ops_s", 9),
    Column::new("vs_eve_clean", 12),
];

/// Runs the comparison, printing a row per system and point, then the ratios.
pub fn run(args: &E2eArgs) -> Result<()> {
    let mut systems: Vec<System> = match &args.systems {
        Some(names) => names
            .iter()
            .map(|n| System::parse(n))
            .collect::<Result<_>>()?,
        None => System::ALL.to_vec(),
    };
    ensure!(!systems.is_empty(), "--systems needs at least one system");
    let etcd_binary = if systems.contains(&System::Etcd) {
        match etcd::find() {
            Some(binary) => Some(binary),
            None if args.systems.is_some() => anyhow::bail!("--systems etcd: {}", etcd::MISSING),
            None => {
                println!("etcd: not measured: {}", etcd::MISSING);
                systems.retain(|&s| s != System::Etcd);
                None
            }
        }
    } else {
        None
    };
    ensure!(
        args.conflicts <= 100,
        "--conflicts {}: a percentage",
        args.conflicts
    );
    ensure!(
        (1..=100_000).contains(&args.clients),
        "--clients {}: must be in 1 ..= 100000",
        args.clients
    );
    ensure!(
        (2..=100_000_000).contains(&args.records),
        "--records {}: must be in 2 ..= 100000000",
        args.records
    );
    ensure!(
        args.value_bytes <= eve_types::limits::OBJECT_VALUE_BYTES_MAX,
        "--value-bytes {}: at most {}",
        args.value_bytes,
        eve_types::limits::OBJECT_VALUE_BYTES_MAX
    );
    ensure!(
        args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= SECONDS_MAX,
        "--seconds {}: must be more than 0 and at most {SECONDS_MAX}",
        args.seconds
    );
    ensure!(
        (1..=REPEAT_MAX).contains(&args.repeat),
        "--repeat {}: must be in 1 ..= {REPEAT_MAX}",
        args.repeat
    );
    for &rate in &args.rate {
        ensure!(
            rate.is_finite() && rate > 0.0 && rate <= RATE_MAX,
            "--rate {rate}: calls per second, above 0 and at most {RATE_MAX}"
        );
    }
    ensure!(
        (MERKLE_BUCKET_BITS_MIN..=MERKLE_BUCKET_BITS_MAX).contains(&args.bucket_bits),
        "--bucket-bits {}: must be in {MERKLE_BUCKET_BITS_MIN} ..= {MERKLE_BUCKET_BITS_MAX}",
        args.bucket_bits
    );
    ensure!(
        args.diverge.iter().all(|p| (0.0..=100.0).contains(p)),
        "--diverge: each value is a percentage, 0 ..= 100"
    );
    let diverge: Vec<f64> = args.diverge.iter().copied().filter(|&p| p > 0.0).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.clone().unwrap_or_else(|| vec![cores]);
    ensure!(
        threads
            .iter()
            .all(|&t| (1..=eve_types::limits::EXECUTOR_THREADS_MAX).contains(&t)),
        "--threads: each value must be in 1 ..= {}",
        eve_types::limits::EXECUTOR_THREADS_MAX
    );
    let loads: Vec<Load> = if args.rate.is_empty() {
        vec![Load::Closed]
    } else {
        args.rate
            .iter()
            .map(|&per_second| Load::Open { per_second })
            .collect()
    };
    let measure = Duration::from_secs_f64(args.seconds);
    let warmup = (measure / 5).max(Duration::from_secs(1));
    let calibration = Calibration::measure()?;
    let workloads = workloads(args, &calibration)?;

    let mut header = Header::new(
        "eve end to end: replicated against sequential, primary-backup and unreplicated",
        &release::command_line(),
    );
    header.fact("systems", &join(systems.iter().map(|s| s.name())));
    if let Some(binary) = &etcd_binary {
        header.fact(
            "etcd (YCSB workloads only)",
            &format!("{} ({})", etcd::version(binary)?, binary.display()),
        );
    }
    header.fact("workloads", &join(workloads.iter().map(|w| w.label())));
    header.fact(
        "conflicting requests of micro (%)",
        &args.conflicts.to_string(),
    );
    header.fact(
        "key-value records (value bytes)",
        &format!("{} ({})", args.records, args.value_bytes),
    );
    header.fact("clients", &args.clients.to_string());
    header.fact(
        "load",
        &if args.rate.is_empty() {
            "closed loop (one call outstanding per client)".to_owned()
        } else {
            format!(
                "open loop, calls due per second: {} (latency from when due)",
                join(args.rate.iter())
            )
        },
    );
    header.fact("executor threads per replica", &join(threads.iter()));
    header.fact(
        "eve again with parallel batches forced to diverge (%)",
        &if diverge.is_empty() {
            "none".to_owned()
        } else {
            join(diverge.iter())
        },
    );
    header.fact("state buckets", &format!("2^{}", args.bucket_bits));
    header.fact(
        "runs per system and point (the median is reported)",
        &args.repeat.to_string(),
    );
    header.fact(
        "seconds per system and point (warm-up)",
        &format!("{:.1} ({:.1})", measure.as_secs_f64(), warmup.as_secs_f64()),
    );
    header.fact(
        "busy_work rounds per µs (median of 9)",
        &format!("{:.1}", calibration.rounds_per_us),
    );
    println!(
        "\nops_s and the latencies: the run of median throughput (--repeat), ops_s_range: the \
         lowest and highest of every run; vs_eve_seq = ops_s / eve-seq's ops_s at the same point; svc_p99_ms = p99 from sending \
         (the other percentiles count from when a call was due: the same in a closed loop); missed \
         = calls due that no client could send in time (open loop); limit = max(1, cores / \
         replicas of eve) = the most eve/eve-seq can reach with every replica on this machine \
         ({cores} cores).\n"
    );

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let mut table = Table::new(&COLUMNS);
    let mut results = Results::default();
    let mut started = 0u16;
    let (n_workloads, n_loads) = (workloads.len(), loads.len());
    let points: Vec<At> = (0..threads.len())
        .flat_map(|t| {
            (0..n_workloads).flat_map(move |w| {
                (0..n_loads).map(move |l| At {
                    threads: t,
                    workload: w,
                    load: l,
                })
            })
        })
        .collect();
    for &at in &points {
        let (threads, workload, load) =
            (threads[at.threads], workloads[at.workload], loads[at.load]);
        // Every system, then eve again at each forced divergence rate.
        let again = if systems.contains(&System::Eve) {
            diverge.len()
        } else {
            0
        };
        let runs = systems
            .iter()
            .filter(|&&s| s != System::Etcd || matches!(workload, Workload::Ycsb { .. }))
            .map(|&s| (s, None))
            .chain((0..again).map(|d| (System::Eve, Some((d, diverge[d])))))
            .collect::<Vec<_>>();
        // Each repetition measures every system once, in turn, so that a slow spell of the
        // machine falls on all of them alike.
        let mut measured: Vec<Vec<LoadReport>> = vec![Vec::new(); runs.len()];
        for _ in 0..args.repeat {
            for (i, &(system, divergence)) in runs.iter().enumerate() {
                // Each system starts on ports of its own: a stopped cluster's sockets may linger.
                let setup = Setup {
                    threads,
                    base_port: port_block(args.base_port, started)?,
                    bucket_bits: args.bucket_bits,
                    forced_divergence_ppm: divergence
                        .map_or(0, |(_, pct)| (pct * 10_000.0).round() as u32),
                };
                started += 1;
                let report = runtime
                    .block_on(measure_one(
                        system,
                        setup,
                        workload,
                        args,
                        load,
                        (warmup, measure),
                    ))
                    .with_context(|| {
                        format!(
                            "measuring {system} on {} ({}) with {threads} threads",
                            workload.label(),
                            load_label(load)
                        )
                    })?;
                measured[i].push(report);
            }
        }
        for (&(system, divergence), reports) in runs.iter().zip(measured) {
            let range = ops_range(&reports);
            let report = median(reports);
            let vs = results
                .plain
                .get(&(at, System::EveSequential))
                .map_or("-".to_owned(), |seq| {
                    ratio_text(report.throughput(), seq.throughput())
                });
            let name = match divergence {
                None => system.name().to_owned(),
                Some((_, pct)) => format!("eve@{pct}%div"),
            };
            table.push(vec![
                threads.to_string(),
                workload.label(),
                load_label(load),
                name,
                format!("{:.0}", report.throughput()),
                range,
                format!("{:.2}", report.latency_ms(0.50)),
                format!("{:.2}", report.latency_ms(0.99)),
                format!("{:.2}", report.latency_ms(0.999)),
                format!(
                    "{:.2}",
                    report.service_us.value_at_quantile(0.99) as f64 / 1000.0
                ),
                report.failed.to_string(),
                report.missed.to_string(),
                vs,
            ]);
            match divergence {
                None => results.plain.insert((at, system), report),
                Some((d, _)) => results.diverged.insert((at, d), report),
            };
        }
    }
    println!();
    let limit = (cores as f64 / System::Eve.replicas() as f64).max(1.0);
    let mut ratios = Table::new(&RATIO_COLUMNS);
    for &at in &points {
        let ratio =
            |a: System, b: System| match (results.plain.get(&(at, a)), results.plain.get(&(at, b)))
            {
                (Some(a), Some(b)) => ratio_text(a.throughput(), b.throughput()),
                _ => "-".to_owned(),
            };
        let (threads, workload, load) =
            (threads[at.threads], workloads[at.workload], loads[at.load]);
        ratios.push(vec![
            threads.to_string(),
            workload.label(),
            load_label(load),
            ratio(System::Eve, System::EveSequential),
            format!("{limit:.2}"),
            ratio(System::PrimaryBackup, System::EveSequential),
            ratio(System::Eve, System::Alone),
            ratio(System::EveByzantine, System::Eve),
            ratio(System::EveDisk, System::Eve),
            ratio(System::EveDisk, System::Etcd),
        ]);
    }
    let mut cost = Table::new_quiet(&DIVERGENCE_COLUMNS);
    if !diverge.is_empty() {
        println!();
        cost.print_header();
    }
    for (&(at, d), report) in &results.diverged {
        let clean = results.plain.get(&(at, System::Eve));
        let (threads, workload, load) =
            (threads[at.threads], workloads[at.workload], loads[at.load]);
        cost.push(vec![
            threads.to_string(),
            workload.label(),
            load_label(load),
            diverge[d].to_string(),
            format!("{:.0}", report.throughput()),
            clean.map_or("-".to_owned(), |c| {
                ratio_text(report.throughput(), c.throughput())
            }),
        ]);
    }
    if let Some(out) = &args.out {
        let tables = if diverge.is_empty() {
            vec![&table, &ratios]
        } else {
            vec![&table, &ratios, &cost]
        };
        for path in header.write(out, &tables)? {
            println!("wrote {}", path.display());
        }
        let sweep = charts::Sweep {
            threads: &threads,
            workloads: &workloads,
            loads: &loads,
            systems: &systems,
            diverge: &diverge,
            results: &results,
        };
        for path in sweep.draw(out)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Starts `system` with the application `workload` needs, loads it, drives it, stops it.
async fn measure_one(
    system: System,
    setup: Setup,
    workload: Workload,
    args: &E2eArgs,
    load: Load,
    window: (Duration, Duration),
) -> Result<LoadReport> {
    let running = match workload {
        Workload::Micro { .. } => Running::start(system, setup, || BusyWork).await?,
        Workload::Ycsb { .. } | Workload::Transfer { .. } => {
            Running::start(system, setup, || KvStore).await?
        }
    };
    let mut callers = Vec::new();
    for c in 0..args.clients {
        callers.push(running.caller(ClientId(c + 1))?);
    }
    let preloaded = match workload {
        Workload::Micro { .. } => Vec::new(),
        Workload::Ycsb { .. } => kv::preload(false, args.records, args.value_bytes).collect(),
        Workload::Transfer { .. } => kv::preload(true, args.records, 0).collect(),
    };
    let callers = preload(callers, preloaded).await?;
    let mut clients = Vec::new();
    for (c, caller) in callers.into_iter().enumerate() {
        let c = c as u64;
        let seed = args.seed ^ eve_types::splitmix64(c);
        let draw: Box<dyn Draw> = match workload {
            Workload::Micro { rounds, .. } => {
                Box::new(Micro::new(c, rounds, args.conflicts, args.seed))
            }
            Workload::Ycsb { workload, keys } => Box::new(KvDraw::ycsb(
                workload,
                keys,
                args.records,
                args.value_bytes,
                seed,
            )?),
            Workload::Transfer { keys } => Box::new(KvDraw::transfer(keys, args.records, seed)?),
        };
        clients.push((caller, draw));
    }
    let progress = Arc::new(Progress::default());
    let bar = indicatif::ProgressBar::new((window.0 + window.1).as_secs());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>8} {bar:30} {pos}/{len} s  {msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(system.name());
    let watch = {
        let (bar, progress) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                bar.set_position(start.elapsed().as_secs());
                bar.set_message(format!(
                    "{} calls",
                    progress
                        .completed
                        .load(std::sync::atomic::Ordering::Relaxed)
                ));
            }
        })
    };
    let report = load::run(clients, load, window, progress).await;
    watch.abort();
    bar.finish_and_clear();
    running.stop().await;
    Ok(report)
}

/// Sends `ops` through the callers, spread evenly and each caller's in turn, and returns the
/// callers once every op succeeded.
async fn preload<C: Caller>(callers: Vec<C>, ops: Vec<Bytes>) -> Result<Vec<C>> {
    let n = callers.len();
    let mut shares: Vec<Vec<Bytes>> = vec![Vec::new(); n];
    for (i, op) in ops.into_iter().enumerate() {
        shares[i % n].push(op);
    }
    let tasks: Vec<_> = callers
        .into_iter()
        .zip(shares)
        .map(|(mut caller, share)| {
            tokio::spawn(async move {
                for op in share {
                    caller
                        .call(op)
                        .await
                        .map_err(|e| anyhow::anyhow!("preloading: {e}"))?;
                }
                Ok::<C, anyhow::Error>(caller)
            })
        })
        .collect();
    let mut callers = Vec::with_capacity(n);
    for task in tasks {
        callers.push(task.await.context("a preloading task")??);
    }
    Ok(callers)
}

/// Ports a cluster's nodes take (enough for u = 1 with its verifiers).
const PORTS_PER_SYSTEM: u16 = 8;

/// The first port of the `n`th system started.
fn port_block(base: u16, n: u16) -> Result<u16> {
    n.checked_mul(PORTS_PER_SYSTEM)
        .and_then(|offset| base.checked_add(offset))
        .filter(|first| first.checked_add(PORTS_PER_SYSTEM).is_some())
        .with_context(|| {
            format!(
                "--base-port {base}: too high for {} systems of {PORTS_PER_SYSTEM} ports",
                n + 1
            )
        })
}

/// The report of median throughput among `reports` (the lower of the two middle ones when
/// there is an even number).
fn median(mut reports: Vec<LoadReport>) -> LoadReport {
    reports.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    reports.swap_remove((reports.len() - 1) / 2)
}

/// `a / b` to two places, or `-` when `b` measured nothing.
fn ratio_text(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".to_owned()
    }
}

/// `min-max` of the throughputs of `reports`, or `-` for a single one.
fn ops_range(reports: &[LoadReport]) -> String {
    let ops = reports.iter().map(LoadReport::throughput);
    let (lo, hi) = ops.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if reports.len() < 2 {
        "-".to_owned()
    } else {
        format!("{lo:.0}-{hi:.0}")
    }
}

fn join(items: impl Iterator<Item = impl ToString>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    fn report(completed: u64) -> LoadReport {
        let histogram = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        LoadReport {
            completed,
            failed: 0,
            missed: 0,
            elapsed: Duration::from_secs(1),
            latency_us: histogram.clone(),
            service_us: histogram,
        }
    }

    #[test]
    fn repeated_runs_report_the_median_and_the_range() {
        let runs = vec![report(30), report(10), report(20)];
        assert_eq!(ops_range(&runs), "10-30");
        assert_eq!(median(runs).completed, 20);
        assert_eq!(
            median(vec![report(40), report(10), report(30), report(20)]).completed,
            20
        );
        assert_eq!(ops_range(&[report(5)]), "-");
        assert_eq!(median(vec![report(5)]).completed, 5);
    }

    #[test]
    fn every_system_started_gets_ports_of_its_own_or_a_clear_error() {
        assert_eq!(port_block(7800, 0).unwrap(), 7800);
        assert_eq!(port_block(7800, 3).unwrap(), 7824);
        let err = port_block(65_000, 100).unwrap_err();
        assert!(err.to_string().contains("too high"), "{err}");
    }
}
