//! A node cut off for a while must rejoin without disturbing the view the others made progress
//! in: directed schedules over the real replicas, verifiers, clients and executors (see
//! `harness`). A verifier alone escalates through views while it is cut off (nobody answers
//! its view changes); when the network heals, its request for a far view must not pull the
//! others out of a view that works. `docs/PROTOCOL.md`, "View change", gives the rule.

mod harness;

use eve_agreement::{Message, NodeId};
use eve_exec::Token;
use eve_types::{Digest, View};
use harness::{Net, config, lose_if, lose_nothing, put, replica, verifier};

/// Writes through client 0 for `ms` milliseconds, a write every 10 ms or when the last one
/// completes, each given at most `within` milliseconds. Returns how many completed and how
/// many did not in time.
fn write_for(net: &mut Net, ms: u64, within: u64, tag: &str) -> (u32, u32) {
    let end = net.now.plus_ms(ms);
    let (mut done, mut late) = (0, 0);
    let mut i = 0;
    while net.now < end {
        if net.idle(0) {
            net.submit(0, put("k", &format!("{tag}{i}")));
            i += 1;
        }
        if net.run_until(within, |n| n.idle(0)) {
            done += 1;
        } else {
            late += 1;
        }
        net.advance_ms(10);
    }
    (done, late)
}

/// Verifier `cut` loses every message to and from the other verifiers (replicas and clients
/// still reach it).
fn cut_off_from_its_peers(cut: u32) -> harness::Filter {
    let peers = |n: NodeId| matches!(n, NodeId::Verifier(_));
    lose_if(move |from, to, _| {
        peers(from) && peers(to) && (from == verifier(cut)) != (to == verifier(cut))
    })
}

fn views(net: &Net) -> Vec<View> {
    net.verifiers.iter().map(|v| v.view()).collect()
}

/// Replica 0 and verifier 0 (the view-0 primary and leader, one process) are cut off from the
/// other nodes for 10 s: the others change view and go on. After the heal, every write
/// completes within a second, no verifier leaves the view the others entered, and the cut-off
/// verifier joins it and catches up.
/// With `client_reaches_it`, the client still reaches the cut-off primary, which goes on
/// ordering its requests while its verifier waits in vain for a token quorum and gives up on
/// the view; without, the cut-off verifier hears nothing, stays in view 0 without giving up,
/// and after the heal must learn of the others' view from their votes.
fn cut_off_leader_rejoins(u: u32, r: u32, client_reaches_it: bool) {
    let mut net = Net::new(config(u, r), 1);
    let (done, late) = write_for(&mut net, 500, 1_000, "a");
    assert!(
        done > 0 && late == 0,
        "a healthy cluster answers ({done}, {late})"
    );

    let cut = |n: NodeId| n == replica(0) || n == verifier(0);
    let client = |n: NodeId| matches!(n, NodeId::Client(_));
    net.set_filter(lose_if(move |from, to, _| {
        cut(from) != cut(to) && (!client_reaches_it || (!client(from) && !client(to)))
    }));
    write_for(&mut net, 10_000, 10_000, "b");
    let before = views(&net);
    assert!(
        before[1] > View(0) && before[1..].iter().all(|v| *v == before[1]),
        "the others changed view while it was cut off: {before:?}\n{}",
        net.describe()
    );
    assert_eq!(
        net.verifiers[0].is_changing_view(),
        client_reaches_it,
        "the cut-off verifier gave up on its view only if it had batches: {}",
        net.verifiers[0].describe()
    );

    net.set_filter(lose_nothing());
    healed_without_a_view_change(&mut net, &before, 0);
}

/// After a heal: writes for 3 s, each completing within a second; no verifier but
/// `cut_off` changed view since `before`, and every verifier ends in the others' view, not
/// changing, on the same committed batch.
fn healed_without_a_view_change(net: &mut Net, before: &[View], cut_off: usize) {
    let (done, late) = write_for(net, 3_000, 1_000, "c");
    assert_eq!(
        late, 0,
        "every write after the heal completes within a second ({done} did)"
    );
    let after = views(net);
    for (i, (was, is)) in before.iter().zip(&after).enumerate() {
        if i != cut_off {
            assert_eq!(
                was,
                is,
                "the rejoining node pulled the others out of their view\n{}",
                net.describe()
            );
        }
    }
    let live = after[(cut_off + 1) % after.len()];
    assert_eq!(
        after[cut_off], live,
        "the rejoining verifier joins their view"
    );
    let settled = net.run_until(1_000, |n| {
        n.verifiers
            .iter()
            .all(|v| v.committed() == n.verifiers[0].committed() && !v.is_changing_view())
    });
    assert!(
        settled,
        "every verifier back in the view and caught up\n{}",
        net.describe()
    );
}

#[test]
fn a_cut_off_leader_rejoins_without_a_view_change_with_u1_r0() {
    cut_off_leader_rejoins(1, 0, true);
}

