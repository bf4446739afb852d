//! The protocol's rules, one event at a time, asserting the exact outputs with a reason.
//! Configuration: u = 1, r = 0 (3 execution replicas, 3 verifiers, token quorum 2, verifier
//! quorum 2, one `Verified` and one reply suffice).

use bytes::Bytes;
use eve_agreement::{
    Batch, ExecCommand, ExecEvent, Lock, Message, NodeId, Output, RecoveryState, Replica, Roots,
    StateReply, Time, Verifier,
};
use eve_exec::Token;
use eve_state::Delta;
use eve_types::{
    BatchSeq, ClientId, ClusterConfig, Digest, NonDet, ReplicaId, ReplicationMode, Reply, Request,
    RequestNo, ValidConfig, VerifierId, View,
};

fn config() -> ValidConfig {
    ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 })
        .validate()
        .unwrap()
}

const R0: ReplicaId = ReplicaId(0);
const R1: ReplicaId = ReplicaId(1);
const R2: ReplicaId = ReplicaId(2);
const C: ClientId = ClientId(9);
const T0: Time = Time(1_000);

fn replica(id: ReplicaId) -> NodeId {
    NodeId::Replica(id)
}

fn verifier(id: u32) -> NodeId {
    NodeId::Verifier(VerifierId(id))
}

fn request(no: u64) -> Request {
    Request::new(C, RequestNo(no), &b"op"[..]).unwrap()
}

fn batch(seq: u64) -> Batch {
    Batch {
        view: View(0),
        seq: BatchSeq(seq),
        requests: vec![request(seq)],
        nondet: NonDet {
            time_ms: 1,
            seed: 2,
        },
        sequential: false,
    }
}

fn roots(prev: u8, new: u8) -> Roots {
    Roots {
        prev_root: Digest([prev; 32]),
        new_root: Digest([new; 32]),
    }
}

fn reply(seq: u64, body: &'static str) -> Reply {
    Reply {
        client: C,
        request_no: RequestNo(seq),
        seq: BatchSeq(seq),
        body: Bytes::from_static(body.as_bytes()),
    }
}

/// A delta with no entries from `from` to `to`.
fn empty_delta(from: u64, to: u64) -> Delta {
    Delta {
        from: BatchSeq(from),
        to: BatchSeq(to),
        entries: vec![],
    }
}

/// A peer's state reply: `roots` of the target and an empty delta from `from` to `to`.
fn delta_reply(roots: Roots, from: u64, to: u64) -> Message {
    Message::StateReply(Box::new(StateReply::Delta {
        roots,
        delta: empty_delta(from, to),
    }))
}

fn drain_replica(r: &mut Replica) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// Whether `output` asks a peer what committed after the verifier's last batch.
fn asks_what_it_missed(output: &Output) -> bool {
    matches!(
        output,
        Output::Send {
            msg: Message::Lagging { .. },
            ..
        }
    )
}

fn drain_verifier(v: &mut Verifier) -> Vec<Output> {
    std::iter::from_fn(|| v.poll_output()).collect()
}

/// Verifiers' word that `token` is agreed for batch 1 of view 0.
fn verified_1(token: Token) -> Message {
    Message::Verified {
        view: View(0),
        seq: BatchSeq(1),
        token,
        sequential: false,
    }
}

/// The reply to the client's request 1, as a replica sends it.
fn reply_done() -> Output {
    send(
        NodeId::Client(C),
        Message::Reply {
            view: View(0),
            reply: reply(1, "done"),
        },
    )
}

fn send(to: NodeId, msg: Message) -> Output {
    Output::Send { to, msg }
}

fn to_verifiers(msg: Message) -> Vec<Output> {
    (0..3).map(|v| send(verifier(v), msg.clone())).collect()
}

/// A backup that received batch 1 from the primary, executed it with `roots`, and sent its token.
/// A backup that executed batch 1 and sent its token; it replies at commit (see
/// `reply_from_every_replica`), as the tests of what a committing replica does expect.
fn backup_that_executed(roots: Roots) -> (Replica, Token) {
    let mut config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 });
    config.reply_from_every_replica = true;
    backup_that_executed_with(config.validate().unwrap(), roots)
}

fn backup_that_executed_with(config: ValidConfig, roots: Roots) -> (Replica, Token) {
    let mut r1 = Replica::new(R1, config);
    drain_replica(&mut r1); // nothing yet
    r1.handle_message(T0, replica(R0), Message::ExecuteBatch(batch(1)));
    assert_eq!(
        drain_replica(&mut r1),
        vec![Output::Exec(ExecCommand::Execute {
            epoch: 0,
            batch: batch(1)
        })],
        "a batch from the primary that follows the last one is executed at once"
    );
    let token = roots.token(BatchSeq(1));
    r1.handle_exec_event(
        T0,
        ExecEvent::Executed {
            epoch: 0,
            seq: BatchSeq(1),
            roots,
            token,
            replies: vec![reply(1, "done")],
        },
    );
    assert_eq!(
        drain_replica(&mut r1),
        to_verifiers(Message::Verify {
            view: View(0),
            seq: BatchSeq(1),
            token,
            prev: Token(Digest::ZERO),
        }),
        "an executed batch's token goes to every verifier, and no reply yet"
    );
    (r1, token)
}

