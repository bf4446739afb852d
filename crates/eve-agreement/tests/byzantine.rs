//! The Byzantine-tolerant configurations (r >= 1): without faults nothing needs a view change,
//! and what one lying replica can do is bounded (the findings of the Byzantine review).

mod harness;

use eve_agreement::{Message, NodeId, Output, Verifier};
use eve_exec::Token;
use eve_types::{BatchSeq, Digest, ReplicaId, VerifierId, View};
use harness::{Net, config, put, verifier_auth};

/// Verifier `id` of `config`, with its signing secret.
fn verifier(id: u32, config: eve_types::ValidConfig) -> Verifier {
    let auth = verifier_auth(&config, id);
    Verifier::new(VerifierId(id), config).with_auth(auth)
}

#[test]
fn with_r_1_and_no_fault_requests_commit_in_view_0() {
    let mut net = Net::new(config(1, 1), 3);
    for round in 0..5 {
        for c in 0..3 {
            net.submit(c, put(&format!("k{c}"), &format!("v{round}")));
        }
        assert!(
            net.run_until(50, |n| (0..3).all(|c| n.idle(c))),
            "round {round}: {}",
            net.describe()
        );
    }
    for (i, v) in net.verifiers.iter().enumerate() {
        assert_eq!(
            v.view().0,
            0,
            "verifier {i} changed view: {}",
            net.describe()
        );
    }
}

fn verify(seq: u64, token: u8) -> Message {
    verify_on(seq, token, 0)
}

/// A token for batch `seq` executed on the version whose token is `prev` (zero: the empty
/// start, as for batch 1).
fn verify_on(seq: u64, token: u8, prev: u8) -> Message {
    Message::Verify {
        view: View(0),
        seq: BatchSeq(seq),
        token: Token(Digest([token; 32])),
        prev: Token(Digest([prev; 32])),
    }
}

fn view_changes(v: &mut Verifier) -> usize {
    std::iter::from_fn(|| v.poll_output())
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    msg: Message::ViewChange { .. },
                    ..
                }
            )
        })
        .count()
}

/// Finding 3: one Byzantine replica sends a token for a batch nobody ordered. Alone it must not
/// start the verifiers' commit timer (or it could force a view change every
/// `verify_timeout_ms`); `r + 1` replicas' tokens prove a correct replica executed the batch,
/// and then the timer runs.
#[test]
fn one_replicas_token_for_an_unordered_batch_cannot_start_a_view_change() {
    let config = config(1, 1);
    let timeout = config.verify_timeout_ms;
    let mut v = verifier(0, config);
    let t0 = eve_agreement::Time(1_000);
    let _ = view_changes(&mut v);
    v.handle_message(t0, NodeId::Replica(ReplicaId(2)), verify(5, 1));
    let later = t0.plus_ms(timeout * 4);
    if v.next_timeout().is_some_and(|t| t <= later) {
        v.handle_timeout(later);
    }
    assert_eq!(
        view_changes(&mut v),
        0,
        "a single replica's token started no timer"
    );
    assert_eq!(v.view(), View(0));

    v.handle_message(later, NodeId::Replica(ReplicaId(1)), verify(5, 2));
    let deadline = v.next_timeout().expect("r + 1 tokens start the timer");
    assert_eq!(deadline, later.plus_ms(timeout));
    v.handle_timeout(deadline);
    assert_eq!(
        view_changes(&mut v),
        0,
        "the first expiry asks the peers what this verifier missed"
    );
    assert_eq!(v.counters().catch_up_queries, 1);
    let deadline = v.next_timeout().expect("the timer runs on");
    assert_eq!(deadline, later.plus_ms(timeout + timeout / 2));
    v.handle_timeout(deadline);
    assert!(
        view_changes(&mut v) > 0,
        "a batch that r + 1 replicas executed and that did not commit in time changes the view"
    );
}

const C: eve_types::ClientId = eve_types::ClientId(9);

/// Request `no` of client `C`, signed by it.
fn signed(no: u64) -> eve_types::Request {
    let config = config(1, 1);
    let mut request = eve_types::Request::new(C, eve_types::RequestNo(no), &b"op"[..]).unwrap();
    let signer = harness::auth(16).signer(C).unwrap();
    request.signature = Some(eve_agreement::auth::RequestSigner::sign(
        &signer,
        &request.signing_payload(&config.cluster_id),
    ));
    request
}

