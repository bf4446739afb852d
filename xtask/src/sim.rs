//! `cargo xtask sim`: runs simulated clusters from seeds and reports what they exercised.
//!
//! `--seed S` replays one run and prints its report; `--seeds N` runs seeds `start..start+N`
//! on every core with a progress bar and prints a summary table. A seed set fails if any run
//! broke an invariant, or if any recovery path (divergence, state transfer, rollback,
//! sequential re-execution, view change, restart) was never exercised.

use anyhow::{Result, bail};
use clap::Args;
use eve_sim::{
    RunReport, Scenario, Summary, run_scenario_caught, run_scenario_with_contents_log,
    run_scenario_with_log,
};
use eve_types::{ClusterConfig, ReplicationMode};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The options of `cargo xtask sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Replay one seed and print its full report
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed of the set
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// With --seed: print the last LINES events of the run
    #[arg(long, value_name = "LINES", requires = "seed")]
    log: Option<usize>,
    /// With --log: write every delivered message and execution result out in full
    #[arg(long, requires = "log")]
    contents: bool,
    /// Run every seed in one configuration instead of cycling through the standard four:
    /// `U,R` for Eve (e.g. `2,2`) or `pb` for primary-backup (with --seed: the configuration
    /// that seed is replayed in)
    #[arg(long, value_parser = parse_mode)]
    mode: Option<ReplicationMode>,
    /// Threads running seeds at once [default: every core]
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs the simulation command.
pub fn run(args: &SimArgs) -> Result<()> {
    let scenario = |seed: u64| match args.mode {
        Some(mode) => Scenario::from_seed_with_mode(seed, mode),
        None => Scenario::from_seed(seed),
    };
    if let Some(seed) = args.seed {
        let report = if args.contents {
            run_scenario_with_contents_log(scenario(seed))
        } else if args.log.is_some() {
            run_scenario_with_log(scenario(seed))
        } else {
            run_scenario_caught(scenario(seed))
        };
        if let Some(lines) = args.log {
            for line in report
                .log
                .iter()
                .skip(report.log.len().saturating_sub(lines))
            {
                println!("{line}");
            }
        }
        print_report(&report);
        if !report.passed() {
            bail!("seed {seed} broke an invariant");
        }
        return Ok(());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let started = Instant::now();
    let bar = ProgressBar::new(args.seeds);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {elapsed} ({eta} left) {msg}")
            .expect("a valid template"),
    );
    let next = AtomicU64::new(0);
    let summary = Mutex::new(Summary::default());
    let failures = Mutex::new(Vec::<RunReport>::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.seeds {
                        break;
                    }
                    let seed = args.start + i;
                    let report = run_scenario_caught(scenario(seed));
                    summary.lock().expect("no panic holds it").add(&report);
                    if !report.passed() {
                        bar.set_message(format!("FAILED seed {}", report.seed));
                        failures.lock().expect("no panic holds it").push(report);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish();
    let summary = summary.into_inner().expect("threads finished");
    let mut failures = failures.into_inner().expect("threads finished");
    failures.sort_by_key(|r| r.seed);
    print_summary(&summary, started.elapsed().as_secs_f64(), args);
    for report in failures.iter().take(10) {
        println!("\nseed {} FAILED: {}", report.seed, report.description);
        for violation in &report.violations {
            println!("  - {violation}");
        }
        println!("  replay: {}", report.replay_command());
    }
    if !failures.is_empty() {
        bail!("{} of {} seeds failed", failures.len(), summary.runs);
    }
    let missing = summary.unexercised();
    if !missing.is_empty() && summary.runs >= 100 {
        bail!("the seed set never exercised: {}", missing.join(", "));
    }
    Ok(())
}

/// Parses `--mode`: `pb`, or `U,R`, checked like a cluster configuration.
pub(crate) fn parse_mode(text: &str) -> Result<ReplicationMode, String> {
    let mode = if text == "pb" {
        ReplicationMode::PrimaryBackup
    } else {
        let (u, r) = text
            .split_once(',')
            .ok_or_else(|| format!("`{text}`: expected `U,R` (such as `1,1`) or `pb`"))?;
        let number = |s: &str| s.trim().parse::<u32>().map_err(|e| format!("`{s}`: {e}"));
        ReplicationMode::Eve {
            u: number(u)?,
            r: number(r)?,
        }
    };
    ClusterConfig::new(mode)
        .validate()
        .map_err(|err| err.to_string())?;
    Ok(mode)
}

fn print_summary(summary: &Summary, seconds: f64, args: &SimArgs) {
    println!(
        "\nseeds {}..{}: {} runs, {} failed, {seconds:.1} s",
        args.start,
        args.start + args.seeds,
        summary.runs,
        summary.failed.len()
    );
    let rows = [
        ("requests completed", summary.counts.requests_completed),
        (
            "linearizability-checked calls",
            summary.counts.linearizable_calls,
        ),
        (
            "state transfers refused and retried",
            summary.counts.state_transfer_failures,
        ),
        (
            "batches verifiers caught up from peers",
            summary.counts.verifier_catch_ups,
        ),
        ("crashes", summary.counts.crashes),
        ("partitions", summary.counts.partitions),
        (
            "messages dropped by the logic",
            summary.counts.messages_dropped,
        ),
    ];
    println!("| exercised | total |\n|---|---:|");
    for (name, value) in summary.exercised().into_iter().chain(rows) {
        println!("| {name} | {value} |");
    }
    if let Some((p99, max)) = summary.byzantine_stall_ms(99.0) {
        println!(
            "\nstalls a Byzantine primary's gap caused ({} gaps): p99 {p99} ms, longest {max} ms (simulated time, from the withheld batch to the next commit past it)",
            summary.byzantine_stalls_ms.len()
        );
    }
}

fn print_report(report: &RunReport) {
    println!("seed {}: {}", report.seed, report.description);
    println!(
        "  {} batches committed, {} requests completed, {} calls checked for linearizability",
        report.counts.batches_committed,
        report.counts.requests_completed,
        report.counts.linearizable_calls
    );
    println!(
        "  divergences {}, state transfers {} ({} refused), rollbacks {}, sequential executions {}, view changes {}, no-quorum {}",
        report.counts.divergences,
        report.counts.state_transfers,
        report.counts.state_transfer_failures,
        report.counts.rollbacks,
        report.counts.sequential_executions,
        report.counts.view_changes,
        report.counts.no_quorum
    );
    println!(
        "  crashes {}, restarts {}, partitions {}, verifier catch-ups {}, messages delivered {}, dropped by the logic {}",
        report.counts.crashes,
        report.counts.restarts,
        report.counts.partitions,
        report.counts.verifier_catch_ups,
        report.messages_delivered,
        report.counts.messages_dropped
    );
    println!(
        "  {} events, {} ms simulated, trace {}",
        report.events,
        report.sim_time_ms,
        report.trace_hex()
    );
    for (reason, n) in &report.drops_by_reason {
        println!("  dropped {n}: {reason}");
    }
    if let Some(why) = &report.stalled {
        println!("  stalled, as it should (its committed state was lost): {why}");
    }
    if report.passed() {
        println!("  passed");
    } else {
        for violation in &report.violations {
            println!("  VIOLATION: {violation}");
        }
        for line in &report.final_state {
            println!("  at the end: {line}");
        }
        println!("  replay: {}", report.replay_command());
    }
}