#[test]
fn a_cut_off_leader_rejoins_without_a_view_change_with_u2_r0() {
    cut_off_leader_rejoins(2, 0, true);
}

#[test]
fn a_silent_cut_off_leader_learns_the_others_view_from_their_votes() {
    cut_off_leader_rejoins(1, 0, false);
}

/// Verifier `cut` loses every message to and from the other verifiers for 10 s: the
/// replicas' tokens still reach it, but no commit vote does, so it gives up on view 0 and asks
/// for ever higher views alone while the others commit in view 0. After the heal the others
/// stay in view 0 and it goes back to it.
fn a_verifier_cut_off_from_its_peers_goes_back(cut: u32) {
    let mut net = Net::new(config(1, 0), 1);
    write_for(&mut net, 500, 1_000, "a");
    net.set_filter(cut_off_from_its_peers(cut));
    let (_, late) = write_for(&mut net, 10_000, 1_000, "b");
    assert_eq!(late, 0, "the other two verifiers go on committing");
    let before = views(&net);
    assert_eq!(before, [View(0); 3], "nobody entered another view");
    let cut = cut as usize;
    assert!(
        net.verifiers[cut].is_changing_view(),
        "the cut-off verifier gave up on view 0: {}",
        net.verifiers[cut].describe()
    );
    net.set_filter(lose_nothing());
    healed_without_a_view_change(&mut net, &before, cut);
    assert_eq!(net.verifiers[cut].counters().view_changes_abandoned, 1);
}

#[test]
fn a_verifier_cut_off_from_its_peers_goes_back_to_their_view() {
    a_verifier_cut_off_from_its_peers_goes_back(2);
}

/// The same with the view's own leader cut off: it cannot be told by itself, the others tell
/// it.
#[test]
fn the_views_leader_cut_off_from_its_peers_goes_back_to_the_view() {
    a_verifier_cut_off_from_its_peers_goes_back(0);
}

/// Replica 2 (a backup) is cut off from every node but the client for 10 s, and the client's
/// requests to the primary are lost meanwhile: the client repeats each to every replica, the
/// other backup relays it to the primary, and replica 2's relays are lost, so it suspects the
/// primary (in vain, cut off). Right after the heal its last relays are overdue and it
/// suspects again, now heard: its suspicion must not pull the verifiers out of a view that
/// makes progress (with `r = 0` one suspicion suffices otherwise).
#[test]
fn a_replica_cut_off_does_not_pull_a_working_view_into_a_view_change() {
    let mut net = Net::new(config(1, 0), 1);
    write_for(&mut net, 500, 1_000, "a");
    let client = |n: NodeId| matches!(n, NodeId::Client(_));
    net.set_filter(lose_if(move |from, to, _| {
        let cut = (from == replica(2)) != (to == replica(2)) && !client(from) && !client(to);
        cut || (client(from) && to == replica(0))
    }));
    let (done, late) = write_for(&mut net, 10_000, 1_000, "b");
    assert!(done > 0 && late == 0, "the others go on ({done}, {late})");
    assert!(
        net.replicas[2].logic.counters().suspicions > 0,
        "the cut-off replica suspected the primary"
    );
    let before = views(&net);
    assert_eq!(before, [View(0); 3]);
    net.set_filter(lose_nothing());
    healed_without_a_view_change(&mut net, &before, 2);
}

/// After going back to its view, a verifier's own earlier request for a far view must not
/// count when it joins another's: a peer's request for the next view makes it ask for the
/// next view, not for the far one it had asked for while cut off.
#[test]
fn a_verifier_back_in_its_view_does_not_follow_its_own_old_request() {
    let mut net = Net::new(config(1, 0), 1);
    write_for(&mut net, 500, 1_000, "a");
    net.set_filter(cut_off_from_its_peers(2));
    write_for(&mut net, 10_000, 1_000, "b");
    net.set_filter(lose_nothing());
    healed_without_a_view_change(&mut net, &[View(0); 3], 2);
    let back = &net.verifiers[2];
    assert!(
        back.counters().view_changes_abandoned > 0,
        "it had asked for another view and went back: {}",
        back.describe()
    );

    let request = Message::ViewChange {
        new_view: View(1),
        view: View(0),
        committed: (back.committed(), Token(Digest::ZERO)),
        locked: Vec::new(),
        proof: None,
    };
    let now = net.now;
    net.verifiers[2].handle_message(now, verifier(1), request);
    let state = net.verifiers[2].describe();
    assert!(
        state.contains("changing Some((V1, 0))"),
        "it joins the peer's request for view 1: {state}"
    );
}