/// A replica of a cluster with r = 1 that checks signatures of the harness's clients.
fn replica(id: u32) -> eve_agreement::Replica {
    eve_agreement::Replica::new(ReplicaId(id), config(1, 1))
        .with_request_verifier(std::sync::Arc::new(harness::auth(16)))
}

fn batch(seq: u64) -> eve_agreement::Batch {
    eve_agreement::Batch {
        view: View(0),
        seq: BatchSeq(seq),
        requests: vec![signed(seq)],
        nondet: eve_types::NonDet {
            time_ms: 1,
            seed: 2,
        },
        sequential: false,
    }
}

fn outputs(r: &mut eve_agreement::Replica) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// Finding 2: a Byzantine primary sends batch 2 and never batch 1. Nothing executes, so no
/// token and no verifier timer come; the backup must suspect the primary once the gap has
/// lasted `verify_timeout_ms`.
#[test]
fn a_backup_suspects_a_primary_that_leaves_a_gap_in_the_batches() {
    let config = config(1, 1);
    let timeout = config.verify_timeout_ms;
    let mut r1 = replica(1);
    let mut now = eve_agreement::Time(1_000);
    let _ = outputs(&mut r1);
    r1.handle_message(
        now,
        NodeId::Replica(ReplicaId(0)),
        Message::ExecuteBatch(batch(2)),
    );
    let mut suspected = false;
    let until = now.plus_ms(4 * timeout);
    while let Some(at) = r1.next_timeout().filter(|&at| at <= until) {
        now = at.max(now);
        r1.handle_timeout(now);
        suspected |= outputs(&mut r1).iter().any(|o| {
            matches!(
                o,
                Output::Send {
                    msg: Message::Suspect { view: View(0) },
                    ..
                }
            )
        });
        if suspected {
            break;
        }
    }
    assert!(
        suspected,
        "the gap at batch 1 made the backup suspect the primary"
    );
    assert!(r1.counters().suspicions >= 1);
}

/// Finding 2, its other half: a client retransmits a request that sits in that batch beyond
/// the gap. The backup must not drop it as in flight: it forwards it to the primary and
/// watches that it commits.
#[test]
fn a_backup_forwards_a_retransmitted_request_whose_batch_never_executed() {
    let mut r1 = replica(1);
    let now = eve_agreement::Time(1_000);
    let _ = outputs(&mut r1);
    r1.handle_message(
        now,
        NodeId::Replica(ReplicaId(0)),
        Message::ExecuteBatch(batch(2)),
    );
    let _ = outputs(&mut r1);
    let request = batch(2).requests[0].clone();
    r1.handle_message(now, NodeId::Client(C), Message::Request(request.clone()));
    assert!(
        outputs(&mut r1).contains(&Output::Send {
            to: NodeId::Replica(ReplicaId(0)),
            msg: Message::Request(request),
        }),
        "the retransmission is forwarded to the primary"
    );
}

fn sends_batch(outputs: &[Output]) -> bool {
    outputs.iter().any(|o| {
        matches!(
            o,
            Output::Send {
                msg: Message::ExecuteBatch(_),
                ..
            }
        )
    })
}

/// Finding 1: a backup (or anyone but the client) relays a request in client C's name that C
/// never signed, with a request number near the top. The primary must not order it: had it
/// committed, every later request of C would have been stale.
#[test]
fn a_relayed_request_its_client_did_not_sign_is_not_ordered() {
    let mut r0 = replica(0);
    let now = eve_agreement::Time(1_000);
    let _ = outputs(&mut r0);
    let forged =
        eve_types::Request::new(C, eve_types::RequestNo(u64::MAX - 1), &b"op"[..]).unwrap();
    r0.handle_message(now, NodeId::Replica(ReplicaId(1)), Message::Request(forged));
    assert!(
        !sends_batch(&outputs(&mut r0)),
        "the unsigned request is not ordered"
    );
    assert_eq!(r0.counters().drops.get("unsigned-request"), 1);

    let mut resigned = signed(u64::MAX - 1);
    resigned.op = bytes::Bytes::from_static(b"another op");
    r0.handle_message(
        now,
        NodeId::Replica(ReplicaId(1)),
        Message::Request(resigned),
    );
    assert!(
        !sends_batch(&outputs(&mut r0)),
        "a rewritten operation is not ordered"
    );
    assert_eq!(r0.counters().drops.get("forged-request"), 1);

    r0.handle_message(now, NodeId::Client(C), Message::Request(signed(1)));
    assert!(
        sends_batch(&outputs(&mut r0)),
        "C's real request 1 is ordered: nothing made it stale"
    );
}