#[test]
fn a_token_quorum_commits_at_the_verifier_and_is_announced() {
    let mut v0 = Verifier::new(VerifierId(0), config());
    let token = roots(0, 1).token(BatchSeq(1));
    let verify = Message::Verify {
        view: View(0),
        seq: BatchSeq(1),
        token,
        prev: Token(Digest::ZERO),
    };
    v0.handle_message(T0, replica(R0), verify.clone());
    assert_eq!(drain_verifier(&mut v0), vec![], "one token is not a quorum");
    v0.handle_message(T0, replica(R1), verify);
    let commit = Message::Commit {
        signature: None,
        view: View(0),
        seq: BatchSeq(1),
        token,
    };
    assert_eq!(
        drain_verifier(&mut v0),
        (0..3)
            .map(|v| send(verifier(v), commit.clone()))
            .collect::<Vec<_>>(),
        "max(u, r) + 1 = 2 matching tokens: with r = 0 the verifier commits in one round"
    );
    v0.handle_message(T0, verifier(0), commit.clone());
    assert_eq!(
        drain_verifier(&mut v0),
        vec![],
        "its own commit is one of the u + r + 1 = 2 needed"
    );
    v0.handle_message(T0, verifier(2), commit);
    let verified = verified_1(token);
    assert_eq!(
        drain_verifier(&mut v0),
        vec![
            send(replica(R0), verified.clone()),
            send(replica(R1), verified.clone()),
            send(replica(R2), verified),
        ],
        "a verifier quorum of commits: every execution replica is told"
    );
    assert_eq!(v0.committed(), BatchSeq(1));
}

#[test]
fn a_replica_commits_when_verifiers_agree_with_its_token_and_releases_the_reply() {
    let (mut r1, token) = backup_that_executed(roots(0, 1));
    r1.handle_message(T0, verifier(0), verified_1(token));
    assert_eq!(
        drain_replica(&mut r1),
        vec![reply_done()],
        "r + 1 = 1 Verified with this replica's token: the batch commits and its reply goes out"
    );
    assert_eq!(r1.committed(), BatchSeq(1));
    assert_eq!(r1.counters().batches_committed, 1);
}

#[test]
fn a_mismatching_replica_rolls_back_fetches_state_and_releases_no_reply() {
    let (mut r1, _mine) = backup_that_executed(roots(0, 1));
    let agreed_roots = roots(0, 7);
    let agreed = agreed_roots.token(BatchSeq(1));
    r1.handle_message(T0, verifier(0), verified_1(agreed));
    assert_eq!(
        drain_replica(&mut r1),
        vec![
            Output::Exec(ExecCommand::Rollback { to: BatchSeq(0) }),
            send(
                replica(R2),
                Message::StateRequest {
                    target: BatchSeq(1),
                    base: Some(BatchSeq(0))
                }
            ),
        ],
        "another token was agreed: roll back to the last committed version and ask a peer, \
         without replying"
    );
    assert_eq!(r1.counters().divergences, 1);
    assert!(r1.is_transferring());

    // The peer answers with roots that do not hash to the agreed token: refused, next peer.
    let forged = StateReply::Delta {
        roots: roots(0, 8),
        delta: Delta {
            from: BatchSeq(0),
            to: BatchSeq(1),
            entries: vec![],
        },
    };
    r1.handle_message(T0, replica(R2), Message::StateReply(Box::new(forged)));
    assert_eq!(
        drain_replica(&mut r1),
        vec![send(
            replica(R0),
            Message::StateRequest {
                target: BatchSeq(1),
                base: Some(BatchSeq(0))
            }
        )],
        "roots that do not match the agreed token are refused and another peer is asked"
    );

    // The next peer's roots match: the delta goes to the execution side to be checked.
    let delta = Delta {
        from: BatchSeq(0),
        to: BatchSeq(1),
        entries: vec![],
    };
    let honest = StateReply::Delta {
        roots: agreed_roots,
        delta: delta.clone(),
    };
    r1.handle_message(T0, replica(R0), Message::StateReply(Box::new(honest)));
    let epoch = match drain_replica(&mut r1).as_slice() {
        [
            Output::Exec(ExecCommand::ImportDelta {
                epoch,
                roots,
                delta: d,
            }),
        ] => {
            assert_eq!((*roots, d), (agreed_roots, &delta));
            *epoch
        }
        other => panic!("expected the delta to be imported, got {other:?}"),
    };
    assert_eq!(
        r1.committed(),
        BatchSeq(0),
        "nothing commits before the import succeeds"
    );
    r1.handle_exec_event(
        T0,
        ExecEvent::StateApplied {
            epoch,
            target: BatchSeq(1),
            roots: agreed_roots,
            result: Ok(()),
        },
    );
    assert_eq!(r1.committed(), BatchSeq(1), "the agreed state arrived");
    assert!(
        drain_replica(&mut r1).iter().all(|o| !matches!(
            o,
            Output::Send {
                msg: Message::Reply { .. },
                ..
            }
        )),
        "a replica never replies for a batch it did not execute with the agreed token"
    );
}

