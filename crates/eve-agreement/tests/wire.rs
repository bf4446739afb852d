//! Messages on the wire: every message round-trips, and no input makes decoding panic.

use eve_agreement::certificate::{Certificate, Claims, Round};
use eve_agreement::{
    Batch, DecodeError, Lock, Message, ProvenViewChange, RecoveryState, StateReply, ViewChangeProof,
};
use eve_exec::Token;
use eve_types::limits::MESSAGE_SIZE_BYTES_MAX;
use eve_types::{
    BatchSeq, ClientId, Digest, NonDet, Request, RequestNo, Signature, VerifierId, View,
};
use proptest::prelude::*;

fn samples() -> Vec<Message> {
    let lock = Lock::new(View(2), BatchSeq(4), Token(Digest([1; 32])));
    let certificate = |round| {
        Certificate::new(
            round,
            lock,
            (0..3).map(|v| (VerifierId(v), Signature([v as u8; 64]))),
        )
    };
    let claims = Claims {
        committed: Some(certificate(Round::Commit)),
        lock: Some(certificate(Round::Prepare)),
    };
    let proof = ViewChangeProof {
        claims: claims.clone(),
        signature: Signature([8; 64]),
    };
    let request = Request::new(ClientId(1), RequestNo(2), &b"op"[..]).unwrap();
    vec![
        Message::Request(request.clone()),
        Message::ExecuteBatch(Batch {
            view: View(3),
            seq: BatchSeq(4),
            requests: vec![request],
            nondet: NonDet {
                time_ms: 5,
                seed: 6,
            },
            sequential: true,
        }),
        Message::Verify {
            view: View(1),
            seq: BatchSeq(2),
            token: Token(Digest([7; 32])),
            prev: Token(Digest::ZERO),
        },
        Message::ViewChange {
            new_view: View(2),
            view: View(1),
            committed: (BatchSeq(3), Token(Digest::ZERO)),
            locked: vec![Lock {
                view: View(2),
                seq: BatchSeq(4),
                token: Token(Digest([1; 32])),
            }],
            proof: None,
        },
        Message::ViewChange {
            new_view: View(3),
            view: View(2),
            committed: (BatchSeq(4), Token(Digest([1; 32]))),
            locked: vec![lock],
            proof: Some(Box::new(proof.clone())),
        },
        Message::NewView {
            view: View(3),
            start: BatchSeq(4),
            token: Token(Digest([1; 32])),
            proof: vec![ProvenViewChange {
                from: VerifierId(1),
                view: View(2),
                proof,
            }],
        },
        Message::Prepare {
            view: View(2),
            seq: BatchSeq(4),
            token: Token(Digest([1; 32])),
            signature: Some(Signature([6; 64])),
        },
        Message::Certified(Box::new(certificate(Round::Commit))),
        Message::StateReply(Box::new(StateReply::NotHeld {
            target: BatchSeq(9),
        })),
        Message::QueryCommitted,
        Message::Recover { nonce: 77 },
        Message::RecoverReply {
            nonce: 77,
            state: Box::new(RecoveryState {
                entered: View(2),
                entered_start: Some((BatchSeq(4), Token(Digest([4; 32])))),
                view: View(3),
                committed: (BatchSeq(5), Token(Digest([2; 32]))),
                locked: vec![Lock {
                    view: View(3),
                    seq: BatchSeq(6),
                    token: Token(Digest([3; 32])),
                }],
                claims: None,
            }),
        },
        Message::RecoverReply {
            nonce: 78,
            state: Box::new(RecoveryState {
                entered: View(2),
                entered_start: None,
                view: View(3),
                committed: (BatchSeq(4), Token(Digest([1; 32]))),
                locked: vec![lock],
                claims: Some(claims),
            }),
        },
    ]
}

#[test]
fn every_sample_message_round_trips() {
    for msg in samples() {
        assert_eq!(
            Message::decode(&msg.encode()).unwrap(),
            msg,
            "{}",
            msg.kind()
        );
    }
}

#[test]
fn an_oversized_message_is_refused_before_decoding() {
    let bytes = vec![0u8; MESSAGE_SIZE_BYTES_MAX + 1];
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooLarge {
            bytes: MESSAGE_SIZE_BYTES_MAX + 1
        })
    );
}

proptest! {
    /// Random bytes decode into an error or a message, never a panic.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }

    /// A real message with one byte changed or cut short still never panics.
    #[test]
    fn decoding_damaged_messages_never_panics(which in 0usize..6, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = samples()[which].encode().to_vec();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        let _ = Message::decode(&bytes);
    }
}
