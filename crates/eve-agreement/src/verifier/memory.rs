//! A durable verifier's memory: what it writes down before any message it sends leaves, and
//! how it resumes from it after a restart (the rule Raft applies to its term and vote).
//!
//! Everything a verifier promised others is in [`VerifierMemory`]: the views it asked for and
//! entered, its last committed batch (with its certificate), and every `Prepare` and `Commit`
//! vote it cast in its current view, with the prepared certificate of its highest lock. A
//! verifier that resumes from it never votes for another token where it voted before, reports
//! every lock it holds in a view change, and needs no peer to recover: a cluster whose every
//! node lost power at once comes back where it stood. What it received from others (tokens,
//! their votes, view-change messages) is not kept: senders repeat it, and a batch that does
//! not commit in time is asked about or moves the cluster to the next view as usual.
//!
//! The driver takes the memory after each event whenever it changed
//! ([`Verifier::take_memory`]) and hands it to its `Io` before any message the event produced,
//! which must make it durable before those messages leave.

use super::{VSlot, Verifier};
use crate::certificate::Certificate;
use crate::message::Lock;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, ValidConfig, VerifierId, View};
use serde::{Deserialize, Serialize};

/// What a durable verifier must not forget (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierMemory {
    /// The verifier it belongs to.
    pub id: VerifierId,
    /// Its current view.
    pub view: View,
    /// The highest view it asked for.
    pub asked: View,
    /// The view it entered last, the batch that view starts after and its token.
    pub entered: Option<(View, BatchSeq, Token)>,
    /// Its last committed batch and token.
    pub committed: (BatchSeq, Token),
    /// With `r >= 1`: the commit certificate of `committed`.
    pub committed_cert: Option<Certificate>,
    /// With `r >= 1`: the prepared certificate of its highest lock.
    pub lock_cert: Option<Certificate>,
    /// With `r >= 1`: the start of the current view while it is committed again in it.
    pub opening: Option<(BatchSeq, Token)>,
    /// The highest view it may have voted in before an earlier restart without memory.
    pub vote_floor: Option<View>,
    /// Locks learned from peers in such a recovery.
    pub learned: Vec<Lock>,
    /// Its votes in `view`: `(seq, Prepare sent for, Commit sent for)`.
    pub votes: Vec<(BatchSeq, Option<Token>, Option<Token>)>,
}

impl Verifier {
    /// Makes this verifier durable: from now on [`take_memory`](Self::take_memory) returns
    /// its memory whenever it changed, for the driver to persist before anything it sends.
    pub fn with_durable_memory(mut self) -> Self {
        if self.durable.is_none() {
            self.durable = Some(None);
        }
        self
    }

    /// Its memory as it stands.
    pub fn memory(&self) -> VerifierMemory {
        VerifierMemory {
            id: self.id,
            view: self.view,
            asked: self.asked,
            entered: self.entered,
            committed: (self.committed, self.committed_token),
            committed_cert: self.committed_cert.clone(),
            lock_cert: self.lock_cert.clone(),
            opening: self.opening,
            vote_floor: self.vote_floor,
            learned: self.learned.clone(),
            votes: self
                .slots
                .iter()
                .filter(|(_, slot)| slot.sent_prepare.is_some() || slot.sent_commit.is_some())
                .map(|(&seq, slot)| (seq, slot.sent_prepare, slot.sent_commit))
                .collect(),
        }
    }

    /// A durable verifier's memory if it changed since it was last taken (`None` for a
    /// verifier that keeps none, or while it recovers from a restart without memory and has
    /// promised nothing yet).
    pub fn take_memory(&mut self) -> Option<VerifierMemory> {
        if self.recovery.is_some() {
            return None;
        }
        let last = self.durable.as_ref()?;
        let memory = self.memory();
        if last.as_ref() == Some(&memory) {
            return None;
        }
        self.durable = Some(Some(memory.clone()));
        Some(memory)
    }

    /// A durable verifier that restarted with its `memory` (the last one its driver
    /// persisted): it takes part at once, in the view it was in, voting only as it voted
    /// before. A view change it had asked for is asked for again at its first wake-up.
    ///
    /// # Panics
    /// If `memory` belongs to another verifier (the caller checks this when it reads it).
    pub fn resume(id: VerifierId, config: ValidConfig, memory: VerifierMemory, now: Time) -> Self {
        assert_eq!(memory.id, id, "a verifier resumes only from its own memory");
        let mut verifier = Self::new(id, config);
        verifier.view = memory.view;
        verifier.asked = memory.asked;
        verifier.entered = memory.entered;
        (verifier.committed, verifier.committed_token) = memory.committed;
        verifier.committed_cert = memory.committed_cert.clone();
        verifier.lock_cert = memory.lock_cert.clone();
        verifier.opening = memory.opening;
        verifier.vote_floor = memory.vote_floor;
        verifier.learned = memory.learned.clone();
        for &(seq, prepare, commit) in &memory.votes {
            verifier.slots.insert(
                seq,
                VSlot {
                    sent_prepare: prepare,
                    sent_commit: commit,
                    // Its timer runs from the restart: if the batch does not commit, the
                    // verifier asks its peers and then moves on to the next view.
                    first_seen: Some(now),
                    ..VSlot::default()
                },
            );
        }
        let (seq, token) = memory.committed;
        verifier.remember(seq, token, memory.committed_cert.clone());
        if memory.asked > memory.view {
            // Its `ViewChange` may have been lost with the crash: send it again at once.
            verifier.resume_change = Some(memory.asked);
        }
        verifier.durable = Some(Some(memory));
        verifier
    }

    /// A view change asked for before a restart, asked for again.
    pub(super) fn resume_view_change(&mut self, now: Time) {
        if let Some(target) = self.resume_change.take() {
            self.start_view_change(now, target);
        }
    }
}