#[test]
fn an_import_that_succeeds_after_the_target_moved_on_is_kept() {
    // Finding 6: the transfer of batch 1 is under way when its round times out and a newer
    // agreed batch (2) becomes the target; the import of 1 then succeeds. The store sealed
    // version 1, so the replica must take it as committed and go on from there.
    let (mut r1, _mine) = backup_that_executed(roots(0, 1));
    let agreed_roots = roots(0, 7);
    r1.handle_message(T0, verifier(0), verified_1(agreed_roots.token(BatchSeq(1))));
    r1.handle_message(T0, replica(R2), delta_reply(agreed_roots, 0, 1));
    let epoch = match drain_replica(&mut r1).as_slice() {
        [.., Output::Exec(ExecCommand::ImportDelta { epoch, .. })] => *epoch,
        other => panic!("expected the delta to be imported, got {other:?}"),
    };
    let later = Message::Verified {
        view: View(0),
        seq: BatchSeq(2),
        token: roots(7, 9).token(BatchSeq(2)),
        sequential: false,
    };
    r1.handle_message(T0, verifier(0), later);
    // The transfer's round times out (the progress timer may run out before it: it leaves a
    // transfer under way alone) and the transfer moves on to batch 2.
    let mut timeout = T0;
    for _ in 0..4 {
        if r1.describe().contains("transfer Some((S2,") {
            break;
        }
        timeout = r1.next_timeout().expect("the transfer has a deadline");
        r1.handle_timeout(timeout);
    }
    assert!(
        r1.describe().contains("transfer Some((S2,")
            && r1.counters().state_transfers_completed == 0,
        "the target moved on to batch 2 while the import of 1 ran: {}",
        r1.describe()
    );
    drain_replica(&mut r1);
    r1.handle_exec_event(
        timeout,
        ExecEvent::StateApplied {
            epoch,
            target: BatchSeq(1),
            roots: agreed_roots,
            result: Ok(()),
        },
    );
    assert_eq!(
        r1.committed(),
        BatchSeq(1),
        "the state the store sealed is agreed: it counts"
    );
    assert!(r1.is_transferring(), "and the transfer goes on to batch 2");
    assert!(
        drain_replica(&mut r1).iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::StateRequest {
                    target: BatchSeq(2),
                    base: Some(BatchSeq(1))
                },
                ..
            }
        )),
        "it asks for the rest from batch 1"
    );
}

#[test]
fn a_transfer_of_the_next_batch_must_start_from_the_committed_root() {
    // Finding 4: committed states form one chain. R1 committed batch 1 with root 1; the agreed
    // token of batch 2 differs from its own, and a peer offers roots whose token matches but
    // that start from root 5: importing them would commit a state that does not follow batch 1.
    let (mut r1, token) = backup_that_executed(roots(0, 1));
    r1.handle_message(T0, verifier(0), verified_1(token));
    drain_replica(&mut r1);
    r1.handle_message(T0, replica(R0), Message::ExecuteBatch(batch(2)));
    drain_replica(&mut r1);
    let own = roots(1, 2);
    r1.handle_exec_event(
        T0,
        ExecEvent::Executed {
            epoch: 0,
            seq: BatchSeq(2),
            roots: own,
            token: own.token(BatchSeq(2)),
            replies: vec![reply(2, "done")],
        },
    );
    drain_replica(&mut r1);
    let broken = roots(5, 9);
    let agreed = Message::Verified {
        view: View(0),
        seq: BatchSeq(2),
        token: broken.token(BatchSeq(2)),
        sequential: false,
    };
    r1.handle_message(T0, verifier(0), agreed);
    let asked = drain_replica(&mut r1);
    assert!(
        asked.contains(&send(
            replica(R2),
            Message::StateRequest {
                target: BatchSeq(2),
                base: Some(BatchSeq(1))
            }
        )),
        "a mismatch: the next batch is fetched from a peer: {asked:?}"
    );
    r1.handle_message(T0, replica(R2), delta_reply(broken, 1, 2));
    let outputs = drain_replica(&mut r1);
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::Exec(ExecCommand::ImportDelta { .. }))),
        "roots that do not start from the committed root are not imported: {outputs:?}"
    );
    assert_eq!(r1.counters().drops.get("state-breaks-the-chain"), 1);
    assert_eq!(r1.committed(), BatchSeq(1));
}

#[test]
fn no_possible_quorum_changes_view_and_the_new_primary_re_executes_sequentially() {
    // Three replicas, three different tokens: no token can reach 2.
    let mut v1 = Verifier::new(VerifierId(1), config());
    for (r, byte) in [(R0, 1u8), (R1, 2), (R2, 3)] {
        let token = roots(0, byte).token(BatchSeq(1));
        v1.handle_message(
            T0,
            replica(r),
            Message::Verify {
                view: View(0),
                seq: BatchSeq(1),
                token,
                prev: Token(Digest::ZERO),
            },
        );
    }
    let genesis = Token(Digest::ZERO);
    let view_change = Message::ViewChange {
        proof: None,
        new_view: View(1),
        view: View(0),
        committed: (BatchSeq(0), genesis),
        locked: vec![],
    };
    assert_eq!(
        drain_verifier(&mut v1),
        (0..3)
            .map(|v| send(verifier(v), view_change.clone()))
            .collect::<Vec<_>>(),
        "no token can reach the quorum: ask for view 1"
    );
    assert_eq!(v1.counters().no_quorum, 1);
    // Verifier 1 leads view 1 (1 mod 3): a quorum of two view changes lets it announce.
    v1.handle_message(T0, verifier(1), view_change.clone());
    v1.handle_message(T0, verifier(0), view_change);
    let new_view = Message::NewView {
        proof: Vec::new(),
        view: View(1),
        start: BatchSeq(0),
        token: genesis,
    };
    assert_eq!(
        drain_verifier(&mut v1),
        (0..3)
            .map(|v| send(verifier(v), new_view.clone()))
            .collect::<Vec<_>>(),
        "the leader announces the view, starting after the last committed batch"
    );
    v1.handle_message(T0, verifier(1), new_view);
    // The start is committed again in view 1 before any replica hears of the view: replicas
    // roll back only once a verifier quorum entered it (seed 11560).
    let commit_start = Message::Commit {
        view: View(1),
        seq: BatchSeq(0),
        token: genesis,
        signature: None,
    };
    assert_eq!(
        drain_verifier(&mut v1),
        (0..3)
            .map(|v| send(verifier(v), commit_start.clone()))
            .collect::<Vec<_>>(),
        "entering the view, the verifier commits its start in it and tells no replica yet"
    );
    v1.handle_message(T0, verifier(1), commit_start.clone());
    assert_eq!(
        drain_verifier(&mut v1),
        vec![],
        "one commit is not a quorum: replicas still hear nothing"
    );
    v1.handle_message(T0, verifier(0), commit_start);
    let announce = Message::Verified {
        view: View(1),
        seq: BatchSeq(0),
        token: genesis,
        sequential: true,
    };
    assert_eq!(
        drain_verifier(&mut v1),
        vec![
            send(replica(R0), announce.clone()),
            send(replica(R1), announce.clone()),
            send(replica(R2), announce.clone()),
        ],
        "execution replicas learn the new view and where it starts"
    );

    // Replica 1 executed batch 1 in view 0; it is the primary of view 1.
    let (mut r1, _) = backup_that_executed(roots(0, 2));
    r1.handle_message(T0, verifier(1), announce);
    let reissued = Batch {
        view: View(1),
        seq: BatchSeq(1),
        requests: vec![request(1)],
        nondet: match drain_replica(&mut r1).as_slice() {
            [
                Output::Exec(ExecCommand::Rollback { to: BatchSeq(0) }),
                Output::Send {
                    to: first,
                    msg: Message::ExecuteBatch(b0),
                },
                Output::Send {
                    to: second,
                    msg: Message::ExecuteBatch(b2),
                },
                Output::Exec(ExecCommand::Execute { batch: mine, .. }),
            ] => {
                assert_eq!((*first, *second), (replica(R0), replica(R2)));
                assert_eq!(b0, b2);
                assert_eq!(b0, mine);
                assert!(
                    mine.sequential,
                    "the first batch of the new view executes sequentially"
                );
                assert_eq!(mine.view, View(1));
                mine.nondet
            }
            other => panic!("expected rollback, re-issue and sequential execution, got {other:?}"),
        },
        sequential: true,
    };
    assert_eq!(
        reissued.requests,
        vec![request(1)],
        "the discarded batch's request is re-issued"
    );
    assert!(r1.is_primary());
    assert_eq!(r1.counters().view_changes, 1);
}

