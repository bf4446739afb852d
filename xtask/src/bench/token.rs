//! `cargo xtask bench token`: how much a token costs as the state grows.
//!
//! A token is `H(seq || previous_root || new_root)`, and the new root comes from
//! [`StateStore::seal`], which rehashes only the buckets a batch wrote and their paths. So the
//! cost of seal plus token should follow the number of modified objects, not the size of the
//! state: the report gives the median for each state size as a ratio to the smallest.

use super::report::{Column, Header, Table};
use super::stats::{median, percentile, splitmix64};
use crate::release;
use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use clap::Args;
use eve_exec::{ThreadPoolRunner, Token};
use eve_state::{ParallelFor, Serial, StateConfig, StateStore};
use std::collections::HashSet;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The options of `cargo xtask bench token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Objects in each state measured, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "10000,1000000"
    )]
    objects: Vec<u64>,
    /// Threads lent to the seal, comma-separated (1: sealed on the calling thread alone)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "1,2"
    )]
    threads: Vec<usize>,
    /// Distinct existing objects written before each seal
    #[arg(long, default_value_t = 1000)]
    modified: u64,
    /// Timed rounds (puts, then seal and token) per state [default: 200; with --quick: 20]
    #[arg(long)]
    rounds: Option<usize>,
    /// A short smoke run: 20 rounds per state (options given win)
    #[arg(long)]
    quick: bool,
    /// Seed of the generator that picks the modified objects
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as Markdown to FILE, and as CSV next to it
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Most objects in one measured state (about 200 bytes each in memory).
const OBJECTS_MAX: u64 = 50_000_000;

/// Most timed rounds per state.
const ROUNDS_MAX: usize = 1_000_000;

const COLUMNS: [Column; 9] = [
    Column {
        name: "objects",
        width: 9,
    },
    Column {
        name: "threads",
        width: 7,
    },
    Column {
        name: "modified",
        width: 8,
    },
    Column {
        name: "rounds",
        width: 6,
    },
    Column {
        name: "puts_median_us",
        width: 14,
    },
    Column {
        name: "puts_p90_us",
        width: 11,
    },
    Column {
        name: "seal_token_median_us",
        width: 20,
    },
    Column {
        name: "seal_token_p90_us",
        width: 17,
    },
    Column {
        name: "seal_token_vs_first",
        width: 19,
    },
];

/// Runs the token benchmark, printing a row per state size.
pub fn run(args: &TokenArgs) -> Result<()> {
    let rounds = args.rounds.unwrap_or(if args.quick { 20 } else { 200 });
    validate(args, rounds)?;
    let mut header = Header::new(
        "eve token: seal + token after a batch of writes",
        &release::command_line(),
    );
    let config = StateConfig::default();
    header.fact("merkle buckets", &format!("2^{}", config.bucket_bits()));
    header.fact(
        "rounds per state (warm-up)",
        &format!("{rounds} ({})", warmup_rounds(rounds)),
    );
    header.fact("seed", &args.seed.to_string());
    println!(
        "\nseal_token = StateStore::seal + Token::compute after `modified` puts; puts are timed \
         apart; seal_token_vs_first = seal_token median / that of the first state.\n"
    );
    let mut table = Table::new(&COLUMNS);
    let mut medians = Vec::new();
    for &objects in &args.objects {
        let start = Instant::now();
        let mut state = populated_state(config, objects)?;
        eprintln!(
            "(built a state of {objects} objects in {:.2?})",
            start.elapsed()
        );
        for &threads in &args.threads {
            let mut lent: Box<dyn ParallelFor> = if threads == 1 {
                Box::new(Serial)
            } else {
                Box::new(ThreadPoolRunner::new(threads).context("starting the seal's threads")?)
            };
            let mut samples = Samples::default();
            for round in 0..warmup_rounds(rounds) + rounds {
                let sample = one_round(
                    &mut state,
                    lent.as_mut(),
                    objects,
                    args.modified,
                    args.seed,
                    round as u64,
                )?;
                if round >= warmup_rounds(rounds) {
                    samples.puts.push(sample.puts);
                    samples.seal_token.push(sample.seal_token);
                }
            }
            let seal_token_median = median(&mut samples.seal_token);
            medians.push((objects, threads, seal_token_median));
            let first = medians
                .iter()
                .find(|m| m.1 == threads)
                .expect("this row was just pushed")
                .2;
            table.push(vec![
                objects.to_string(),
                threads.to_string(),
                args.modified.to_string(),
                rounds.to_string(),
                micros(median(&mut samples.puts)),
                micros(percentile(&mut samples.puts, 90)),
                micros(seal_token_median),
                micros(percentile(&mut samples.seal_token, 90)),
                format!(
                    "{:.2}",
                    seal_token_median.as_secs_f64() / first.as_secs_f64()
                ),
            ]);
        }
    }
    for &threads in &args.threads {
        let rows: Vec<_> = medians.iter().filter(|m| m.1 == threads).collect();
        if let [(small, _, small_median), .., (large, _, large_median)] = rows[..] {
            println!(
                "\nseal + token median with {threads} thread(s), {large} objects / {small} objects: {:.2}",
                large_median.as_secs_f64() / small_median.as_secs_f64()
            );
        }
    }
    if let Some(out) = &args.out {
        for path in header.write(out, &[&table])? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn validate(args: &TokenArgs, rounds: usize) -> Result<()> {
    ensure!(
        !args.objects.is_empty(),
        "--objects needs at least one value"
    );
    for &objects in &args.objects {
        ensure!(
            (1..=OBJECTS_MAX).contains(&objects),
            "--objects {objects}: each value must be in 1 ..= {OBJECTS_MAX}"
        );
        ensure!(
            (1..=objects).contains(&args.modified),
            "--modified {}: must be in 1 ..= the smallest --objects value ({objects}), since \
             the modified objects are distinct existing ones",
            args.modified
        );
    }
    ensure!(
        (1..=ROUNDS_MAX).contains(&rounds),
        "--rounds {rounds}: must be in 1 ..= {ROUNDS_MAX}"
    );
    Ok(())
}

/// Untimed rounds before the timed ones.
fn warmup_rounds(rounds: usize) -> usize {
    (rounds / 10).max(2)
}

#[derive(Debug, Default)]
struct Samples {
    puts: Vec<Duration>,
    seal_token: Vec<Duration>,
}

/// The two timings of one round.
#[derive(Clone, Copy, Debug)]
struct Sample {
    puts: Duration,
    seal_token: Duration,
}

/// The key of object `i`.
fn object_key(i: u64) -> [u8; 9] {
    let mut key = [b'o'; 9];
    key[1..].copy_from_slice(&i.to_be_bytes());
    key
}

/// A state holding `objects` objects, sealed and marked stable, so it carries no undo record.
fn populated_state(config: StateConfig, objects: u64) -> Result<StateStore> {
    let mut state = StateStore::new(config);
    for i in 0..objects {
        state
            .put(&object_key(i), Bytes::copy_from_slice(&i.to_le_bytes()))
            .context("populating the state")?;
    }
    let version = state.working_version();
    state.seal().context("sealing the populated state")?;
    state
        .mark_stable(version)
        .context("marking the populated state stable")?;
    ensure!(
        state.len() as u64 == objects,
        "the populated state holds {} objects, not {objects}",
        state.len()
    );
    Ok(state)
}

/// Writes `modified` distinct existing objects (timed), then seals and computes the token
/// (timed), then marks the version stable (untimed) so the state does not grow.
fn one_round(
    state: &mut StateStore,
    lent: &mut dyn ParallelFor,
    objects: u64,
    modified: u64,
    seed: u64,
    round: u64,
) -> Result<Sample> {
    let writes: Vec<([u8; 9], Bytes)> =
        distinct_indices(objects, modified, seed ^ splitmix64(round))
            .into_iter()
            .map(|i| (object_key(i), Bytes::copy_from_slice(&round.to_le_bytes())))
            .collect();
    let seq = state.working_version();
    let previous_root = state.root();

    let start = Instant::now();
    for (key, value) in writes {
        state.put(&key, value).context("writing an object")?;
    }
    let puts = start.elapsed();

    let start = Instant::now();
    let new_root = state.seal_with(lent).context("sealing")?;
    black_box(Token::compute(seq, previous_root, new_root));
    let seal_token = start.elapsed();

    state.mark_stable(seq).context("marking the round stable")?;
    Ok(Sample { puts, seal_token })
}

/// `count` distinct numbers below `below` (Floyd's algorithm), drawn from `seed`, in the
/// order drawn. The set is only looked up, so its iteration order reaches nothing.
fn distinct_indices(below: u64, count: u64, seed: u64) -> Vec<u64> {
    assert!(
        count <= below,
        "cannot draw {count} distinct numbers below {below}"
    );
    let mut seen = HashSet::with_capacity(count as usize);
    let mut drawn = Vec::with_capacity(count as usize);
    for j in below - count..below {
        let candidate = splitmix64(seed.wrapping_add(j)) % (j + 1);
        let pick = if seen.contains(&candidate) {
            j
        } else {
            candidate
        };
        seen.insert(pick);
        drawn.push(pick);
    }
    drawn
}

/// A duration in microseconds, with one decimal.
fn micros(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_indices_are_distinct_and_in_range() {
        for (below, count) in [(10, 10), (10_000, 1000), (5, 1)] {
            let drawn = distinct_indices(below, count, 3);
            assert_eq!(drawn.len() as u64, count);
            let unique: HashSet<u64> = drawn.iter().copied().collect();
            assert_eq!(unique.len() as u64, count, "distinct");
            assert!(drawn.iter().all(|&i| i < below), "in range");
        }
        assert_eq!(
            distinct_indices(100, 10, 7),
            distinct_indices(100, 10, 7),
            "seeded"
        );
    }

    #[test]
    fn a_round_leaves_the_state_the_same_size_with_no_undo_records() {
        let mut state = populated_state(StateConfig::default(), 500).expect("small state");
        one_round(&mut state, &mut Serial, 500, 100, 1, 0).expect("a round");
        assert_eq!(state.len(), 500);
        assert_eq!(state.retained_versions(), 0, "marked stable");
    }
}
