//! `eve-node kv`: one call to the key-value store, printed plainly.

use crate::KvCommand;
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use eve_node::EveClient;
use eve_node::config::LoadedConfig;
use eve_types::ClientId;
use std::path::Path;

pub(crate) async fn run(path: &Path, timeout_ms: u64, op: KvCommand) -> Result<()> {
    let loaded = LoadedConfig::load(path)?;
    let role = loaded
        .file
        .client
        .as_ref()
        .ok_or_else(|| anyhow!("{}: has no [client] section", path.display()))?;
    let credentials = loaded.credentials(role, "client")?;
    let bytes = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let optional = |s: &str| (s != "-").then(|| bytes(s));
    let op = match &op {
        KvCommand::Get { key } => KvOp::Get { key: bytes(key) },
        KvCommand::Put { key, value } => KvOp::Put {
            key: bytes(key),
            value: bytes(value),
        },
        KvCommand::Delete { key } => KvOp::Delete { key: bytes(key) },
        KvCommand::Cas { key, expected, new } => KvOp::CompareAndSwap {
            key: bytes(key),
            expected: optional(expected),
            new: optional(new),
        },
        KvCommand::Incr { key, delta } => KvOp::Increment {
            key: bytes(key),
            delta: *delta,
        },
        KvCommand::Transfer { from, to, amount } => KvOp::Transfer {
            from: bytes(from),
            to: bytes(to),
            amount: *amount,
        },
    };
    // Each invocation is a new process with the same client id: its request number must be
    // above every earlier call's (see `request_numbers`), and the reservation is held until
    // the call is done.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let dir = path.parent().unwrap_or(Path::new("."));
    let reserved = crate::request_numbers::reserve(dir, role.id, clock)?;
    let client =
        EveClient::connect_resuming(&loaded.spec, ClientId(role.id), &credentials, reserved.next)?
            .with_timeout(std::time::Duration::from_millis(timeout_ms));
    let result = client.call(op.encode()).await;
    client.close().await;
    drop(reserved);
    let reply =
        KvReply::decode(&result?).context("the cluster's reply is not a key-value reply")?;
    let show = |v: &Option<Bytes>| match v {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "(none)".to_owned(),
    };
    match reply {
        KvReply::Value(v) => println!("{}", show(&v)),
        KvReply::Swapped => println!("swapped"),
        KvReply::CasFailed { current } => bail!("not swapped: the value is {}", show(&current)),
        KvReply::Counter(n) => println!("{n}"),
        KvReply::Transferred {
            from_balance,
            to_balance,
        } => println!("transferred: {from_balance} left, {to_balance} at the destination"),
        KvReply::InsufficientFunds { balance } => {
            bail!("insufficient funds: the balance is {balance}")
        }
        KvReply::NotANumber => bail!("the key does not hold a counter"),
        KvReply::Overflow => bail!("the counter would overflow"),
        KvReply::Error(e) => bail!("refused by the store: {e}"),
    }
    Ok(())
}