#[test]
fn a_duplicate_of_a_committed_request_is_answered_from_the_reply_table() {
    let (mut r1, token) = backup_that_executed(roots(0, 1));
    r1.handle_message(T0, verifier(0), verified_1(token));
    drain_replica(&mut r1);
    r1.handle_message(T0, NodeId::Client(C), Message::Request(request(1)));
    assert_eq!(
        drain_replica(&mut r1),
        vec![reply_done()],
        "the client retransmitted a committed request: the reply is resent, nothing executes"
    );
    r1.handle_message(
        T0,
        NodeId::Client(C),
        Message::Request(Request::new(C, RequestNo(1), &b"op"[..]).unwrap()),
    );
    assert_eq!(r1.counters().replies_sent, 3);
}

#[test]
fn a_primary_orders_a_full_batch_at_once() {
    let mut config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 });
    config.batch_requests_max = 1;
    let mut r0 = Replica::new(R0, config.validate().unwrap());
    r0.handle_message(T0, NodeId::Client(C), Message::Request(request(1)));
    let outputs = drain_replica(&mut r0);
    let expected_batch = Batch {
        view: View(0),
        seq: BatchSeq(1),
        requests: vec![request(1)],
        nondet: match &outputs[0] {
            Output::Send {
                msg: Message::ExecuteBatch(b),
                ..
            } => b.nondet,
            other => panic!("expected a batch, got {other:?}"),
        },
        sequential: false,
    };
    assert_eq!(
        expected_batch.nondet.time_ms,
        T0.as_ms(),
        "the batch carries the primary's time"
    );
    assert_eq!(
        outputs,
        vec![
            send(replica(R1), Message::ExecuteBatch(expected_batch.clone())),
            send(replica(R2), Message::ExecuteBatch(expected_batch.clone())),
            Output::Exec(ExecCommand::Execute {
                epoch: 0,
                batch: expected_batch
            }),
        ],
        "a full batch goes to every other replica and executes locally"
    );
}

#[test]
fn messages_from_strangers_stale_views_and_far_batches_are_dropped_and_counted() {
    let mut r1 = Replica::new(R1, config());
    r1.handle_message(T0, replica(ReplicaId(7)), Message::ExecuteBatch(batch(1)));
    r1.handle_message(
        T0,
        verifier(9),
        Message::Verified {
            view: View(0),
            seq: BatchSeq(1),
            token: Token(Digest::ZERO),
            sequential: false,
        },
    );
    assert_eq!(r1.counters().drops.get("unknown-sender"), 2);
    let mut stale = batch(1);
    stale.view = View(5);
    r1.handle_message(T0, replica(R0), Message::ExecuteBatch(stale));
    assert_eq!(r1.counters().drops.get("batch-of-another-view"), 1);
    r1.handle_message(T0, replica(R0), Message::ExecuteBatch(batch(100_000)));
    assert_eq!(r1.counters().drops.get("batch-beyond-window"), 1);
    r1.handle_message(T0, replica(R2), Message::ExecuteBatch(batch(1)));
    assert_eq!(r1.counters().drops.get("batch-not-from-primary"), 1);
    let outputs = drain_replica(&mut r1);
    assert!(
        outputs
            .iter()
            .all(|o| !matches!(o, Output::Exec(ExecCommand::Execute { .. }))),
        "nothing dropped was executed: {outputs:?}"
    );

    let mut v0 = Verifier::new(VerifierId(0), config());
    v0.handle_message(
        T0,
        replica(ReplicaId(3)),
        Message::Verify {
            view: View(0),
            seq: BatchSeq(1),
            token: Token(Digest::ZERO),
            prev: Token(Digest::ZERO),
        },
    );
    v0.handle_message(
        T0,
        replica(R0),
        Message::Verify {
            view: View(4),
            seq: BatchSeq(1),
            token: Token(Digest::ZERO),
            prev: Token(Digest::ZERO),
        },
    );
    v0.handle_message(
        T0,
        replica(R0),
        Message::Verify {
            view: View(0),
            seq: BatchSeq(1_000_000),
            token: Token(Digest::ZERO),
            prev: Token(Digest::ZERO),
        },
    );
    assert_eq!(v0.counters().drops.get("unknown-sender-or-message"), 1);
    assert_eq!(v0.counters().drops.get("verify-of-another-view"), 1);
    assert_eq!(v0.counters().drops.get("beyond-window"), 1);
    // With r = 0 one replica's token far beyond its window shows the verifier was left
    // behind: it only asks its peers what it missed.
    let outputs = drain_verifier(&mut v0);
    assert!(
        outputs.iter().all(asks_what_it_missed),
        "nothing but asking its peers: {outputs:?}"
    );
}

