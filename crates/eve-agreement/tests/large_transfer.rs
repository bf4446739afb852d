//! Finding 3 of the harsher-simulator review: a full state transfer had to finish within one
//! `verify_timeout_ms`, since arriving chunks never moved its deadline and the next round
//! started the import over. A replica restarted on a large state never rejoined. Here the
//! state is small but chunks are tiny and each takes 40 ms to arrive (the timeout is 100 ms),
//! so a full transfer takes many timeouts.

mod harness;

use eve_agreement::{Message, NodeId, Replica};
use eve_types::ReplicaId;
use harness::{Fate, Net, config, put, replica};
use std::cell::RefCell;
use std::rc::Rc;

/// Objects written before the restart (with the reply cache, the state holds a few more).
const KEYS: usize = 24;

/// Chunks carry about one object each.
const CHUNK_BYTES: usize = 64;

/// How long each chunk takes to reach the restarted replica.
const CHUNK_DELAY_MS: u64 = 40;

/// What the restarted replica asked for, and from whom.
#[derive(Default)]
struct Asked {
    state_requests: Vec<NodeId>,
    /// `(peer, first bucket, first object)` of every chunk request.
    chunk_requests: Vec<(NodeId, u32, u32)>,
}

/// A cluster (u = 1, r = 0) that committed `KEYS` writes, with replica 2 restarted empty.
fn cluster_with_restarted_replica() -> Net {
    let mut net = Net::new(config(1, 0), 1);
    for i in 0..KEYS {
        net.submit(0, put(&format!("key-{i:02}"), &"v".repeat(32)));
        assert!(net.run_until(1_000, |n| n.idle(0)), "write {i} completes");
    }
    net.crash_replica(2);
    net.restart_replica_with_chunks(
        2,
        Replica::restart(ReplicaId(2), config(1, 0), 1),
        CHUNK_BYTES,
    );
    net
}

/// Holds every chunk bound for replica 2 (released every `CHUNK_DELAY_MS`), loses what
/// `lose` picks, and records what replica 2 asks for.
fn slow_chunks(
    net: &mut Net,
    asked: Rc<RefCell<Asked>>,
    lose: impl Fn(NodeId, &Message) -> bool + 'static,
) {
    net.set_filter(Box::new(move |from, to, msg| {
        if from == replica(2) {
            match msg {
                Message::StateRequest { .. } => asked.borrow_mut().state_requests.push(to),
                Message::ChunkRequest(request) => asked.borrow_mut().chunk_requests.push((
                    to,
                    request.buckets.first().copied().unwrap_or(0),
                    request.first_object,
                )),
                _ => {}
            }
        }
        if to == replica(2) && lose(from, msg) {
            return Fate::Lose;
        }
        match msg {
            Message::Chunk(_) if to == replica(2) => Fate::Hold,
            _ => Fate::Deliver,
        }
    }));
}

/// Runs until replica 2 holds the committed state of the cluster's last batch (or `ms_max`).
fn catch_up(net: &mut Net, ms_max: u64) -> bool {
    let target = net.replicas[0].logic.committed();
    let mut waited = 0;
    while waited < ms_max {
        let r2 = &net.replicas[2].logic;
        if r2.committed() == target && r2.holds_committed_state() && !r2.is_transferring() {
            return true;
        }
        net.advance_ms(CHUNK_DELAY_MS);
        net.deliver_held();
        waited += CHUNK_DELAY_MS;
    }
    false
}

#[test]
fn a_transfer_that_keeps_receiving_chunks_is_not_abandoned() {
    let mut net = cluster_with_restarted_replica();
    let asked = Rc::new(RefCell::new(Asked::default()));
    slow_chunks(&mut net, asked.clone(), |_, _| false);
    assert!(catch_up(&mut net, 20_000), "{}", net.describe());
    let asked = asked.borrow();
    let chunks = asked.chunk_requests.len() as u64;
    assert!(
        chunks * CHUNK_DELAY_MS > 3 * net.config.verify_timeout_ms,
        "the transfer took {chunks} chunks: it must outlast several timeouts"
    );
    assert_eq!(
        asked.state_requests.len(),
        1,
        "each chunk moves the deadline: the first peer, sending steadily, is never replaced \
         ({:?})",
        asked.state_requests
    );
    assert_eq!(net.replicas[2].logic.counters().transfers_past_timeout, 1);
}

#[test]
fn a_new_round_resumes_the_chunks_already_verified() {
    let mut net = cluster_with_restarted_replica();
    let asked = Rc::new(RefCell::new(Asked::default()));
    // The first peer asked goes silent after its fifth chunk.
    let sent_by_first = Rc::new(RefCell::new((None::<NodeId>, 0usize)));
    let lose = {
        let sent = sent_by_first.clone();
        move |from: NodeId, msg: &Message| {
            let mut sent = sent.borrow_mut();
            if matches!(msg, Message::Chunk(_)) && sent.0.is_none() {
                sent.0 = Some(from);
            }
            if sent.0 != Some(from) {
                return false;
            }
            if matches!(msg, Message::Chunk(_)) {
                sent.1 += 1;
            }
            sent.1 > 5
        }
    };
    slow_chunks(&mut net, asked.clone(), lose);
    assert!(catch_up(&mut net, 20_000), "{}", net.describe());
    let asked = asked.borrow();
    let first = sent_by_first.borrow().0.expect("a peer sent chunks");
    assert!(
        asked.state_requests.len() >= 2 && asked.state_requests.iter().any(|&p| p != first),
        "the silent peer was replaced: {:?}",
        asked.state_requests
    );
    let mut seen = std::collections::BTreeMap::new();
    for &(_, bucket, object) in &asked.chunk_requests {
        *seen.entry((bucket, object)).or_insert(0) += 1;
    }
    let again: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.len() <= 1,
        "a new round asks only for what is missing (the chunk lost in flight at most is asked \
         again), asked again: {again:?} of {} requests",
        asked.chunk_requests.len()
    );
}
