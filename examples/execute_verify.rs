//! Three replicas execute the same batches in parallel and verify each other: the execution
//! core of Eve in one process, before the protocol layer and network arrive.
//!
//! Run with `cargo run --release --example execute_verify`. Each batch of key-value requests
//! runs on three replicas with two worker threads each. One replica's mixer misses 0.1% of conflicts,
//! and every fifth batch carries requests of a racy counter, so tokens sometimes disagree:
//! - when two tokens match, the batch commits; a replica with another token rolls back and
//!   repairs itself by incremental state transfer from a matching one;
//! - when no two match, every replica rolls back and re-executes the batch sequentially.

use bytes::Bytes;
use eve::apps::{KvOp, KvStore, RacyCounter};
use eve::exec::{Application, ExecContext, ExecMode, Executor, ThreadPoolRunner, Token};
use eve::mixer::{ConflictKeys, FaultyMixer, GreedyMixer, Mixer};
use eve::state::{StateConfig, StateStore};
use eve::types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use std::time::Instant;

/// The key-value store, plus a racy counter for operations that start with byte `b'!'`.
struct Demo {
    kv: KvStore,
    racy: RacyCounter,
}

impl Application for Demo {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        match op.first() {
            Some(b'!') => self.racy.conflict_keys(op, keys),
            _ => self.kv.conflict_keys(op, keys),
        }
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        match op.first() {
            Some(b'!') => self.racy.execute(ctx, op),
            _ => self.kv.execute(ctx, op),
        }
    }
}

fn replica(mixer: Box<dyn Mixer>) -> Result<Executor<Demo>, Box<dyn std::error::Error>> {
    let app = Demo {
        kv: KvStore,
        racy: RacyCounter::new(2_000),
    };
    let state = StateStore::new(StateConfig::new(12, 4096)?);
    Ok(Executor::new(
        app,
        state,
        mixer,
        Box::new(ThreadPoolRunner::new(2)?),
    ))
}

/// A batch of transfers and increments over 64 accounts from 500 clients.
fn batch(seq: u64) -> Result<Vec<Request>, Box<dyn std::error::Error>> {
    let mut requests = Vec::new();
    for client in 0..500u64 {
        let x = NonDet {
            time_ms: 0,
            seed: seq,
        }
        .random_for(client as usize);
        let account = |n: u64| Bytes::from(format!("account/{}", n % 64));
        let op = match x % 4 {
            0 => KvOp::Increment {
                key: account(x >> 8),
                delta: 10,
            },
            1 => KvOp::Get {
                key: account(x >> 8),
            },
            _ => KvOp::Transfer {
                from: account(x >> 8),
                to: account(x >> 16),
                amount: 1,
            },
        };
        let op = if seq.is_multiple_of(5) && client % 10 == 0 {
            Bytes::from_static(b"!")
        } else {
            op.encode()
        };
        requests.push(Request::new(ClientId(client), RequestNo(seq), op)?);
    }
    Ok(requests)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let missing = FaultyMixer::new(GreedyMixer, 1_000, 0, 7)?;
    let mut replicas = vec![
        replica(Box::new(GreedyMixer))?,
        replica(Box::new(GreedyMixer))?,
        replica(Box::new(missing))?,
    ];
    let (mut repaired, mut sequential, mut requests_done) = (0, 0, 0);
    let start = Instant::now();
    for seq in 1..=100u64 {
        let requests = batch(seq)?;
        let nondet = NonDet {
            time_ms: seq,
            seed: seq,
        };
        let mut tokens: Vec<Token> = Vec::new();
        for replica in &mut replicas {
            tokens.push(
                replica
                    .execute(BatchSeq(seq), &requests, nondet, ExecMode::Parallel)?
                    .token,
            );
        }
        let agreed = tokens
            .iter()
            .find(|t| tokens.iter().filter(|u| u == t).count() >= 2)
            .copied();
        match agreed {
            Some(token) => {
                let good = tokens
                    .iter()
                    .position(|t| *t == token)
                    .expect("agreed token is held");
                for r in 0..replicas.len() {
                    if tokens[r] != token {
                        let delta = replicas[good].state().export_delta(
                            BatchSeq(seq - 1),
                            BatchSeq(seq),
                            usize::MAX,
                        )?;
                        let root = replicas[good].state().root();
                        replicas[r].rollback(BatchSeq(seq - 1))?;
                        replicas[r].state_mut().import_delta(&delta, root)?;
                        repaired += 1;
                        println!(
                            "batch {seq}: replica {r} diverged; repaired by transferring {} objects",
                            delta.entries.len()
                        );
                    }
                }
            }
            None => {
                let mut again = Vec::new();
                for replica in &mut replicas {
                    replica.rollback(BatchSeq(seq - 1))?;
                    again.push(
                        replica
                            .execute(BatchSeq(seq), &requests, nondet, ExecMode::Sequential)?
                            .token,
                    );
                }
                assert!(
                    again.windows(2).all(|w| w[0] == w[1]),
                    "sequential re-execution agrees"
                );
                sequential += 1;
                println!(
                    "batch {seq}: no two tokens matched; rolled back and re-executed sequentially"
                );
            }
        }
        let roots: Vec<_> = replicas.iter().map(|r| r.state().root()).collect();
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "committed roots are equal"
        );
        for replica in &mut replicas {
            replica.mark_stable(BatchSeq(seq))?;
        }
        requests_done += requests.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("\n100 batches, {requests_done} requests on 3 replicas in {seconds:.2} s");
    println!("repaired by state transfer: {repaired}; re-executed sequentially: {sequential}");
    Ok(())
}
