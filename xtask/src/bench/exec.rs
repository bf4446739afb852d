//! `cargo xtask bench exec`: executor throughput over threads, work per request and conflict
//! rate.
//!
//! For every point (work `w` µs per request, conflict rate `c` %, `t` threads) the sweep
//! measures, in the same run:
//! - the baseline: the sequential executor (classic SMR, [`ExecMode::Sequential`]);
//! - the parallel executor: [`GreedyMixer`] plus a [`ThreadPoolRunner`] of `t` threads;
//! - the machine's limit: the same busy work on `t` plain threads against one, with no
//!   executor, mixer or state (see [`plain`]).
//!
//! and reports the speedup (parallel over sequential), the limit speedup, and the efficiency
//! (their ratio: how much of what the hardware allows the executor gets).

mod plain;
mod workload;

use super::calibrate::Calibration;
use super::report::{Column, Header, Table};
use crate::release;
use anyhow::{Context, Result, ensure};
use clap::Args;
use eve_apps::BusyWork;
use eve_exec::{ExecMode, Executor, ThreadPoolRunner};
use eve_mixer::GreedyMixer;
use eve_state::{StateConfig, StateStore};
use eve_types::NonDet;
use eve_types::limits::{
    BATCH_REQUESTS_MAX, EXECUTOR_THREADS_MAX, MERKLE_BUCKET_BITS_MAX, MERKLE_BUCKET_BITS_MIN,
    OBJECT_VALUE_BYTES_MAX,
};
use plain::PlainLimits;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use workload::Workload;

/// The options of `cargo xtask bench exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Worker threads of the parallel executor, comma-separated
    /// [default: 1,2,4,8,16; with --quick: 1,2,4]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    threads: Option<Vec<usize>>,
    /// Microseconds of busy work per request, comma-separated
    /// [default: 1,10,100,1000; with --quick: 1,100]
    #[arg(long = "work-us", value_delimiter = ',', value_name = "LIST")]
    work_us: Option<Vec<u64>>,
    /// Percent of requests that write one shared hot object, comma-separated
    /// [default: 0,10,50; with --quick: 0,50]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    conflicts: Option<Vec<u32>>,
    /// Requests per batch (cut for long requests, see --batch-work-ms-max)
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Most busy work in one batch, in milliseconds: at high work per request the batch is cut
    /// to fit (200 requests at 1000 µs), so that a point does not take forever
    #[arg(long = "batch-work-ms-max", default_value_t = 200)]
    batch_work_ms_max: u64,
    /// Seconds per measurement, after a short warm-up [default: 2; with --quick: 0.2]
    #[arg(long)]
    seconds: Option<f64>,
    /// A short smoke run: 0.2 s per measurement and a smaller sweep (options given win)
    #[arg(long)]
    quick: bool,
    /// Seed of the generator that picks the conflicting requests
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The state's Merkle tree has 2^BITS buckets [default: sized to the state as
    /// docs/OPERATIONS.md advises, about 16 objects per bucket: 2^7 for the 2,000 objects of
    /// a 1,000-request batch]
    #[arg(long = "bucket-bits", value_name = "BITS")]
    bucket_bits: Option<u8>,
    /// Also write the results as Markdown to FILE, and as CSV next to it
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// The sweep, validated.
#[derive(Debug)]
struct Sweep {
    threads: Vec<usize>,
    work_us: Vec<u64>,
    conflict_pcts: Vec<u32>,
    batch: usize,
    batch_work_us_max: u64,
    warmup: Duration,
    measure: Duration,
    seed: u64,
    bucket_bits: Option<u8>,
}

/// Objects per bucket when the state is sized as `docs/OPERATIONS.md` advises.
const OBJECTS_PER_BUCKET: usize = 16;

/// Longest measurement a point may ask for, in seconds.
const MEASURE_SECONDS_MAX: f64 = 600.0;

