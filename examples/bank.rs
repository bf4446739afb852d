//! A library user's own application, bank accounts, replicated by eve: three nodes on loopback
//! QUIC with mutual TLS (each an execution replica and a verifier, tolerating one failure), and
//! clients moving money concurrently. Run with `cargo run --release --example bank`.

use bytes::Bytes;
use eve::agreement::NodeId;
use eve::exec::{Application, ExecContext};
use eve::mixer::ConflictKeys;
use eve::net::ClusterCa;
use eve::node::{ClusterSpec, EveClient, NodeBuilder};
use eve::types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, VerifierId};
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The cluster: u = 1 (3 replicas, 3 verifiers), every node's address, one CA.
    let config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 }).validate()?;
    let mut addresses = std::collections::BTreeMap::new();
    for i in 0..3u16 {
        addresses.insert(
            NodeId::Replica(ReplicaId(i.into())),
            ([127, 0, 0, 1], 7600 + i).into(),
        );
        addresses.insert(
            NodeId::Verifier(VerifierId(i.into())),
            ([127, 0, 0, 1], 7610 + i).into(),
        );
    }
    let spec = ClusterSpec::new(config, addresses)?;
    let ca = ClusterCa::generate("bank")?;
    let mut nodes = Vec::new();
    for i in 0..3u32 {
        let (replica, verifier) = (
            NodeId::Replica(ReplicaId(i)),
            NodeId::Verifier(VerifierId(i)),
        );
        let node = NodeBuilder::new(spec.clone())
            .replica(ReplicaId(i), ca.issue(replica)?, Bank)
            .verifier(VerifierId(i), ca.issue(verifier)?)
            .start()?;
        nodes.push(node);
    }
    // Ten clients: each deposits into its account, then passes money to the next one.
    let mut tasks = Vec::new();
    for c in 0..10u32 {
        let id = ClientId(c.into());
        let client = EveClient::connect(&spec, id, &ca.issue(NodeId::Client(id))?)?;
        tasks.push(tokio::spawn(async move {
            let call = |op: BankOp| client.call(postcard::to_allocvec(&op).expect("encodes"));
            call(BankOp::Deposit(c, 1_000)).await?;
            for _ in 0..20 {
                call(BankOp::Transfer(c, (c + 1) % 10, 10)).await?;
            }
            let balance = call(BankOp::Balance(c)).await?;
            client.close().await;
            Ok::<_, eve::node::CallError>(String::from_utf8_lossy(&balance).into_owned())
        }));
    }
    for (c, task) in tasks.into_iter().enumerate() {
        println!("account {c}: {} cents", task.await??);
    }
    for node in &nodes {
        for role in node.status().await {
            println!(
                "{:?}: view {}, committed {}",
                role.node, role.view, role.committed
            );
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