fn view_change(new_view: u64, view: u64, committed: u64, locked: Vec<Lock>) -> Message {
    Message::ViewChange {
        proof: None,
        new_view: View(new_view),
        view: View(view),
        committed: (BatchSeq(committed), Token(Digest([committed as u8; 32]))),
        locked,
    }
}

#[test]
fn a_new_view_ignores_locks_of_views_older_than_the_latest_entered() {
    // Seed 2861 (`--mode 1,1`): V1 entered view 2, which started after batch 49; V2 was left
    // behind in view 0 holding a lock on batch 50 of view 0, which view 2 superseded (batch 50
    // was ordered again there). The leader of view 3 must not start after that old lock: no
    // replica holds its state any more.
    let mut v0 = Verifier::new(VerifierId(0), config());
    let old_lock = Lock {
        view: View(0),
        seq: BatchSeq(50),
        token: Token(Digest([50; 32])),
    };
    v0.handle_message(T0, verifier(1), view_change(3, 2, 49, vec![]));
    v0.handle_message(T0, verifier(2), view_change(3, 0, 48, vec![old_lock]));
    let announced: Vec<Output> = drain_verifier(&mut v0)
        .into_iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    msg: Message::NewView { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(
        announced.first(),
        Some(&send(
            verifier(0),
            Message::NewView {
                proof: Vec::new(),
                view: View(3),
                start: BatchSeq(49),
                token: Token(Digest([49; 32])),
            }
        )),
        "the view starts after the latest entered view's start, not after a superseded lock"
    );
}

#[test]
fn a_view_opens_only_on_commits_of_its_start_in_the_view_and_a_lagging_peer_gets_them_again() {
    // View 1 starts after a lock on batch 1 of view 0. A peer's word that batch 1 committed
    // says nothing about view 1 (it may have committed in view 0): only a commit quorum of
    // view 1 for the start tells replicas to roll back to it.
    let mut v0 = Verifier::new(VerifierId(0), config());
    let token = roots(0, 1).token(BatchSeq(1));
    v0.handle_message(
        T0,
        verifier(1),
        Message::NewView {
            proof: Vec::new(),
            view: View(1),
            start: BatchSeq(1),
            token,
        },
    );
    let commit_start = Message::Commit {
        view: View(1),
        seq: BatchSeq(1),
        token,
        signature: None,
    };
    assert_eq!(drain_verifier(&mut v0), to_verifiers(commit_start.clone()));
    v0.handle_message(
        T0,
        verifier(2),
        Message::Verified {
            view: View(1),
            seq: BatchSeq(1),
            token,
            sequential: false,
        },
    );
    assert_eq!(
        drain_verifier(&mut v0),
        vec![],
        "a vouch does not open the view"
    );
    v0.handle_message(T0, verifier(0), commit_start.clone());
    v0.handle_message(T0, verifier(2), commit_start.clone());
    let announce = Message::Verified {
        view: View(1),
        seq: BatchSeq(1),
        token,
        sequential: true,
    };
    assert_eq!(
        drain_verifier(&mut v0),
        [R0, R1, R2]
            .map(|r| send(replica(r), announce.clone()))
            .to_vec(),
        "a commit quorum of view 1 opens it"
    );
    assert_eq!(
        v0.counters()
            .drops
            .get("vouch-for-the-start-of-an-opening-view"),
        1
    );
    // Verifier 1 missed those commits: asked, v0 repeats its vote for the start.
    v0.handle_message(
        T0,
        verifier(1),
        Message::Lagging {
            view: View(1),
            committed: BatchSeq(0),
        },
    );
    let answers = drain_verifier(&mut v0);
    assert!(
        answers.contains(&send(verifier(1), commit_start)),
        "the start's vote is repeated: {answers:?}"
    );
}

#[test]
fn a_recovered_verifier_casts_no_vote_in_a_view_it_may_have_voted_in() {
    // A verifier restarted in view 0: once two peers answered, it knows view 0 and may have
    // voted in it before; a token quorum there gets no `Commit` from it.
    let mut v1 = Verifier::restart(VerifierId(1), config(), 7);
    v1.handle_timeout(T0);
    assert_eq!(
        drain_verifier(&mut v1),
        vec![
            send(verifier(0), Message::Recover { nonce: 7 }),
            send(verifier(2), Message::Recover { nonce: 7 }),
        ],
        "a restarted verifier first asks its peers"
    );
    let state = |view| RecoveryState {
        claims: None,
        entered: View(view),
        entered_start: None,
        view: View(view),
        committed: (BatchSeq(0), Token(Digest::ZERO)),
        locked: vec![],
    };
    let stale = Message::RecoverReply {
        nonce: 6,
        state: Box::new(state(0)),
    };
    v1.handle_message(T0, verifier(0), stale);
    assert!(
        v1.is_recovering(),
        "an answer to another incarnation does not count"
    );
    for v in [0, 2] {
        let answer = Message::RecoverReply {
            nonce: 7,
            state: Box::new(state(0)),
        };
        v1.handle_message(T0, verifier(v), answer);
    }
    assert!(!v1.is_recovering(), "a quorum of peers answered");
    let token = roots(0, 1).token(BatchSeq(1));
    for r in [R0, R1] {
        v1.handle_message(
            T0,
            replica(r),
            Message::Verify {
                view: View(0),
                seq: BatchSeq(1),
                token,
                prev: Token(Digest::ZERO),
            },
        );
    }
    assert_eq!(
        drain_verifier(&mut v1),
        vec![],
        "a token quorum in a view it may have voted in before its restart: no vote"
    );
}

#[test]
fn a_view_learned_before_its_announcement_keeps_the_new_primarys_batches() {
    // Seed 83761 (u=1 r=1): a backup learns view 2 from the verifiers' ordinary word on batch 1
    // (they answer its repeated token in their current view), executes the new primary's
    // batch 2, and only then hears the announcement that view 2 starts after batch 1. Batch 2
    // belongs to view 2: dropping it left the backup with no copy of a batch the verifiers
    // then committed, held by no other correct replica.
    // The replica is replica 1; view 2 (primary replica 2) keeps it a backup.
    let (mut r1, token_1) = backup_that_executed(roots(0, 1));
    let r = &mut r1;
    let verified = |view: u64, seq: u64, token: Token, sequential: bool| Message::Verified {
        view: View(view),
        seq: BatchSeq(seq),
        token,
        sequential,
    };
    r.handle_message(T0, verifier(0), verified(2, 1, token_1, false));
    assert_eq!(
        drain_replica(r),
        vec![reply_done()],
        "the verifiers' word in view 2 commits batch 1 with this replica's token"
    );
    assert_eq!((r.view(), r.committed()), (View(2), BatchSeq(1)));

    let batch_2 = Batch {
        view: View(2),
        seq: BatchSeq(2),
        requests: vec![request(2)],
        nondet: NonDet {
            time_ms: 3,
            seed: 4,
        },
        sequential: true,
    };
    r.handle_message(T0, replica(R2), Message::ExecuteBatch(batch_2.clone()));
    let epoch = match drain_replica(r).as_slice() {
        [Output::Exec(ExecCommand::Execute { epoch, batch })] if *batch == batch_2 => *epoch,
        other => panic!("the new primary's batch is executed, got {other:?}"),
    };
    let roots_2 = roots(1, 2);
    let token_2 = roots_2.token(BatchSeq(2));
    r.handle_exec_event(
        T0,
        ExecEvent::Executed {
            epoch,
            seq: BatchSeq(2),
            roots: roots_2,
            token: token_2,
            replies: vec![reply(2, "two")],
        },
    );
    drain_replica(r);

    // The announcement: view 2 starts after batch 1, which this replica committed.
    r.handle_message(T0, verifier(0), verified(2, 1, token_1, true));
    let outputs = drain_replica(r);
    assert!(
        outputs
            .iter()
            .all(|o| !matches!(o, Output::Exec(ExecCommand::Rollback { .. }))),
        "nothing of view 2 is rolled back when its start arrives late, got {outputs:?}"
    );
    r.handle_message(T0, verifier(0), verified(2, 2, token_2, false));
    assert_eq!(
        drain_replica(r),
        vec![send(
            NodeId::Client(C),
            Message::Reply {
                view: View(2),
                reply: reply(2, "two"),
            }
        )],
        "batch 2 of view 2 commits with this replica's execution"
    );
    assert_eq!(r.committed(), BatchSeq(2));
}

#[test]
fn a_recovered_verifier_tells_replicas_where_the_view_it_recovered_into_starts() {
    // Seed 82597 (u=1 r=1): three verifiers restarted and recovered into view 9, which they
    // had entered before; asked where the cluster stands, only the fourth announced view 9,
    // one announcement short of the `r + 1` a replica needs, so the replicas that missed the
    // view change never learned it and kept forwarding requests to the old primary.
    let start = (BatchSeq(4), roots(3, 4).token(BatchSeq(4)));
    let mut v1 = Verifier::restart(VerifierId(1), config(), 7);
    v1.handle_timeout(T0);
    drain_verifier(&mut v1);
    for v in [0, 2] {
        let state = RecoveryState {
            claims: None,
            entered: View(2),
            entered_start: Some(start),
            view: View(2),
            committed: start,
            locked: vec![],
        };
        let answer = Message::RecoverReply {
            nonce: 7,
            state: Box::new(state),
        };
        v1.handle_message(T0, verifier(v), answer);
    }
    assert!(!v1.is_recovering(), "a quorum of peers answered");
    assert_eq!(v1.view_start(), Some((View(2), BatchSeq(4))));
    v1.handle_message(T0, replica(R0), Message::QueryCommitted);
    assert_eq!(
        drain_verifier(&mut v1),
        vec![
            send(
                replica(R0),
                Message::Verified {
                    view: View(2),
                    seq: start.0,
                    token: start.1,
                    sequential: true,
                }
            ),
            send(
                replica(R0),
                Message::Verified {
                    view: View(2),
                    seq: start.0,
                    token: start.1,
                    sequential: false,
                }
            ),
        ],
        "the view's start, then the last committed batch"
    );
}

/// A verifier's answer to a restarted replica's `Recover`: it is in (or moving to) `view`.
fn recover_reply(nonce: u64, view: u64) -> Message {
    Message::RecoverReply {
        nonce,
        state: Box::new(RecoveryState {
            claims: None,
            entered: View(view),
            entered_start: None,
            view: View(view),
            committed: (BatchSeq(0), Token(Digest::ZERO)),
            locked: vec![],
        }),
    }
}

#[test]
fn a_restarted_replica_leads_only_above_the_highest_view_a_verifier_quorum_reports() {
    // Missed mutants of `replica/recovery.rs` (the simulator's seeds did not catch them):
    // finishing recovery on the first answer, counting nothing, and a restarted primary of a
    // view it may have led never stepping aside.
    let mut r0 = Replica::restart(R0, config(), 9);
    r0.handle_timeout(T0);
    assert!(
        drain_replica(&mut r0).contains(&send(verifier(0), Message::Recover { nonce: 9 })),
        "a restarted replica asks every verifier"
    );
    r0.handle_message(T0, verifier(1), recover_reply(9, 0));
    assert!(
        r0.is_recovering(),
        "one answer is not a verifier quorum (u + r + 1 = 2): that verifier may be behind"
    );
    r0.handle_message(T0, verifier(2), recover_reply(9, 0));
    assert!(!r0.is_recovering(), "a quorum answered");
    assert_eq!(r0.counters().recoveries, 1);
    // R0 is the primary of view 0, which it may have led before its restart: it suspects
    // itself so that the verifiers move to a view it may lead.
    assert!(r0.is_primary());
    let outputs = drain_replica(&mut r0);
    assert!(
        outputs.contains(&send(verifier(0), Message::Suspect { view: View(0) })),
        "the restarted primary steps aside in a view it may have led: {outputs:?}"
    );
    assert_eq!(r0.counters().views_declined, 1);
    assert_eq!(r0.counters().suspicions, 1);

    // The floor is the highest view a quorum reported, not the first answer's.
    let mut r1 = Replica::restart(R1, config(), 4);
    r1.handle_message(T0, verifier(0), recover_reply(4, 0));
    r1.handle_message(T0, verifier(2), recover_reply(4, 4));
    assert!(!r1.is_recovering());
    // View 4's primary is replica 1 (4 mod 3): it may not lead view 4 either.
    r1.handle_message(
        T0,
        verifier(0),
        Message::Verified {
            view: View(4),
            seq: BatchSeq(0),
            token: Token(Digest::ZERO),
            sequential: true,
        },
    );
    drain_replica(&mut r1);
    assert_eq!((r1.view(), r1.is_primary()), (View(4), true));
    r1.handle_message(T0, replica(R0), Message::Request(request(1)));
    let outputs = drain_replica(&mut r1);
    assert!(
        !outputs.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::ExecuteBatch(_),
                ..
            }
        )),
        "no batch in a view at or below the floor: {outputs:?}"
    );
    // Above the floor it leads again: view 7's primary is replica 1 too.
    r1.handle_message(
        T0,
        verifier(0),
        Message::Verified {
            view: View(7),
            seq: BatchSeq(0),
            token: Token(Digest::ZERO),
            sequential: true,
        },
    );
    let outputs = drain_replica(&mut r1);
    assert!(
        outputs.iter().any(
            |o| matches!(o, Output::Send { msg: Message::ExecuteBatch(b), .. } if b.view == View(7))
        ),
        "a view above the floor is led, its waiting request ordered: {outputs:?}"
    );
}