impl Sweep {
    fn from_args(args: &ExecArgs) -> Result<Self> {
        let q = args.quick;
        let threads = pick(&args.threads, q, &[1, 2, 4, 8, 16], &[1, 2, 4]);
        let work_us = pick(&args.work_us, q, &[1, 10, 100, 1000], &[1, 100]);
        let conflict_pcts = pick(&args.conflicts, q, &[0, 10, 50], &[0, 50]);
        ensure!(
            !threads.is_empty() && !work_us.is_empty() && !conflict_pcts.is_empty(),
            "--threads, --work-us and --conflicts each need at least one value"
        );
        if let Some(&bad) = threads
            .iter()
            .find(|&&t| !(1..=EXECUTOR_THREADS_MAX).contains(&t))
        {
            anyhow::bail!("--threads {bad}: each value must be in 1 ..= {EXECUTOR_THREADS_MAX}");
        }
        if let Some(&bad) = conflict_pcts.iter().find(|&&c| c > 100) {
            anyhow::bail!("--conflicts {bad}: each value is a percentage, 0 ..= 100");
        }
        ensure!(
            (1..=BATCH_REQUESTS_MAX).contains(&args.batch),
            "--batch {}: must be in 1 ..= {BATCH_REQUESTS_MAX} (BATCH_REQUESTS_MAX)",
            args.batch
        );
        ensure!(
            args.batch_work_ms_max >= 1,
            "--batch-work-ms-max must be at least 1"
        );
        let seconds = args.seconds.unwrap_or(if args.quick { 0.2 } else { 2.0 });
        ensure!(
            seconds.is_finite() && seconds > 0.0 && seconds <= MEASURE_SECONDS_MAX,
            "--seconds {seconds}: must be more than 0 and at most {MEASURE_SECONDS_MAX}"
        );
        let measure = Duration::from_secs_f64(seconds);
        if let Some(bits) = args.bucket_bits {
            ensure!(
                (MERKLE_BUCKET_BITS_MIN..=MERKLE_BUCKET_BITS_MAX).contains(&bits),
                "--bucket-bits {bits}: must be in {MERKLE_BUCKET_BITS_MIN} ..= \
                 {MERKLE_BUCKET_BITS_MAX}"
            );
        }
        Ok(Self {
            threads,
            work_us,
            conflict_pcts,
            batch: args.batch,
            batch_work_us_max: args.batch_work_ms_max.saturating_mul(1000),
            warmup: (measure / 10).clamp(Duration::from_millis(20), Duration::from_millis(500)),
            measure,
            seed: args.seed,
            bucket_bits: args.bucket_bits,
        })
    }

    /// The state's bucket bits for batches of `batch` requests: `--bucket-bits`, or about 16
    /// of the state's objects per bucket (each request's object and its client's reply-cache
    /// entry, plus the hot object).
    fn bucket_bits_for(&self, batch: usize) -> u8 {
        self.bucket_bits.unwrap_or_else(|| {
            let buckets = (2 * batch + 1).div_ceil(OBJECTS_PER_BUCKET);
            let bits = buckets.next_power_of_two().trailing_zeros() as u8;
            bits.clamp(MERKLE_BUCKET_BITS_MIN, MERKLE_BUCKET_BITS_MAX)
        })
    }

    /// Requests per batch at `work_us` µs each: `--batch`, cut so that a batch holds at most
    /// `--batch-work-ms-max` of work (and at least one request).
    fn batch_for(&self, work_us: u64) -> usize {
        match self.batch_work_us_max.checked_div(work_us) {
            Some(fit) => self
                .batch
                .min(usize::try_from(fit).unwrap_or(usize::MAX).max(1)),
            None => self.batch,
        }
    }
}

/// The list the user gave, else the quick or the full default.
fn pick<T: Clone>(given: &Option<Vec<T>>, quick: bool, full: &[T], quick_list: &[T]) -> Vec<T> {
    match given {
        Some(list) => list.clone(),
        None if quick => quick_list.to_vec(),
        None => full.to_vec(),
    }
}

