//! Verifier certificates (r >= 1): a faulty verifier's word counts only on its own channel; what
//! is relayed must carry proof. Each test fails with the check it exercises taken out.

mod harness;

use eve_agreement::certificate::{
    Certificate, Claims, Round, VerifierAuth, view_change_payload, vote_payload,
};
use eve_agreement::{Lock, Message, NodeId, Output, Time, Verifier, ViewChangeProof};
use eve_exec::Token;
use eve_types::{BatchSeq, Digest, ReplicaId, ValidConfig, VerifierId, View};
use harness::{config, verifier_auth};

const WRONG: Token = Token(Digest([0xbd; 32]));

fn verifiers(config: &ValidConfig) -> Vec<Verifier> {
    (0..config.sizes().n_ver as u32)
        .map(|i| Verifier::new(VerifierId(i), config.clone()).with_auth(verifier_auth(config, i)))
        .collect()
}

fn ver(i: u32) -> NodeId {
    NodeId::Verifier(VerifierId(i))
}

fn sent(v: &mut Verifier) -> Vec<(NodeId, Message)> {
    std::iter::from_fn(|| v.poll_output())
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((to, msg)),
            _ => None,
        })
        .collect()
}

/// The message `v` sent to `to` of the kind `kind`, if any.
fn sent_to(out: &[(NodeId, Message)], to: NodeId, kind: &str) -> Option<Message> {
    out.iter()
        .find(|(t, m)| *t == to && m.kind() == kind)
        .map(|(_, m)| m.clone())
}

/// Makes `v` ask for view 1 (two replicas suspect the primary) and returns its `ViewChange`.
fn ask_for_view_1(v: &mut Verifier, now: Time) -> Message {
    for r in 0..2 {
        v.handle_message(
            now,
            NodeId::Replica(ReplicaId(r)),
            Message::Suspect { view: View(0) },
        );
    }
    sent_to(&sent(v), ver(1), "view-change").expect("a view change")
}

/// A `ViewChange` of verifier `liar` for `new_view` claiming a lock nobody voted for, with a
/// certificate of its own signature in every verifier's name, the message itself validly
/// signed by the liar.
fn forged_view_change(config: &ValidConfig, liar: u32, new_view: View, lock: Lock) -> Message {
    let auth = verifier_auth(config, liar);
    let own = auth.sign(&vote_payload(&config.cluster_id, Round::Prepare, &lock));
    let n_ver = config.sizes().n_ver as u32;
    let claims = Claims {
        committed: None,
        lock: Some(Certificate::new(
            Round::Prepare,
            lock,
            (0..n_ver).map(|v| (VerifierId(v), own)),
        )),
    };
    let committed = claims.committed_claim();
    let payload = view_change_payload(
        &config.cluster_id,
        new_view,
        View(0),
        &committed,
        Some(&lock),
    );
    Message::ViewChange {
        new_view,
        view: View(0),
        committed: (committed.seq, committed.token),
        locked: vec![lock],
        proof: Some(Box::new(ViewChangeProof {
            claims,
            signature: auth.sign(&payload),
        })),
    }
}

/// The leader of view 1 counts a `ViewChange` only with valid certificates: a lying verifier's
/// lock at batch 3 of view 1 (which would outrank every real claim and start the view above
/// anything executed) does not count, and the leader waits for a third proven one.
#[test]
fn a_view_change_with_a_forged_lock_certificate_does_not_count() {
    let config = config(1, 1);
    let mut vs = verifiers(&config);
    let now = Time(1_000);
    let changes: Vec<Message> = (0..3).map(|i| ask_for_view_1(&mut vs[i], now)).collect();
    let lock = Lock::new(View(1), BatchSeq(3), WRONG);
    let forged = forged_view_change(&config, 3, View(1), lock);
    let leader = &mut vs[1];
    leader.handle_message(now, ver(0), changes[0].clone());
    leader.handle_message(now, ver(1), changes[1].clone());
    leader.handle_message(now, ver(3), forged);
    assert_eq!(leader.counters().proofs_refused, 1);
    assert!(
        sent_to(&sent(leader), ver(0), "new-view").is_none(),
        "two proven view changes are not a quorum"
    );
    leader.handle_message(now, ver(2), changes[2].clone());
    match sent_to(&sent(leader), ver(0), "new-view") {
        Some(Message::NewView { start, proof, .. }) => {
            assert_eq!(
                start,
                BatchSeq(0),
                "the view starts where the proven claims say"
            );
            assert_eq!(proof.len(), 3);
        }
        other => panic!("no announcement: {other:?}"),
    }
}

