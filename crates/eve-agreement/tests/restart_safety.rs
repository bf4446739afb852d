//! Restarts without memory must not undo what clients were told: directed schedules over the
//! real replicas, verifiers, clients and executors (see `harness`), each one a way an
//! acknowledged write was once lost. `docs/PROTOCOL.md`, "Restarts", gives the rules.

mod harness;

use eve_agreement::{Message, Replica, Verifier};
use eve_types::{BatchSeq, ReplicaId, VerifierId};
use harness::{Fate, Net, config, get, put, replica, value, verifier};

/// Writes `a = v1..v4` through client 0, each acknowledged before the next.
fn four_writes(net: &mut Net) {
    for i in 1..=4 {
        net.submit(0, put("a", &format!("v{i}")));
        assert!(
            net.run_until(1_000, |n| n.idle(0)),
            "write {i} completes on a healthy cluster"
        );
    }
    for r in &net.replicas {
        assert_eq!(
            r.logic.committed(),
            BatchSeq(4),
            "every replica committed 4"
        );
    }
}

fn is_seq5(msg: &Message) -> bool {
    match msg {
        Message::ExecuteBatch(b) => b.seq == BatchSeq(5),
        Message::Verify { seq, .. }
        | Message::Commit { seq, .. }
        | Message::Verified { seq, .. } => *seq == BatchSeq(5),
        _ => false,
    }
}

/// Finding 1 of the harsher-simulator review (u = 1, r = 0, one request per batch): batch 5
/// (`put a=v5`) commits at V0 alone, whose `Verified` reaches only R1, which replies; V0 is then
/// cut off; the primary R0 crashes and restarts empty, catches up to 4 and, believing it still
/// leads view 0, orders another client's put (`b = x{k}`) at seq 5. R2 executes it, R0 and R2
/// send its token, V1 locks it while V2 holds the lock on batch 5, and the next view starts at
/// one of the two. Whichever it is, the read of `a` must return `v5`. Returns what it read.
fn restarted_primary_schedule(k: u32, restart: impl FnOnce() -> Replica) -> Option<String> {
    let mut net = Net::new(config(1, 0), 2);
    four_writes(&mut net);

    // Batch 5: lose R0's copy to R2, R0's token to V1, every Commit except V0's and V2's own
    // to V0 and themselves, and V0's Verified to all but R1. R1's token to V1 is held, so V1
    // starts its timer for batch 5 only later.
    net.set_filter(Box::new(|from, to, msg| {
        if !is_seq5(msg) {
            return Fate::Deliver;
        }
        let lose = match msg {
            Message::ExecuteBatch(_) => from == replica(0) && to == replica(2),
            Message::Verify { .. } if to == verifier(1) => {
                return if from == replica(1) {
                    Fate::Hold
                } else {
                    Fate::Lose
                };
            }
            Message::Commit { .. } => {
                to == verifier(1) || (from == verifier(0) && to == verifier(2))
            }
            Message::Verified { .. } => from == verifier(0) && to != replica(1),
            _ => false,
        };
        if lose { Fate::Lose } else { Fate::Deliver }
    }));
    net.submit(0, put("a", "v5"));
    net.run();
    assert!(
        net.idle(0),
        "R1 replied for batch 5 and the client accepted"
    );
    assert_eq!(net.last_done(0).seq, BatchSeq(5));

    // V0 is cut off; R0 crashes and restarts empty. V2's view-change request (it times out on
    // batch 5) is held from V1 until V1 has seen the tokens of the restarted primary's batch.
    net.set_filter(Box::new(|from, to, msg| {
        if from == verifier(0) || to == verifier(0) {
            Fate::Lose
        } else if matches!(msg, Message::ViewChange { .. }) {
            Fate::Hold
        } else {
            Fate::Deliver
        }
    }));
    net.crash_replica(0);
    net.restart_replica(0, restart());
    let _ = net.run_until(500, |n| n.replicas[0].logic.committed() >= BatchSeq(4));
    net.release_held();
    net.submit(1, put("b", &format!("x{k}")));
    let _ = net.run_until(300, |n| n.idle(1));
    net.set_filter(harness::lose_if(|from, to, _| {
        from == verifier(0) || to == verifier(0)
    }));
    net.release_held();
    let _ = net.run_until(3_000, |n| n.idle(1));

    // The client reads what it wrote.
    net.submit(0, get("a"));
    if !net.run_until(5_000, |n| n.idle(0)) {
        return None;
    }
    value(net.last_done(0))
}

#[test]
fn a_restarted_primary_does_not_reorder_a_committed_sequence_number() {
    for k in 0..8 {
        let read =
            restarted_primary_schedule(k, || Replica::restart(ReplicaId(0), config(1, 0), 1));
        assert_eq!(
            read.as_deref(),
            Some("v5"),
            "variant {k}: an acknowledged write survives the primary's restart"
        );
    }
}