#[test]
fn a_flooding_client_cannot_fill_the_primarys_queue() {
    // The primary (R0 in view 0) cuts the first request into a batch at once (its pipeline is
    // idle), then only when a batch is full (1,000 requests) or when the batch timer fires:
    // without the timer, every later request waits in its queue.
    let mut r0 = Replica::new(R0, config());
    drain_replica(&mut r0);
    let flooder = ClientId(66);
    for no in 1..=100 {
        let request = Request::new(flooder, RequestNo(no), &b"op"[..]).unwrap();
        r0.handle_message(T0, NodeId::Client(flooder), Message::Request(request));
    }
    assert_eq!(
        r0.pending_requests() + 1,
        eve_agreement::limits::CLIENT_IN_FLIGHT_MAX,
        "one client holds at most CLIENT_IN_FLIGHT_MAX requests in the queue and in batches"
    );
    assert_eq!(
        r0.counters().drops.get("client-in-flight-full"),
        100 - eve_agreement::limits::CLIENT_IN_FLIGHT_MAX as u64
    );
    r0.handle_message(T0, NodeId::Client(C), Message::Request(request(1)));
    assert_eq!(
        r0.pending_requests(),
        eve_agreement::limits::CLIENT_IN_FLIGHT_MAX,
        "another client is still served"
    );
}

