//! The chaos run's load: clients that call the key-value store one call at a time and record
//! each call as they saw it, and the final reads of every key once the faults are over.
//!
//! Every write puts a value no other write puts (`c<client>-<n>`), so a read tells which write
//! it saw. A call that times out is recorded without a completion: it may have taken effect at
//! any time after it was sent, or never (the client keeps retransmitting it, and its next call
//! waits for it first).

use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use eve_node::EveClient;
use eve_node::config::LoadedConfig;
use eve_sim::kv_history::KvEvent;
use eve_types::{ClientId, SplitMix64};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The key of number `k`.
pub fn key(k: u64) -> Bytes {
    Bytes::from(format!("k{k:03}"))
}

/// A connected client and what it recorded.
pub struct Recorder {
    client: EveClient,
    id: u64,
    start: Instant,
    /// The calls made, in order.
    pub events: Vec<KvEvent>,
}

impl Recorder {
    /// Connects as the client of the configuration at `config`, timing calls from `start`,
    /// each allowed `timeout`.
    pub fn connect(config: &Path, start: Instant, timeout: Duration) -> anyhow::Result<Self> {
        let loaded = LoadedConfig::load(config)?;
        let role = loaded
            .file
            .client
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{}: has no [client] section", config.display()))?;
        let credentials = loaded.credentials(role, "client")?;
        let client = EveClient::connect(&loaded.spec, ClientId(role.id), &credentials)?
            .with_timeout(timeout);
        Ok(Self {
            client,
            id: role.id,
            start,
            events: Vec::new(),
        })
    }

    /// Times calls from `start` from now on, forgetting what was recorded before (the
    /// client keeps its identity and its request numbers: a new client with the same identity
    /// would number from 1 again and be answered from the replicas' reply caches).
    pub fn rebase(&mut self, start: Instant) {
        self.start = start;
        self.events.clear();
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Calls `op` and records it; returns the reply when there was one.
    pub async fn call(&mut self, op: KvOp) -> Option<KvReply> {
        let invoke = self.now_us();
        let result = self.client.call(op.encode()).await;
        let complete = self.now_us();
        let reply = match result {
            Ok(body) => Some(
                KvReply::decode(&body)
                    .unwrap_or_else(|e| KvReply::Error(format!("an undecodable reply: {e}"))),
            ),
            Err(_) => None,
        };
        self.events.push(KvEvent {
            client: self.id,
            invoke,
            complete: reply.as_ref().map(|_| complete),
            op,
            reply: reply.clone(),
        });
        reply
    }

    /// Calls at random over `keys` keys until `stop` is set, resting `think` between calls:
    /// 45% reads, 45% writes, 10% compare-and-swaps from the value last read.
    pub async fn drive(&mut self, keys: u64, seed: u64, think: Duration, stop: Arc<AtomicBool>) {
        let mut rng = SplitMix64::new(seed);
        let mut n = 0u64;
        let mut last_read: Option<(u64, Option<Bytes>)> = None;
        while !stop.load(Ordering::Relaxed) {
            let k = rng.below(keys);
            let roll = rng.below(100);
            let op = if roll < 45 {
                KvOp::Get { key: key(k) }
            } else if roll < 90 || last_read.is_none() {
                n += 1;
                KvOp::Put {
                    key: key(k),
                    value: Bytes::from(format!("c{}-{n}", self.id)),
                }
            } else {
                let (k, expected) = last_read.take().expect("checked above");
                n += 1;
                KvOp::CompareAndSwap {
                    key: key(k),
                    expected,
                    new: Some(Bytes::from(format!("c{}-{n}", self.id))),
                }
            };
            let read = matches!(op, KvOp::Get { .. });
            let reply = self.call(op).await;
            if read && let Some(KvReply::Value(v)) = reply {
                last_read = Some((k, v));
            }
            if !think.is_zero() {
                tokio::time::sleep(think).await;
            }
        }
    }

    /// Stops the client.
    pub async fn close(self) -> Vec<KvEvent> {
        self.client.close().await;
        self.events
    }
}
