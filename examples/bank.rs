//! A library user's own application: bank accounts, replicated by eve.
//!
//! Run with `cargo run --example bank`. It executes the same batches on a replica with two
//! worker threads and on a sequential one, and checks that their tokens match.

use bytes::Bytes;
use eve::exec::{Application, ExecContext, ExecMode, Executor, ThreadPoolRunner};
use eve::mixer::{ConflictKeys, GreedyMixer};
use eve::state::{StateConfig, StateStore};
use eve::types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use serde::{Deserialize, Serialize};

/// What clients ask the bank to do (amounts in cents).
#[derive(Serialize, Deserialize)]
enum BankOp {
    Deposit(u32, u64),
    Transfer(u32, u32, u64),
    Balance(u32),
}

struct Bank;

fn key(account: u32) -> Vec<u8> {
    format!("account/{account}").into_bytes()
}

fn balance(ctx: &ExecContext<'_>, account: u32) -> u64 {
    let bytes = ctx.get(&key(account));
    bytes.map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()))
}

impl Application for Bank {
    /// Tells the mixer which accounts each operation touches.
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        match postcard::from_bytes(op) {
            Ok(BankOp::Deposit(account, _)) => keys.write(&key(account)),
            Ok(BankOp::Transfer(from, to, _)) => {
                keys.write(&key(from));
                keys.write(&key(to));
            }
            Ok(BankOp::Balance(account)) => keys.read(&key(account)),
            Err(_) => {}
        }
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        let set = |ctx: &mut ExecContext<'_>, account, cents: u64| {
            ctx.put(&key(account), cents.to_le_bytes().to_vec())
        };
        let reply = match postcard::from_bytes(op) {
            Ok(BankOp::Deposit(account, cents)) => {
                let new = balance(ctx, account) + cents;
                set(ctx, account, new).map(|()| new.to_string())
            }
            Ok(BankOp::Transfer(from, to, cents)) if balance(ctx, from) >= cents => {
                let (debited, credited) = (balance(ctx, from) - cents, balance(ctx, to) + cents);
                set(ctx, from, debited)
                    .and_then(|()| set(ctx, to, credited))
                    .map(|()| "ok".to_string())
            }
            Ok(BankOp::Transfer(..)) => Ok("insufficient funds".to_string()),
            Ok(BankOp::Balance(account)) => Ok(balance(ctx, account).to_string()),
            Err(err) => Ok(format!("bad request: {err}")),
        };
        Bytes::from(reply.unwrap_or_else(|err| err.to_string()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let state = || StateStore::new(StateConfig::default());
    let runner = Box::new(ThreadPoolRunner::new(2)?);
    let mut parallel = Executor::new(Bank, state(), Box::new(GreedyMixer), runner);
    let mut sequential = Executor::sequential(Bank, state());
    for round in 1..=5u64 {
        let mut requests = Vec::new();
        for i in 0..21u32 {
            let op = match i {
                0..10 => BankOp::Deposit(i, 100),
                10..20 => BankOp::Transfer(i - 10, (i - 9) % 10, 70),
                _ => BankOp::Balance(0),
            };
            let op = postcard::to_allocvec(&op)?;
            requests.push(Request::new(ClientId(i.into()), RequestNo(round), op)?);
        }
        let nondet = NonDet {
            time_ms: round,
            seed: round,
        };
        let a = parallel.execute(BatchSeq(round), &requests, nondet, ExecMode::Parallel)?;
        let b = sequential.execute(BatchSeq(round), &requests, nondet, ExecMode::Sequential)?;
        assert_eq!(a.token, b.token, "parallel and sequential replicas agree");
        let account_0 = String::from_utf8_lossy(&b.replies[20].body).into_owned();
        println!(
            "batch {round}: {} parallel batches, account 0 holds {account_0} cents",
            a.parallel_batches
        );
    }
    Ok(())
}