/// Finding 2: a verifier that restarts without memory. Batch 5 (`put a=v5`) executes at R0
/// and R1 only, commits at V0 and V1 only, and only R1 learns it and replies. V1 then restarts
/// empty and V0 and R0 are cut off for three seconds, during which client 0 reads `a`: V1 and
/// V2 form every quorum, and neither may forget batch 5.
fn restarted_verifier_schedule(restart: impl FnOnce(&Net) -> Verifier) -> Option<String> {
    let mut net = Net::new(config(1, 0), 1);
    four_writes(&mut net);

    net.set_filter(harness::lose_if(|from, to, msg| {
        if !is_seq5(msg) {
            return false;
        }
        match msg {
            Message::ExecuteBatch(_) | Message::Verify { .. } | Message::Commit { .. } => {
                to == replica(2) || to == verifier(2)
            }
            Message::Verified { .. } => from != verifier(0) || to != replica(1),
            _ => false,
        }
    }));
    net.submit(0, put("a", "v5"));
    net.run();
    assert!(
        net.idle(0),
        "R1 replied for batch 5 and the client accepted"
    );

    net.verifier_up[1] = false;
    let restarted = restart(&net);
    net.restart_verifier(1, restarted);
    net.set_filter(harness::lose_if(|from, to, _| {
        [verifier(0), replica(0)]
            .iter()
            .any(|n| *n == from || *n == to)
    }));
    net.submit(0, get("a"));
    let _ = net.run_until(3_000, |n| n.idle(0));
    for v in &net.verifiers {
        if let Some((view, start)) = v.view_start() {
            assert!(
                start >= BatchSeq(5),
                "{view} starts after {start}, below batch 5, which committed:\n{}",
                net.describe()
            );
        }
    }
    net.set_filter(harness::lose_nothing());
    if !net.run_until(20_000, |n| n.idle(0)) {
        return None;
    }
    value(net.last_done(0))
}

#[test]
fn a_restarted_verifier_does_not_forget_its_votes() {
    let read = restarted_verifier_schedule(|_| Verifier::restart(VerifierId(1), config(1, 0), 1));
    assert_eq!(
        read.as_deref(),
        Some("v5"),
        "an acknowledged write survives a verifier's restart"
    );
}

/// The same schedule with a durable verifier: V1 resumes from the memory its driver persisted
/// before its last message left (here, its memory at the crash), without asking any peer, and
/// reports batch 5 in the view change as if it had never stopped.
#[test]
fn a_verifier_resumed_from_its_memory_keeps_what_it_committed_without_asking_its_peers() {
    let read = restarted_verifier_schedule(|net| {
        let memory = net.verifiers[1].memory();
        let holds_5 = memory.committed.0 >= BatchSeq(5)
            || memory
                .votes
                .iter()
                .any(|&(seq, _, commit)| seq == BatchSeq(5) && commit.is_some());
        assert!(holds_5, "V1's memory holds batch 5: {memory:?}");
        let resumed = Verifier::resume(VerifierId(1), config(1, 0), memory, net.now);
        assert!(
            !resumed.is_recovering(),
            "a durable verifier needs no peer to resume"
        );
        resumed
    });
    assert_eq!(
        read.as_deref(),
        Some("v5"),
        "an acknowledged write survives a durable verifier's restart"
    );
}

/// Found with real processes: a replica restarted while its peers still wrote to its previous
/// incarnation's connections lost every answer to its first `Recover`, then caught up by
/// state transfer, and, with nothing left to commit, never asked again: it stayed unable to
/// lead for good. A recovering replica must keep asking until a verifier quorum answered.
#[test]
fn a_restarted_replica_keeps_asking_until_it_recovered() {
    let mut net = Net::new(config(1, 0), 1);
    four_writes(&mut net);
    net.crash_replica(1);
    net.restart_replica(1, Replica::restart(ReplicaId(1), config(1, 0), 3));
    net.set_filter(harness::lose_if(|_, _, msg| {
        matches!(msg, Message::RecoverReply { .. })
    }));
    assert!(
        net.run_until(2_000, |n| n.replicas[1].logic.committed() == BatchSeq(4)),
        "the restarted replica catches up: {}",
        net.describe()
    );
    assert!(
        net.replicas[1].logic.is_recovering(),
        "every answer was lost"
    );
    net.set_filter(harness::lose_nothing());
    assert!(
        net.run_until(5_000, |n| !n.replicas[1].logic.is_recovering()),
        "an idle, caught-up replica asks again and recovers: {}",
        net.describe()
    );
}