const COLUMNS: [Column; 13] = [
    Column {
        name: "work_us",
        width: 7,
    },
    Column {
        name: "conflict_pct",
        width: 12,
    },
    Column {
        name: "threads",
        width: 7,
    },
    Column {
        name: "batch",
        width: 5,
    },
    Column {
        name: "hot",
        width: 4,
    },
    Column {
        name: "bucket_bits",
        width: 11,
    },
    Column {
        name: "seq_req_s",
        width: 10,
    },
    Column {
        name: "par_req_s",
        width: 10,
    },
    Column {
        name: "speedup",
        width: 7,
    },
    Column {
        name: "limit_speedup",
        width: 13,
    },
    Column {
        name: "efficiency",
        width: 10,
    },
    Column {
        name: "parallel_batches_per_batch",
        width: 26,
    },
    Column {
        name: "seq_vs_plain",
        width: 12,
    },
];

/// Runs the sweep, printing a row per point.
pub fn run(args: &ExecArgs) -> Result<()> {
    let sweep = Sweep::from_args(args)?;
    let mut header = Header::new(
        "eve executor: parallel against sequential",
        &release::command_line(),
    );
    header.fact("threads", &join(&sweep.threads));
    header.fact("work per request (µs)", &join(&sweep.work_us));
    header.fact("conflicting requests (%)", &join(&sweep.conflict_pcts));
    header.fact(
        "seconds per measurement (warm-up)",
        &format!(
            "{:.2} ({:.2})",
            sweep.measure.as_secs_f64(),
            sweep.warmup.as_secs_f64()
        ),
    );
    header.fact("seed", &sweep.seed.to_string());
    let calibration = Calibration::measure()?;
    header.fact(
        "busy_work rounds per µs (median of 9)",
        &format!("{:.1}", calibration.rounds_per_us),
    );
    println!(
        "\nspeedup = par_req_s / seq_req_s; limit_speedup = the same work on `threads` plain \
         threads / on 1; efficiency = speedup / limit_speedup; hot = requests per batch that \
         write the shared object; bucket_bits: the state has 2^bucket_bits Merkle buckets; \
         seq_vs_plain = seq_req_s / the plain 1-thread rate.\n"
    );
    let mut table = Table::new(&COLUMNS);
    for &work_us in &sweep.work_us {
        sweep_work(&sweep, &calibration, work_us, &mut table)?;
    }
    if let Some(out) = &args.out {
        let written = header.write(out, &[&table])?;
        for path in written {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Every point at `work_us` µs per request.
fn sweep_work(
    sweep: &Sweep,
    calibration: &Calibration,
    work_us: u64,
    table: &mut Table,
) -> Result<()> {
    let rounds = calibration.rounds_for(work_us)?;
    let batch = sweep.batch_for(work_us);
    let bits = sweep.bucket_bits_for(batch);
    let new_state = || new_state(bits);
    let mut limits = PlainLimits::measure_one_thread(rounds, batch, sweep.warmup, sweep.measure);
    for &conflict_pct in &sweep.conflict_pcts {
        let workload = || Workload::new(batch, rounds, conflict_pct, sweep.seed);
        let hot = workload()?.hot();
        let sequential = Executor::sequential(BusyWork, new_state());
        let seq = measure(sequential, ExecMode::Sequential, workload()?, sweep)
            .context("measuring the sequential executor")?;
        for &threads in &sweep.threads {
            let runner = ThreadPoolRunner::new(threads)
                .with_context(|| format!("starting a thread pool of {threads}"))?;
            let parallel = Executor::new(
                BusyWork,
                new_state(),
                Box::new(GreedyMixer),
                Box::new(runner),
            );
            let par = measure(parallel, ExecMode::Parallel, workload()?, sweep)
                .with_context(|| format!("measuring the parallel executor on {threads} threads"))?;
            let limit = limits.speedup(threads)?;
            let speedup = par.rate() / seq.rate();
            table.push(vec![
                work_us.to_string(),
                conflict_pct.to_string(),
                threads.to_string(),
                batch.to_string(),
                hot.to_string(),
                bits.to_string(),
                format!("{:.0}", seq.rate()),
                format!("{:.0}", par.rate()),
                format!("{speedup:.2}"),
                format!("{limit:.2}"),
                format!("{:.2}", speedup / limit),
                format!("{:.1}", par.parallel_batches as f64 / par.batches as f64),
                format!("{:.2}", seq.rate() / limits.one_thread_rate()),
            ]);
        }
    }
    Ok(())
}

/// A fresh state of `2^bits` buckets.
fn new_state(bits: u8) -> StateStore {
    let config = StateConfig::new(bits, OBJECT_VALUE_BYTES_MAX).expect("bits checked in range");
    StateStore::new(config)
}

/// What one measurement counted.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    batches: u64,
    requests: u64,
    parallel_batches: u64,
    elapsed: Duration,
}

impl Run {
    /// Requests per second.
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Warms `executor` up, then executes batches for the measurement time and counts them.
fn measure(
    mut executor: Executor<BusyWork>,
    mode: ExecMode,
    mut workload: Workload,
    sweep: &Sweep,
) -> Result<Run> {
    run_batches(&mut executor, mode, &mut workload, sweep.warmup)?;
    run_batches(&mut executor, mode, &mut workload, sweep.measure)
}

/// Executes batch after batch (at least one) until `duration` has passed. Each batch is marked
/// stable at once, so the state keeps no undo records and stays the same size.
fn run_batches(
    executor: &mut Executor<BusyWork>,
    mode: ExecMode,
    workload: &mut Workload,
    duration: Duration,
) -> Result<Run> {
    let mut run = Run::default();
    let start = Instant::now();
    loop {
        let seq = executor.state().working_version();
        let outcome = executor
            .execute(seq, workload.next_batch(), NonDet::default(), mode)
            .with_context(|| format!("executing batch {seq}"))?;
        ensure!(
            outcome.executed == workload.len(),
            "batch {seq}: {} of {} requests executed; the rest came from the reply cache, \
             which the workload must avoid",
            outcome.executed,
            workload.len()
        );
        executor
            .mark_stable(seq)
            .with_context(|| format!("marking batch {seq} stable"))?;
        run.batches += 1;
        run.requests += outcome.executed as u64;
        run.parallel_batches += outcome.parallel_batches as u64;
        if start.elapsed() >= duration {
            run.elapsed = start.elapsed();
            return Ok(run);
        }
    }
}

fn join<T: ToString>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn sweep(line: &[&str]) -> Result<Sweep> {
        let cli = Cli::try_parse_from(std::iter::once("exec").chain(line.iter().copied()))?;
        Sweep::from_args(&cli.args)
    }

    #[test]
    fn lists_parse_and_quick_shrinks_only_what_was_not_given() {
        let s = sweep(&["--quick", "--threads", "3,5"]).expect("valid");
        assert_eq!(s.threads, vec![3, 5], "given lists win over --quick");
        assert_eq!(s.work_us, vec![1, 100]);
        assert_eq!(s.measure, Duration::from_millis(200));
        let full = sweep(&[]).expect("valid");
        assert_eq!(full.threads, vec![1, 2, 4, 8, 16]);
        assert_eq!(full.conflict_pcts, vec![0, 10, 50]);
    }

    #[test]
    fn out_of_range_options_name_the_option() {
        for (line, option) in [
            (&["--threads", "0"][..], "--threads"),
            (&["--conflicts", "101"][..], "--conflicts"),
            (&["--batch", "0"][..], "--batch"),
            (&["--seconds", "0"][..], "--seconds"),
        ] {
            let err = sweep(line).expect_err("out of range").to_string();
            assert!(err.contains(option), "{err}");
        }
    }

    #[test]
    fn long_requests_get_smaller_batches() {
        let s = sweep(&[]).expect("valid");
        assert_eq!(s.batch_for(0), 1000);
        assert_eq!(s.batch_for(100), 1000);
        assert_eq!(s.batch_for(1000), 200);
        assert_eq!(s.batch_for(10_000_000), 1, "at least one request");
    }
}