/// A follower computes the start again from the `NewView`'s proof and refuses one that says
/// otherwise. It tells replicas of the view only once the start committed again in the view.
#[test]
fn a_new_view_is_followed_only_as_its_proof_gives_it_and_announced_once_its_start_commits() {
    let config = config(1, 1);
    let mut vs = verifiers(&config);
    let now = Time(1_000);
    let changes: Vec<Message> = (0..3).map(|i| ask_for_view_1(&mut vs[i], now)).collect();
    for (i, change) in changes.iter().enumerate() {
        vs[1].handle_message(now, ver(i as u32), change.clone());
    }
    let new_view = sent_to(&sent(&mut vs[1]), ver(0), "new-view").expect("announced");
    let Message::NewView {
        view, token, proof, ..
    } = new_view.clone()
    else {
        unreachable!()
    };
    let lie = Message::NewView {
        view,
        start: BatchSeq(2),
        token: WRONG,
        proof,
    };
    vs[0].handle_message(now, ver(1), lie);
    assert_eq!(vs[0].view(), View(0), "a start its proof does not give");
    assert_eq!(vs[0].counters().proofs_refused, 1);
    // Every verifier follows the real one and prepares its start again in view 1.
    let mut prepares = Vec::new();
    for i in [0, 2, 3] {
        vs[i].handle_message(now, ver(1), new_view.clone());
        assert_eq!(vs[i].view(), View(1));
        let out = sent(&mut vs[i]);
        assert!(
            !out.iter()
                .any(|(to, m)| matches!(to, NodeId::Replica(_)) && m.kind() == "verified"),
            "replicas are told of the view only once its start commits in it: {out:?}"
        );
        prepares.push((
            i as u32,
            sent_to(&out, ver(0), "prepare").expect("a prepare"),
        ));
    }
    let _ = sent(&mut vs[1]);
    for (from, prepare) in &prepares {
        assert!(
            matches!(prepare, Message::Prepare { view: View(1), seq: BatchSeq(0), token: t, .. } if *t == token)
        );
        vs[0].handle_message(now, ver(*from), prepare.clone());
    }
    let commit = sent_to(&sent(&mut vs[0]), ver(0), "commit").expect("locked on the start");
    // Commits of the start in view 1 from a verifier quorum: now the replicas hear of it.
    vs[0].handle_message(now, ver(0), commit);
    for i in [2, 3] {
        for (from, prepare) in &prepares {
            vs[i].handle_message(now, ver(*from), prepare.clone());
        }
        let commit = sent_to(&sent(&mut vs[i]), ver(0), "commit").expect("a commit");
        vs[0].handle_message(now, ver(i as u32), commit);
    }
    let told = sent(&mut vs[0]);
    assert!(
        told.contains(&(
            NodeId::Replica(ReplicaId(0)),
            Message::Verified {
                view: View(1),
                seq: BatchSeq(0),
                token,
                sequential: true,
            }
        )),
        "{told:?}"
    );
}

/// A restarted verifier believes a peer's committed batch only with its commit certificate:
/// a lying peer's answer with a forged one does not count towards the quorum of answers.
#[test]
fn a_restarted_verifier_refuses_a_recovery_answer_with_a_forged_certificate() {
    let config = config(1, 1);
    let mut vs = verifiers(&config);
    let now = Time(1_000);
    let nonce = 11;
    let mut restarted = Verifier::restart(VerifierId(0), config.clone(), nonce)
        .with_auth(verifier_auth(&config, 0));
    let mut answers = Vec::new();
    for peer in vs.iter_mut().skip(1) {
        peer.handle_message(now, ver(0), Message::Recover { nonce });
        answers.push(sent_to(&sent(peer), ver(0), "recover-reply").expect("an answer"));
    }
    let Message::RecoverReply { state, .. } = answers[2].clone() else {
        unreachable!()
    };
    let liar = verifier_auth(&config, 3);
    let claim = Lock::new(View(0), BatchSeq(5), WRONG);
    let own = liar.sign(&vote_payload(&config.cluster_id, Round::Commit, &claim));
    let mut lie = *state;
    lie.committed = (claim.seq, claim.token);
    lie.claims = Some(Claims {
        committed: Some(Certificate::new(
            Round::Commit,
            claim,
            (0..4).map(|v| (VerifierId(v), own)),
        )),
        lock: None,
    });
    restarted.handle_message(now, ver(1), answers[0].clone());
    restarted.handle_message(now, ver(2), answers[1].clone());
    restarted.handle_message(
        now,
        ver(3),
        Message::RecoverReply {
            nonce,
            state: Box::new(lie),
        },
    );
    assert!(
        restarted.is_recovering(),
        "two proven answers are not a quorum"
    );
    assert_eq!(restarted.counters().proofs_refused, 1);
    restarted.handle_message(now, ver(3), answers[2].clone());
    assert!(!restarted.is_recovering());
    assert_eq!(restarted.committed(), BatchSeq(0));
}

/// Found by review: a verifier that asked for view 2 (its `ViewChange` for 2 reported its locks
/// then) and afterwards entered view 1 must not vote in view 1, or a batch it helps commit
/// there could be missing from view 2's start.
#[test]
fn a_verifier_that_asked_for_a_later_view_does_not_vote_in_an_earlier_one() {
    let config = config(1, 1);
    let mut vs = verifiers(&config);
    let now = Time(1_000);
    let changes: Vec<Message> = (0..4).map(|i| ask_for_view_1(&mut vs[i], now)).collect();
    for (i, change) in changes.iter().enumerate().skip(1) {
        vs[1].handle_message(now, ver(i as u32), change.clone());
    }
    let new_view = sent_to(&sent(&mut vs[1]), ver(0), "new-view").expect("announced");
    // Verifier 0 gives up on view 1 before it hears of it, and asks for view 2.
    let mut later = now;
    let mut asked = None;
    for _ in 0..8 {
        if let Some(at) = vs[0].next_timeout() {
            later = later.max(at);
            vs[0].handle_timeout(later);
        }
        asked = sent(&mut vs[0])
            .into_iter()
            .filter_map(|(_, m)| match m {
                Message::ViewChange { new_view, .. } => Some(new_view),
                _ => None,
            })
            .max()
            .or(asked);
        if asked == Some(View(2)) {
            break;
        }
    }
    assert_eq!(asked, Some(View(2)));
    vs[0].handle_message(later, ver(1), new_view);
    assert_eq!(vs[0].view(), View(1), "it follows the view");
    assert!(
        sent_to(&sent(&mut vs[0]), ver(1), "prepare").is_none(),
        "but casts no vote in it"
    );
}