#[test]
fn large_requests_from_many_clients_cannot_pass_the_pending_byte_bound() {
    use eve_agreement::limits::PENDING_REQUEST_BYTES_MAX;
    use eve_types::limits::OP_BYTES_MAX;
    // The pipeline holds one batch (depth 1, and the first batch never commits): the first
    // request goes out in it at once (the pipeline was idle), and everything after waits.
    let mut config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 });
    config.pipeline_depth = 1;
    let mut r0 = Replica::new(R0, config.validate().unwrap());
    drain_replica(&mut r0);
    let in_first_batch = 1;
    let fits = PENDING_REQUEST_BYTES_MAX / OP_BYTES_MAX + in_first_batch;
    let sent = fits + 50;
    for client in 0..sent as u64 {
        let client = ClientId(1_000 + client);
        let request = Request::new(client, RequestNo(1), vec![7u8; OP_BYTES_MAX]).unwrap();
        r0.handle_message(T0, NodeId::Client(client), Message::Request(request));
    }
    assert_eq!(
        r0.pending_requests(),
        fits - in_first_batch,
        "the queue stops at its byte bound"
    );
    assert!(r0.pending_bytes() <= PENDING_REQUEST_BYTES_MAX);
    assert_eq!(
        r0.counters().drops.get("pending-bytes-full"),
        (sent - fits) as u64
    );
    assert_eq!(
        r0.counters().batches_ordered,
        1,
        "one batch, cut full in bytes"
    );
}