/// Finding 1, in a batch: a Byzantine primary rewrites a request's operation. A backup must
/// not execute the batch, and suspects the primary.
#[test]
fn a_batch_with_a_rewritten_request_is_refused_and_its_primary_suspected() {
    let mut r1 = replica(1);
    let now = eve_agreement::Time(1_000);
    let _ = outputs(&mut r1);
    let mut forged = batch(1);
    forged.requests[0].op = bytes::Bytes::from_static(b"transfer everything");
    r1.handle_message(
        now,
        NodeId::Replica(ReplicaId(0)),
        Message::ExecuteBatch(forged),
    );
    let out = outputs(&mut r1);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Exec(_))),
        "nothing executes: {out:?}"
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: Message::Suspect { view: View(0) },
            ..
        }
    )));
    assert_eq!(r1.counters().drops.get("batch-with-a-forged-request"), 1);

    r1.handle_message(
        now,
        NodeId::Replica(ReplicaId(0)),
        Message::ExecuteBatch(batch(1)),
    );
    assert!(
        outputs(&mut r1)
            .iter()
            .any(|o| matches!(o, Output::Exec(_))),
        "the real batch executes"
    );
}

/// Found by the simulator (seed 19591 of `--mode 1,1`): a verifier that lost the other
/// verifiers' `Commit` votes for a batch, and all but one replica's token, had no commit timer
/// (it runs from `r + 1` tokens) and nothing told it what it missed: it stayed behind for good,
/// and a restarted replica asking where the cluster stands got answers no `r + 1` of which
/// agreed. The prepare quorum it saw proves the batch real, so its timer runs; when it fires
/// the verifier asks its peers and commits on the word of `r + 1` of them, without a view
/// change.
#[test]
fn a_verifier_that_lost_the_commit_votes_catches_up_from_its_peers() {
    let mut net = Net::new(config(1, 1), 1);
    let lagging = NodeId::Verifier(VerifierId(2));
    net.set_filter(harness::lose_if(move |from, to, msg| {
        to == lagging
            && match msg {
                Message::Commit { .. } => true,
                Message::Verify { .. } => from != NodeId::Replica(ReplicaId(0)),
                _ => false,
            }
    }));
    net.submit(0, put("k", "v"));
    assert!(
        net.run_until(50, |n| n.idle(0)),
        "the others commit: {}",
        net.describe()
    );
    assert_eq!(
        net.verifiers[2].committed(),
        BatchSeq(0),
        "{}",
        net.describe()
    );
    net.set_filter(harness::lose_nothing());
    let timeout = net.config.verify_timeout_ms;
    net.advance_ms(3 * timeout);
    assert_eq!(
        net.verifiers[2].committed(),
        net.verifiers[0].committed(),
        "the lagging verifier caught up: {}",
        net.describe()
    );
    assert!(net.verifiers[2].counters().batches_caught_up >= 1);
    for (i, v) in net.verifiers.iter().enumerate() {
        assert_eq!(
            v.view(),
            View(0),
            "verifier {i} changed view: {}",
            net.describe()
        );
    }
}

fn prepares(v: &mut Verifier, seq: u64) -> Vec<Token> {
    std::iter::from_fn(|| v.poll_output())
        .filter_map(|o| match o {
            Output::Send {
                to: NodeId::Verifier(VerifierId(0)),
                msg: Message::Prepare { seq: s, token, .. },
            } if s == BatchSeq(seq) => Some(token),
            _ => None,
        })
        .collect()
}