/// Verifier 2 loses every message to and from every node for 10 s (its process isolated): it
/// has nothing to time out, so it stays in its view without giving up, while the others
/// commit far more batches than a verifier keeps slots for. After the heal every token and
/// vote it hears lies beyond its window and makes no slot, so no timer of its own would ever
/// run out: it must notice that it was left behind and ask its peers.
fn an_isolated_verifier_catches_up(u: u32, r: u32) {
    let mut net = Net::new(config(u, r), 1);
    write_for(&mut net, 500, 1_000, "a");
    let isolated = verifier(2);
    net.set_filter(lose_if(move |from, to, _| {
        (from == isolated) != (to == isolated)
    }));
    let (_, late) = write_for(&mut net, 10_000, 1_000, "b");
    assert_eq!(late, 0, "the others go on committing");
    let before = views(&net);
    let gap = net.verifiers[0].committed().0 - net.verifiers[2].committed().0;
    assert!(
        gap > 2 * eve_agreement::limits::SEQ_WINDOW,
        "the others went far beyond its window ({gap} batches)"
    );
    assert!(
        !net.verifiers[2].is_changing_view(),
        "with nothing to time out it did not give up: {}",
        net.verifiers[2].describe()
    );
    net.set_filter(lose_nothing());
    healed_without_a_view_change(&mut net, &before, 2);
    assert!(
        net.verifiers[2].counters().left_a_window_behind > 0,
        "it noticed it was left a window behind: {}",
        net.verifiers[2].describe()
    );
}

#[test]
fn an_isolated_verifier_left_a_window_behind_catches_up_with_r0() {
    an_isolated_verifier_catches_up(1, 0);
}

#[test]
fn an_isolated_verifier_left_a_window_behind_catches_up_with_r1() {
    an_isolated_verifier_catches_up(1, 1);
}

/// One node's word is not enough to make a verifier ask its peers with `r = 1` (a lying
/// replica could keep it busy); `r + 1` nodes' is, and only once per half a commit timeout.
#[test]
fn being_left_a_window_behind_takes_r_plus_1_nodes_and_asks_once_per_half_timeout() {
    let mut net = Net::new(config(1, 1), 1);
    let far = eve_types::BatchSeq(10 * eve_agreement::limits::SEQ_WINDOW);
    let verify = |seq| Message::Verify {
        view: View(0),
        seq,
        token: Token(Digest::ZERO),
        prev: Token(Digest::ZERO),
    };
    let asked = |net: &Net| net.verifiers[2].counters().left_a_window_behind;
    let now = net.now;
    net.verifiers[2].handle_message(now, replica(0), verify(far));
    net.verifiers[2].handle_message(now, replica(0), verify(far.next()));
    assert_eq!(asked(&net), 0, "one replica's word is not enough");
    net.verifiers[2].handle_message(now, replica(1), verify(far));
    assert_eq!(asked(&net), 1, "two nodes' word is");
    net.verifiers[2].handle_message(now, replica(0), verify(far));
    net.verifiers[2].handle_message(now, replica(1), verify(far));
    assert_eq!(asked(&net), 1, "not again at once");
    let later = now.plus_ms(50);
    net.verifiers[2].handle_message(later, replica(0), verify(far));
    net.verifiers[2].handle_message(later, replica(1), verify(far));
    assert_eq!(asked(&net), 2, "again half a timeout later");
}

/// Replica 2 crashes and stays down while the others commit two windows of batches, then
/// restarts empty while the load goes on. It hears `Verified` for batches far beyond its
/// window every few milliseconds; each must not push its progress timer out again (it did: a
/// `Verified` that committed nothing re-armed the timer, so under steady load the timer never
/// ran out and the replica never started the state transfer that catches it up, chaos seed 104
/// of `--mode 1,1`). It must catch up and execute again while the load goes on.
fn a_restarted_replica_catches_up_under_load(r: u32) {
    let mut net = Net::new(config(1, r), 1);
    write_for(&mut net, 500, 1_000, "a");
    net.crash_replica(2);
    write_for(&mut net, 5_000, 1_000, "b");
    let behind = net.replicas[0].logic.committed();
    assert!(
        behind.0 > 2 * eve_agreement::limits::SEQ_WINDOW,
        "the others went two windows on ({behind:?})"
    );
    net.restart_replica(
        2,
        eve_agreement::Replica::restart(eve_types::ReplicaId(2), config(1, r), 7),
    );
    write_for(&mut net, 3_000, 1_000, "c");
    let restarted = &net.replicas[2].logic;
    assert!(
        restarted.counters().state_transfers_completed > 0 && restarted.committed() > behind,
        "it caught up by state transfer while the load went on: {}\n{:?}",
        restarted.describe(),
        restarted.counters()
    );
    let executed = restarted.counters().batches_executed;
    write_for(&mut net, 1_000, 1_000, "d");
    assert!(
        net.replicas[2].logic.counters().batches_executed > executed,
        "and executes the primary's batches again: {}",
        net.replicas[2].logic.describe()
    );
}

#[test]
fn a_restarted_replica_catches_up_under_load_with_r0() {
    a_restarted_replica_catches_up_under_load(0);
}

#[test]
fn a_restarted_replica_catches_up_under_load_with_r1() {
    a_restarted_replica_catches_up_under_load(1);
}