#[test]
fn with_r_0_only_the_primary_replies_at_commit_and_a_backup_answers_retransmissions() {
    // The default: one matching reply is enough, and the client sent its request to the
    // primary, so a backup commits silently and keeps the reply for a retransmission.
    let (mut r1, token) = backup_that_executed_with(config(), roots(0, 1));
    r1.handle_message(T0, verifier(0), verified_1(token));
    assert_eq!(
        drain_replica(&mut r1),
        vec![],
        "a backup commits without replying"
    );
    assert_eq!(r1.committed(), BatchSeq(1));
    assert_eq!(r1.counters().replies_sent, 0);
    r1.handle_message(T0, NodeId::Client(C), Message::Request(request(1)));
    assert_eq!(
        drain_replica(&mut r1),
        vec![reply_done()],
        "a retransmission is answered from the reply table"
    );
}

/// With r = 0 only the primary replies at commit. A primary whose token for a batch lost
/// settles it by state transfer and never executes it with the agreed token, so it answers the
/// batch's clients from the transferred reply cache instead: otherwise they would wait for a
/// retransmission. A backup in its place stays silent.
#[test]
fn a_primary_that_settles_a_batch_by_transfer_answers_its_clients_from_the_reply_cache() {
    for (id, answers) in [(R0, true), (R1, false)] {
        let mut r = Replica::new(id, config());
        drain_replica(&mut r);
        let seq = BatchSeq(1);
        if id == R0 {
            r.handle_message(T0, NodeId::Client(C), Message::Request(request(1)));
        } else {
            r.handle_message(T0, replica(R0), Message::ExecuteBatch(batch(1)));
        }
        assert!(
            drain_replica(&mut r)
                .iter()
                .any(|o| matches!(o, Output::Exec(ExecCommand::Execute { .. }))),
            "{id} executes batch 1"
        );
        let mine = roots(0, 1);
        r.handle_exec_event(
            T0,
            ExecEvent::Executed {
                epoch: 0,
                seq,
                roots: mine,
                token: mine.token(seq),
                replies: vec![reply(1, "done")],
            },
        );
        drain_replica(&mut r);
        let agreed_roots = roots(0, 7);
        r.handle_message(T0, verifier(0), verified_1(agreed_roots.token(seq)));
        let peer = drain_replica(&mut r)
            .into_iter()
            .find_map(|o| match o {
                Output::Send {
                    to: NodeId::Replica(peer),
                    msg: Message::StateRequest { .. },
                } => Some(peer),
                _ => None,
            })
            .expect("a mismatching replica asks a peer for the agreed state");
        r.handle_message(T0, replica(peer), delta_reply(agreed_roots, 0, 1));
        let epoch = match drain_replica(&mut r).as_slice() {
            [Output::Exec(ExecCommand::ImportDelta { epoch, .. })] => *epoch,
            other => panic!("expected the delta to be imported, got {other:?}"),
        };
        r.handle_exec_event(
            T0,
            ExecEvent::StateApplied {
                epoch,
                target: seq,
                roots: agreed_roots,
                result: Ok(()),
            },
        );
        assert_eq!(r.committed(), seq);
        let answered =
            drain_replica(&mut r).contains(&Output::Exec(ExecCommand::AnswerFromCache {
                client: C,
                request_no: RequestNo(1),
                committed: seq,
                view: View(0),
            }));
        assert_eq!(
            answered, answers,
            "{id}: only the replier answers the settled batch's client from the cache"
        );
    }
}

#[test]
fn a_verifier_that_gave_up_on_a_view_it_is_still_opening_goes_back_when_told_it_goes_on() {
    // V2 entered view 1 on its leader's announcement, but the votes that commit the view's
    // start in it never reached it (nor its peers' answers to its `Lagging`): it gave up on
    // view 1 while still opening it. A peer tells it that view 1 goes on, from the same
    // start: it must go back (before, only a verifier that had opened the view compared the
    // start, so this one dropped the word and waited alone for the next view change).
    let mut v2 = Verifier::new(VerifierId(2), config());
    let start = (BatchSeq(0), Token(Digest::ZERO));
    let new_view = Message::NewView {
        view: View(1),
        start: start.0,
        token: start.1,
        proof: Vec::new(),
    };
    v2.handle_message(T0, verifier(1), new_view.clone());
    assert_eq!(v2.view(), View(1));
    drain_verifier(&mut v2);
    // The commit timer of the start: ask the peers first, then give up half a timeout later.
    for _ in 0..2 {
        let at = v2.next_timeout().expect("the start's commit timer runs");
        v2.handle_timeout(at);
    }
    assert!(
        v2.is_changing_view(),
        "it gave up on view 1: {}",
        v2.describe()
    );
    assert!(
        v2.counters().catch_up_queries >= 1,
        "it asked its peers first"
    );
    drain_verifier(&mut v2);
    let at = v2.next_timeout().expect("the view-change timer runs");
    v2.handle_message(at, verifier(0), new_view);
    assert!(
        !v2.is_changing_view(),
        "told by a peer that view 1 goes on from the start it entered, it went back: {}",
        v2.describe()
    );
    assert_eq!(v2.counters().view_changes_abandoned, 1);
    let outputs = drain_verifier(&mut v2);
    assert!(
        outputs.iter().any(asks_what_it_missed),
        "and asked its peers what committed meanwhile: {outputs:?}"
    );
}