/// Found by the simulator (seed 396 of `--mode 1,1`, seed 225 of `--mode 2,2`): a correct
/// replica diverged at batch 1 and went on to execute batch 2 on its own version; a Byzantine
/// replica echoed that token for batch 2. Two tokens are the token quorum, so batch 2 agreed on
/// a state built on a version that lost: nobody could fetch it, and the cluster stalled for
/// good. A token now names the version it was executed on, and counts only on the agreed one.
#[test]
fn a_token_executed_on_a_version_that_lost_does_not_count_even_when_echoed() {
    let mut v = verifier(0, config(1, 1));
    let now = eve_agreement::Time(1_000);
    let (r0, r1, r2) = (
        NodeId::Replica(ReplicaId(0)),
        NodeId::Replica(ReplicaId(1)),
        NodeId::Replica(ReplicaId(2)),
    );
    // Batch 1: R0 and R1 agree on token 1; R2 diverged (token 9).
    v.handle_message(now, r0, verify_on(1, 1, 0));
    v.handle_message(now, r1, verify_on(1, 1, 0));
    v.handle_message(now, r2, verify_on(1, 9, 0));
    assert_eq!(prepares(&mut v, 1), vec![Token(Digest([1; 32]))]);
    // Batch 2: R2 executed it on its own version 9; Byzantine R1 echoes that.
    v.handle_message(now, r2, verify_on(2, 7, 9));
    v.handle_message(now, r1, verify_on(2, 7, 9));
    assert_eq!(
        prepares(&mut v, 2),
        vec![],
        "tokens executed on a version that lost do not make a quorum"
    );
    // R0 executed batch 2 on the agreed version; R2 rolled back and executed it again there.
    v.handle_message(now, r0, verify_on(2, 5, 1));
    v.handle_message(now, r2, verify_on(2, 5, 1));
    assert_eq!(
        prepares(&mut v, 2),
        vec![Token(Digest([5; 32]))],
        "the token executed on the agreed version commits, R2's second one replacing its first"
    );
}

/// A verifier further behind than its window (a long partition) cannot hold the slots in
/// between: on a peer's commit certificate for a batch past the window it jumps there and tells
/// the replicas. Words are not enough with `r >= 1` (a lying peer could vouch for anything), nor
/// is a certificate short of a verifier quorum or with a signature in another's name.
#[test]
fn a_verifier_past_its_window_jumps_to_a_batch_a_peers_certificate_proves() {
    use eve_agreement::Lock;
    use eve_agreement::certificate::{Certificate, Round, VerifierAuth, vote_payload};
    let config = config(1, 1);
    let mut v = verifier(0, config.clone());
    let now = eve_agreement::Time(1_000);
    let far = BatchSeq(eve_agreement::limits::SEQ_WINDOW + 5);
    let token = Token(Digest([3; 32]));
    let peer = NodeId::Verifier(VerifierId(1));
    let vouch = Message::Verified {
        view: View(0),
        seq: far,
        token,
        sequential: false,
    };
    for from in 1..4 {
        v.handle_message(now, NodeId::Verifier(VerifierId(from)), vouch.clone());
    }
    assert_eq!(v.committed(), BatchSeq(0), "words are not proof");
    let vote = Lock::new(View(0), far, token);
    let payload = vote_payload(&config.cluster_id, Round::Commit, &vote);
    let signed_by = |signer: u32, name: u32| {
        (
            VerifierId(name),
            verifier_auth(&config, signer).sign(&payload),
        )
    };
    let certified = |signatures: Vec<(VerifierId, eve_types::Signature)>| {
        Message::Certified(Box::new(Certificate::new(Round::Commit, vote, signatures)))
    };
    v.handle_message(now, peer, certified(vec![signed_by(1, 1), signed_by(2, 2)]));
    assert_eq!(
        v.committed(),
        BatchSeq(0),
        "two signatures are not a quorum"
    );
    v.handle_message(
        now,
        peer,
        certified(vec![signed_by(1, 1), signed_by(2, 2), signed_by(1, 3)]),
    );
    assert_eq!(v.committed(), BatchSeq(0), "verifier 1 signed in 3's name");
    assert_eq!(v.counters().proofs_refused, 2);
    let _ = std::iter::from_fn(|| v.poll_output()).count();
    v.handle_message(
        now,
        peer,
        certified(vec![signed_by(1, 1), signed_by(2, 2), signed_by(3, 3)]),
    );
    assert_eq!(v.committed(), far);
    let told: Vec<Output> = std::iter::from_fn(|| v.poll_output()).collect();
    assert!(
        told.contains(&Output::Send {
            to: NodeId::Replica(ReplicaId(0)),
            msg: vouch,
        }),
        "the replicas hear of it: {told:?}"
    );
}
