//! `eve-node demo`: a cluster in this process over real loopback QUIC with mutual TLS, under a
//! key-value workload from many clients, with a progress bar and a summary: throughput,
//! latency percentiles, parallel batch width, and divergences detected and repaired.

use anyhow::Result;
use bytes::Bytes;
use eve_apps::{KvOp, KvWithRacy, RACY_OP};
use eve_node::Execution;
use eve_node::local::{LocalCluster, LocalOptions};
use eve_node::storage::Storage;
use eve_types::{ClientId, ReplicationMode, SplitMix64};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the demo runs.
#[derive(Clone, Debug, clap::Args)]
pub struct DemoOptions {
    /// Failures of any kind tolerated.
    #[arg(long, default_value_t = 1)]
    pub u: u32,
    /// Byzantine failures tolerated (r <= u).
    #[arg(long, default_value_t = 0)]
    pub r: u32,
    /// Concurrent clients, each calling one operation at a time.
    #[arg(long, default_value_t = 64)]
    pub clients: u64,
    /// How long to drive load, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Keys the workload spreads over.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Percent of key-value operations that write (the rest read).
    #[arg(long, default_value_t = 50)]
    pub write_percent: u64,
    /// Parts per million of operations sent to a racy counter that runs in parallel without
    /// naming its conflicts: the injected divergence, which replicas detect and repair.
    #[arg(long, default_value_t = 0)]
    pub divergence_ppm: u64,
    /// Executor worker threads per replica (default: the cores available).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The first port of the cluster's endpoints.
    #[arg(long, default_value_t = 7700)]
    pub base_port: u16,
    /// Where the nodes keep their state: `memory`, or `disk` (a data directory under the
    /// system's temporary directory, removed at the end, unless `--data` names one).
    #[arg(long, default_value = "memory", value_parser = ["memory", "disk"])]
    pub storage: String,
    /// The data directory with `--storage disk` (kept at the end).
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// How replicas run a batch: `parallel` (Eve's mixer) or `sequential` (one request after
    /// another: classic state machine replication, the baseline).
    #[arg(long, default_value = "parallel", value_parser = ["parallel", "sequential"])]
    pub execution: String,
}

pub async fn run(options: DemoOptions) -> Result<()> {
    let mode = ReplicationMode::Eve {
        u: options.u,
        r: options.r,
    };
    let (storage, scratch) = match (options.storage.as_str(), &options.data) {
        ("disk", Some(dir)) => (Storage::Disk(dir.clone()), None),
        ("disk", None) => {
            let dir = std::env::temp_dir().join(format!("eve-demo-{}", std::process::id()));
            (Storage::Disk(dir.clone()), Some(dir))
        }
        _ => (Storage::Memory, None),
    };
    let local = LocalOptions {
        storage: storage.clone(),
        threads: options.threads,
        execution: match options.execution.as_str() {
            "sequential" => Execution::Sequential,
            _ => Execution::Parallel,
        },
        ..LocalOptions::new(mode, options.base_port)
    };
    let cluster = LocalCluster::start(&local, |_| KvWithRacy::new(200))?;
    let sizes = cluster.spec().config.sizes();
    println!(
        "eve demo: u = {}, r = {}: {} replicas and {} verifiers on loopback QUIC with mutual TLS, \
         {} clients, {} s, state {}, {} execution",
        options.u,
        options.r,
        sizes.n_exec,
        sizes.n_ver,
        options.clients,
        options.seconds,
        match &storage {
            Storage::Disk(dir) => format!("on disk in {}", dir.display()),
            Storage::Memory => "in memory".to_owned(),
        },
        options.execution,
    );
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(options.seconds);
    let mut tasks = Vec::new();
    for c in 1..=options.clients {
        let id = ClientId(c);
        let client = cluster.client(id)?;
        let (done, failed, options) = (done.clone(), failed.clone(), options.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = SplitMix64::new(c);
            let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("a valid histogram");
            while Instant::now() < deadline {
                let op = draw(&mut rng, &options);
                let sent = Instant::now();
                match client.call(op).await {
                    Ok(_) => {
                        let _ = latency.record(sent.elapsed().as_micros() as u64);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            client.close().await;
            latency
        }));
    }
    let bar = indicatif::ProgressBar::new(options.seconds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} s  {msg}")
            .expect("a valid template"),
    );
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let elapsed = start.elapsed().as_secs_f64();
        bar.set_position(elapsed as u64);
        bar.set_message(format!(
            "{:.0} ops/s",
            done.load(Ordering::Relaxed) as f64 / elapsed
        ));
    }
    let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("a valid histogram");
    for task in tasks {
        latency
            .add(task.await?)
            .expect("histograms of the same range");
    }
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let ops = done.load(Ordering::Relaxed);
    let totals = cluster.totals().await;
    println!(
        "operations        {ops} completed, {} failed",
        failed.load(Ordering::Relaxed)
    );
    println!("throughput        {:.0} ops/s", ops as f64 / elapsed);
    println!(
        "latency           p50 {:.2} ms, p99 {:.2} ms",
        latency.value_at_quantile(0.50) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!(
        "parallel batches  {:.1} requests wide on average",
        totals.requests_executed as f64 / totals.parallel_batches.max(1) as f64
    );
    println!(
        "divergences       {} detected, repaired by {} state transfers, {} rollbacks, {} \
         sequential re-executions",
        totals.token_mismatches,
        totals.state_transfers,
        totals.rollbacks,
        totals.sequential_executions
    );
    println!("view changes      {}", totals.views_entered);
    if totals.log_syncs > 0 {
        println!(
            "journal           {:.0} log syncs/s per replica, {:.1} batches per sync",
            totals.log_syncs as f64 / sizes.n_exec as f64 / elapsed,
            totals.batches_logged as f64 / totals.log_syncs as f64
        );
    }
    cluster.shutdown().await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// One operation of the workload.
fn draw(rng: &mut SplitMix64, options: &DemoOptions) -> Bytes {
    if options.divergence_ppm > 0 && rng.below(1_000_000) < options.divergence_ppm {
        return Bytes::from_static(&[RACY_OP]);
    }
    let key = Bytes::from(format!("key-{}", rng.below(options.keys.max(1))));
    if rng.below(100) < options.write_percent {
        let value = Bytes::from(rng.next_u64().to_le_bytes().to_vec());
        KvOp::Put { key, value }.encode()
    } else {
        KvOp::Get { key }.encode()
    }
}
