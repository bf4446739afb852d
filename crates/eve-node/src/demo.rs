//! `eve-node demo`: a cluster in this process over real loopback QUIC with mutual TLS, under a
//! key-value workload from many clients, with a progress bar and a summary: throughput,
//! latency percentiles, parallel batch width, and divergences detected and repaired.

use anyhow::{Context, Result};
use bytes::Bytes;
use eve_agreement::NodeId;
use eve_apps::{KvOp, KvWithRacy, RACY_OP};
use eve_net::ClusterCa;
use eve_node::{ClusterSpec, EveClient, NodeBuilder};
use eve_types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, SplitMix64, VerifierId};
use std::collections::BTreeMap;
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
}

pub async fn run(options: DemoOptions) -> Result<()> {
    let config = ClusterConfig::new(ReplicationMode::Eve {
        u: options.u,
        r: options.r,
    })
    .validate()?;
    let sizes = config.sizes();
    let nodes_wanted = (0..sizes.n_exec as u32)
        .map(|i| NodeId::Replica(ReplicaId(i)))
        .chain((0..sizes.n_ver as u32).map(|i| NodeId::Verifier(VerifierId(i))));
    let addresses: BTreeMap<_, _> = nodes_wanted
        .zip(options.base_port..)
        .map(|(node, port)| (node, ([127, 0, 0, 1], port).into()))
        .collect();
    let spec = ClusterSpec::new(config, addresses)?;
    let ca = ClusterCa::generate("demo")?;
    let (storage, scratch) = match (options.storage.as_str(), &options.data) {
        ("disk", Some(dir)) => (eve_node::storage::Storage::Disk(dir.clone()), None),
        ("disk", None) => {
            let dir = std::env::temp_dir().join(format!("eve-demo-{}", std::process::id()));
            (eve_node::storage::Storage::Disk(dir.clone()), Some(dir))
        }
        _ => (eve_node::storage::Storage::Memory, None),
    };
    let mut nodes = Vec::new();
    for i in 0..sizes.n_exec.max(sizes.n_ver) as u32 {
        let mut builder = NodeBuilder::new(spec.clone()).storage(storage.clone());
        if let Some(threads) = options.threads {
            builder = builder.threads(threads);
        }
        if (i as usize) < sizes.n_exec {
            let creds = ca.issue(NodeId::Replica(ReplicaId(i)))?;
            builder = builder.replica(ReplicaId(i), creds, KvWithRacy::new(200));
        }
        if (i as usize) < sizes.n_ver {
            let creds = ca.issue(NodeId::Verifier(VerifierId(i)))?;
            builder = builder.verifier(VerifierId(i), creds);
        }
        nodes.push(builder.start().context("starting a node")?);
    }
    println!(
        "eve demo: u = {}, r = {}: {} replicas and {} verifiers on loopback QUIC with mutual TLS, \
         {} clients, {} s, state {}",
        options.u,
        options.r,
        sizes.n_exec,
        sizes.n_ver,
        options.clients,
        options.seconds,
        match &storage {
            eve_node::storage::Storage::Disk(dir) => format!("on disk in {}", dir.display()),
            eve_node::storage::Storage::Memory => "in memory".to_owned(),
        }
    );
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(options.seconds);
    let mut tasks = Vec::new();
    for c in 1..=options.clients {
        let id = ClientId(c);
        let client = EveClient::connect(&spec, id, &ca.issue(NodeId::Client(id))?)?;
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
    let (mut mismatches, mut transfers, mut rollbacks, mut sequential) = (0, 0, 0, 0);
    let (mut requests, mut parallel_batches) = (0, 0);
    let (mut syncs, mut logged) = (0, 0);
    let mut views_entered = 0;
    for node in &nodes {
        for role in node.status().await {
            for m in &role.metrics {
                match m.name {
                    "eve_token_mismatches_total" => mismatches += m.value,
                    "eve_state_transfers_completed_total" => transfers += m.value,
                    "eve_rollbacks_total" => rollbacks += m.value,
                    "eve_sequential_executions_total" => sequential += m.value,
                    "eve_verifier_views_entered_total" => {
                        views_entered = views_entered.max(m.value)
                    }
                    _ => {}
                }
            }
        }
        if let Some(journal) = node.journal() {
            syncs += journal.syncs;
            logged += journal.batches;
        }
        if let Some(stats) = node.exec_stats() {
            requests += stats.requests_executed;
            parallel_batches += stats.parallel_batches;
        }
    }
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
        requests as f64 / parallel_batches.max(1) as f64
    );
    println!(
        "divergences       {mismatches} detected, repaired by {transfers} state transfers, \
         {rollbacks} rollbacks, {sequential} sequential re-executions"
    );
    println!("view changes      {views_entered}");
    if syncs > 0 {
        println!(
            "journal           {:.0} log syncs/s per replica, {:.1} batches per sync",
            syncs as f64 / sizes.n_exec as f64 / elapsed,
            logged as f64 / syncs as f64
        );
    }
    for node in nodes {
        node.shutdown().await;
    }
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
