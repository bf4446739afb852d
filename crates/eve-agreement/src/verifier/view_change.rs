//! Changing view. A verifier that gives up on the current view sends `ViewChange` with its
//! last committed batch and its locks (the tokens it sent `Commit` for) above it, each with the
//! view it was made in. The leader of the new view (`view mod n_ver`) waits for a verifier
//! quorum of them and announces `NewView`: the view starts after the highest committed batch
//! reported, or after the highest lock of the highest view reported if that is higher (a
//! batch committed anywhere was locked by a commit quorum, which every view-change quorum
//! meets; locks of older views were folded into the start of a later view). Verifiers commit
//! the start again in the new view (`begin_opening`) and then tell execution replicas, which
//! roll back to that batch and re-execute what follows, sequentially first.
//!
//! A verifier whose view makes progress does not join a lone stale request (a peer cut off
//! for a while asks for ever higher views alone); it answers with where the view starts,
//! which brings the peer back into the view (`docs/PROTOCOL.md`, "A peer
//! left behind does not pull a working view into a view change").
//!
//! With `r >= 1` verifiers prove what they claim (`docs/PROTOCOL.md`, "Verifier
//! certificates"): a `ViewChange` carries the commit certificate of its last committed batch
//! and the prepared certificate of its highest lock, whichever view it was made in, signed by
//! its sender; the new view starts after the claim of the highest `(view, seq)`; `NewView`
//! carries the quorum of signed `ViewChange`s, from which every verifier computes the start
//! again before it follows; and the start is prepared and committed again in the new view, so
//! that a lock or commit of the new view is proven by votes of that view alone. Replicas hear
//! of the view when its start commits in it.

use super::{Changing, VSlot, Verifier, ViewChangeVote};
use crate::certificate::{ProofError, Round};
use crate::limits::{
    FUTURE_VIEWS_MAX, LEFT_BEHIND_PIPELINES, VIEW_CHANGE_BACKOFF_DOUBLINGS_MAX,
    VIEW_CHANGE_RETRANSMITS_MAX,
};
use crate::message::{Lock, Message, ProvenViewChange};
use crate::node::NodeId;
use crate::time::Time;
use eve_exec::Token;
use eve_types::{BatchSeq, ReplicaId, VerifierId, View};

/// Where view 0 starts: before the first batch, on the empty state's token.
pub(super) const GENESIS: (BatchSeq, Token) = (BatchSeq(0), Token(eve_types::Digest::ZERO));

impl Verifier {
    pub(super) fn on_suspect(&mut self, now: Time, from: ReplicaId, view: View) {
        if view != self.view || self.changing.is_some() {
            return;
        }
        if self.making_progress(now) && self.is_left_behind(from) {
            // Cut off or slow, its relays to the primary were lost: the view works.
            self.counters
                .drops
                .count("suspicion-of-a-replica-left-behind");
            return;
        }
        let suspects = self.suspects.entry(view).or_default();
        suspects.insert(from);
        // r + 1 suspicions: at least one comes from a correct replica.
        if suspects.len() > self.sizes.client_reply_quorum - 1 {
            let next = self.view.next();
            self.start_view_change(now, next);
        }
    }

    /// Gives up on the current view and asks for `target`.
    pub(super) fn start_view_change(&mut self, now: Time, target: View) {
        if self.changing.as_ref().is_some_and(|c| c.target >= target) || target <= self.view {
            return;
        }
        if self.changing.is_some() {
            self.failed_views = self.failed_views.saturating_add(1);
        }
        self.counters.view_changes_started += 1;
        self.asked = self.asked.max(target);
        self.progressed_at = None;
        let message = if self.proves() {
            let claims = self.claims();
            let committed = claims.committed_claim();
            let locked: Vec<Lock> = claims.lock_claim().into_iter().collect();
            Message::ViewChange {
                new_view: target,
                view: self.view,
                committed: (committed.seq, committed.token),
                locked,
                proof: self.view_change_proof(target, self.view, claims),
            }
        } else {
            Message::ViewChange {
                new_view: target,
                view: self.view,
                committed: (self.committed, self.committed_token),
                locked: self.locks(),
                proof: None,
            }
        };
        self.changing = Some(Changing {
            target,
            deadline: now.plus_ms(self.view_change_timeout_ms()),
            retransmits: 0,
            message: message.clone(),
        });
        // Votes for views below the target are of no use any more.
        self.view_change_votes.retain(|&v, _| v >= target);
        self.send_verifiers(message);
    }

    /// The view-change timer: `2 * verify_timeout_ms`, doubled for every view tried in vain
    /// (at most [`VIEW_CHANGE_BACKOFF_DOUBLINGS_MAX`] times).
    fn view_change_timeout_ms(&self) -> u64 {
        self.base_view_change_timeout_ms()
            << self.failed_views.min(VIEW_CHANGE_BACKOFF_DOUBLINGS_MAX)
    }

    /// The view-change timer before any doubling: `2 * verify_timeout_ms`.
    fn base_view_change_timeout_ms(&self) -> u64 {
        2 * self.config.verify_timeout_ms
    }

    /// The view change did not complete in time. If a verifier quorum asked for the target
    /// view and this verifier already repeated its request, the target's leader failed: ask
    /// for the next view. Otherwise repeat the request (messages get lost), but only
    /// [`VIEW_CHANGE_RETRANSMITS_MAX`] times: the others may have entered the target view
    /// already and its leader may have restarted and forgotten its announcement, so nobody
    /// would answer; asking for the next view lets them join.
    pub(super) fn view_change_timeout(&mut self, now: Time) {
        let changing = self.changing.as_ref().expect("called while changing view");
        if changing.deadline > now {
            return;
        }
        let target = changing.target;
        let votes = self.view_change_votes.get(&target).map_or(0, |v| v.len());
        let quorum_asked = votes >= self.sizes.verifier_quorum && changing.retransmits >= 1;
        if quorum_asked || changing.retransmits >= VIEW_CHANGE_RETRANSMITS_MAX {
            self.start_view_change(now, target.next());
            return;
        }
        let deadline = now.plus_ms(self.view_change_timeout_ms());
        let changing = self.changing.as_mut().expect("checked above");
        changing.retransmits += 1;
        changing.deadline = deadline;
        let message = changing.message.clone();
        self.send_verifiers(message);
    }

    pub(super) fn on_view_change(
        &mut self,
        now: Time,
        from: VerifierId,
        new_view: View,
        vote: ViewChangeVote,
    ) {
        if new_view <= self.view {
            // A latecomer asking for this view: tell it where the view starts (only the
            // leader can, repeating its announcement).
            if new_view == self.view {
                self.tell_where_the_view_starts(from, vote.view);
            }
            return;
        }
        let (sender_view, (sender_committed, _)) = (vote.view, vote.committed);
        if self.proves() {
            let proven = vote
                .proof
                .as_deref()
                .ok_or(ProofError::Missing)
                .and_then(|proof| {
                    proof.claims.state(vote.committed, &vote.locked)?;
                    self.check_view_change(from, new_view, vote.view, proof)
                });
            if proven.is_err() {
                self.refused("view-change-unproven");
                return;
            }
        }
        if !self.view_change_votes.contains_key(&new_view)
            && self.view_change_votes.len() >= FUTURE_VIEWS_MAX
        {
            // Keep the highest views: drop the lowest to make room, or this vote if it is lower.
            let lowest = *self
                .view_change_votes
                .keys()
                .next()
                .expect("full, so not empty");
            if new_view < lowest {
                self.counters.drops.count("view-change-below-kept-views");
                return;
            }
            self.view_change_votes.remove(&lowest);
        }
        let votes = self.view_change_votes.entry(new_view).or_default();
        votes.insert(from, vote);
        let count = votes.len();
        if count < self.sizes.verifier_quorum
            && self.making_progress(now)
            && self.is_stale(new_view, sender_view, sender_committed)
        {
            // The view works here and the peer was left behind (a verifier cut off for a
            // while asks for ever higher views alone). Following it would stall every client
            // for a view change: tell it where the view starts instead. Its vote is kept: it
            // counts once this view fails too.
            self.counters.view_changes_refused += 1;
            self.tell_where_the_view_starts(from, sender_view);
        } else {
            self.join_view_change(now);
        }
        // Joining may have moved this verifier past `new_view` (to a higher view a peer left
        // behind asked for earlier, whose vote was kept), dropping its votes: nothing to lead.
        if count >= self.sizes.verifier_quorum
            && self.leader(new_view) == self.id
            && self.view_change_votes.contains_key(&new_view)
        {
            self.announce_new_view(new_view);
        }
    }

    /// Joins a view change that `r + 1` other verifiers asked for (so at least one correct one
    /// did): the smallest of the views they asked for, if it is above this verifier's own
    /// target. Its own requests do not count: one it made before going back to its view
    /// (`abandon_view_change`) or before entering a lower view would otherwise make it ask
    /// again at the next request anyone makes.
    fn join_view_change(&mut self, now: Time) {
        let mut highest: std::collections::BTreeMap<VerifierId, View> = Default::default();
        for (&view, votes) in &self.view_change_votes {
            for &voter in votes.keys().filter(|&&voter| voter != self.id) {
                highest.insert(voter, view);
            }
        }
        self.follow_enough_peers(now, highest.into_values().collect());
    }

    /// Asks for the highest view that `r + 1` of the peers' `views` (one per peer) reached, so
    /// that a correct peer is among them, if it is above this verifier's own target.
    fn follow_enough_peers(&mut self, now: Time, mut views: Vec<View>) {
        let needed = self.sizes.client_reply_quorum;
        if views.len() < needed {
            return;
        }
        views.sort_unstable_by(|a, b| b.cmp(a));
        let reached = views[needed - 1];
        let own = self.changing.as_ref().map_or(self.view, |c| c.target);
        if reached > own {
            self.start_view_change(now, reached);
        }
    }

    /// A peer voted in `view`, above this verifier's. `r + 1` peers voting in later views (so
    /// at least one correct one) show that a view change happened without this verifier: cut
    /// off with nothing to time out, it heard neither the requests nor the announcement. It
    /// asks for the lowest of those views that `r + 1` peers reached; their leader answers a
    /// request from an older view with its announcement (`on_view_change`), and the verifier
    /// enters the view and may vote in it.
    pub(super) fn on_vote_of_a_later_view(&mut self, now: Time, from: VerifierId, view: View) {
        let seen = self.later_votes.entry(from).or_insert(view);
        *seen = (*seen).max(view);
        let views: Vec<View> = self
            .later_votes
            .values()
            .copied()
            .filter(|&v| v > self.view)
            .collect();
        self.follow_enough_peers(now, views);
    }

    /// Whether a commit quorum formed here in the current view within the base view-change
    /// timeout (`2 * verify_timeout_ms`), and this verifier has not given up on it.
    fn making_progress(&self, now: Time) -> bool {
        self.changing.is_none()
            && self
                .progressed_at
                .is_some_and(|at| now < at.plus_ms(self.base_view_change_timeout_ms()))
    }

    /// Whether a request for `new_view` from a peer in `sender_view` that committed up to
    /// `sender_committed` comes from a peer left behind rather than one that found a fault in
    /// this view: it was made in an older view, or asks past the next view (a peer asks for
    /// the next view first, and further only after a quorum asked with it or after repeating
    /// its request in vain), or the peer is more than two pipelines behind this verifier (a
    /// batch without a token quorum, or one that did not commit in time, lies within a
    /// pipeline of the last committed batch; a peer merely behind asks its peers first).
    fn is_stale(&self, new_view: View, sender_view: View, sender_committed: BatchSeq) -> bool {
        sender_view < self.view || new_view > self.view.next() || self.left_behind(sender_committed)
    }

    /// Whether `seq` lies [`LEFT_BEHIND_PIPELINES`] pipelines or more below this verifier's
    /// last committed batch.
    fn left_behind(&self, seq: BatchSeq) -> bool {
        let pipelines = LEFT_BEHIND_PIPELINES * self.config.pipeline_depth as u64;
        seq.0.saturating_add(pipelines) <= self.committed.0
    }

    /// Whether execution replica `replica` sent no token for the last two pipelines of
    /// committed batches: cut off or slow, not a witness of this view's primary. A replica
    /// whose requests the primary ignores while the view goes on still executes and sends
    /// tokens, so its suspicion counts.
    fn is_left_behind(&self, replica: ReplicaId) -> bool {
        self.left_behind(self.tokens_heard[replica.0 as usize])
    }

    /// Where the current view starts, as its leader announced it: view 0 starts at the
    /// genesis, needing no announcement. A verifier still opening the view (its start not yet
    /// committed in it) knows the start too: without it, one that gave up on the view before
    /// it opened dropped its peers' word that the view goes on, and waited alone for the next
    /// view change.
    fn view_start_token(&self) -> Option<(BatchSeq, Token)> {
        if self.view == View(0) {
            return Some(GENESIS);
        }
        if let Some(opening) = self.opening {
            // `opening` is always of the current view: entering a view replaces it.
            return Some(opening);
        }
        self.entered
            .filter(|(view, _, _)| *view == self.view)
            .map(|(_, start, token)| (start, token))
    }

    /// Tells `to`, a peer in `its_view`, where the current view starts, so that it follows
    /// the view (`on_new_view`). A peer in an older view needs the leader's announcement to
    /// enter it (with its proof when `r >= 1`): only the leader sends it. A peer in this view
    /// that gave up on it needs only to hear that the view goes on: any verifier tells it,
    /// with a `NewView` of this view that it checks against the start it entered (so a peer
    /// cut off with the view's leader among those it cannot reach still comes back).
    fn tell_where_the_view_starts(&mut self, to: VerifierId, its_view: View) {
        let told = if its_view == self.view {
            self.view_start_token()
                .map(|(start, token)| Message::NewView {
                    view: self.view,
                    start,
                    token,
                    proof: Vec::new(),
                })
        } else if its_view < self.view && self.leader(self.view) == self.id {
            self.announced
                .clone()
                .filter(|m| matches!(m, Message::NewView { view, .. } if *view == self.view))
        } else {
            None
        };
        if let Some(told) = told {
            self.send(NodeId::Verifier(to), told);
        }
    }

    fn leader(&self, view: View) -> VerifierId {
        VerifierId((view.0 % self.sizes.n_ver as u64) as u32)
    }

    fn announce_new_view(&mut self, view: View) {
        if self
            .announced
            .as_ref()
            .is_some_and(|m| matches!(m, Message::NewView { view: v, .. } if *v >= view))
        {
            return;
        }
        let votes = &self.view_change_votes[&view];
        if self.proves() {
            let proof: Vec<ProvenViewChange> = votes
                .iter()
                .filter_map(|(&from, vote)| {
                    Some(ProvenViewChange {
                        from,
                        view: vote.view,
                        proof: (**vote.proof.as_ref()?).clone(),
                    })
                })
                .collect();
            let start = super::proof::start_of(proof.iter().map(|p| &p.proof.claims));
            let msg = Message::NewView {
                view,
                start: start.seq,
                token: start.token,
                proof,
            };
            self.announced = Some(msg.clone());
            self.send_verifiers(msg);
            return;
        }
        let (mut start, mut token) = votes
            .values()
            .map(|v| v.committed)
            .max_by_key(|(seq, _)| *seq)
            .expect("a quorum is not empty");
        // The lock of the highest view wins, the highest batch within it (Viewstamped
        // Replication's and PBFT's rule): a batch committed in view v was locked by a commit
        // quorum, which meets this quorum, and every later view started at or above it, so the
        // highest view's locks extend every committed batch. Never a choice by token bytes: a
        // correct quorum holds one token per (view, seq), and two are a fault beyond the model.
        let mut locks: std::collections::BTreeMap<
            (View, BatchSeq),
            std::collections::BTreeMap<Token, usize>,
        > = Default::default();
        // Only locks of the latest view any voter entered count: entering a view folded every
        // batch that may have committed before it into its start, so older locks above that
        // start (a verifier left behind in an older view reports them) are superseded.
        let latest = votes.values().map(|v| v.view).max().expect("not empty");
        let current = votes
            .values()
            .filter(|v| v.view == latest)
            .flat_map(|v| v.locked.iter())
            .filter(|lock| lock.view == latest);
        for lock in current {
            *locks
                .entry((lock.view, lock.seq))
                .or_default()
                .entry(lock.token)
                .or_default() += 1;
        }
        if let Some(((_, seq), tokens)) = locks.into_iter().next_back() {
            if tokens.len() > 1 {
                self.counters.conflicting_locks += 1;
            }
            let (locked, _) = tokens
                .into_iter()
                .max_by_key(|(_, reporters)| *reporters)
                .expect("a lock was reported");
            if seq > start {
                start = seq;
                token = locked;
            }
        }
        let msg = Message::NewView {
            view,
            start,
            token,
            proof: Vec::new(),
        };
        self.announced = Some(msg.clone());
        self.send_verifiers(msg);
    }

    pub(super) fn on_new_view(
        &mut self,
        now: Time,
        from: VerifierId,
        view: View,
        (start, token): (BatchSeq, Token),
        proof: Vec<ProvenViewChange>,
    ) {
        if view == self.view
            && self.changing.is_some()
            && self.view_start_token() == Some((start, token))
        {
            self.abandon_view_change(now);
            return;
        }
        if view <= self.view || from != self.leader(view) {
            self.counters
                .drops
                .count("new-view-stale-or-not-from-leader");
            return;
        }
        if self.proves() {
            match self.check_new_view(view, &proof) {
                Ok(proven) if (proven.seq, proven.token) == (start, token) => {}
                _ => {
                    self.refused("new-view-unproven");
                    return;
                }
            }
        }
        self.view = view;
        self.changing = None;
        self.failed_views = 0;
        self.progressed_at = None;
        self.slots.clear();
        self.learned.clear();
        self.view_change_votes.retain(|&v, _| v > view);
        self.suspects.retain(|&v, _| v >= view);
        self.later_votes.retain(|_, &mut v| v > view);
        self.counters.views_entered += 1;
        if start < self.committed {
            self.counters.drops.count("new-view-below-committed");
        }
        self.begin_opening(now, start, token);
    }

    /// A peer answered this verifier's request for another view with the start of the view
    /// it gave up: the view is making progress without it (it was cut off or slow). No proof
    /// is needed (the start is the one it entered, and going back lets it cast no vote; a
    /// lying peer only makes it ask again a timeout later). It goes back to the view instead
    /// of pulling the others out of it, but casts no vote in it (`may_vote`: its request
    /// reported its locks as they stood, and the others keep it for when the view fails). It
    /// ignored the view's votes while it was changing, so it asks its peers what committed
    /// meanwhile, and gives its pending batches a whole timeout again (their timers ran out:
    /// it would otherwise give up on the view again at once, be told again, and so on without
    /// time passing; seed 76 of `--mode 2,2`).
    fn abandon_view_change(&mut self, now: Time) {
        self.changing = None;
        self.failed_views = 0;
        self.counters.view_changes_abandoned += 1;
        for slot in self.slots.values_mut().filter(|s| s.committed.is_none()) {
            if slot.first_seen.is_some() {
                slot.first_seen = Some(now);
                slot.queried = false;
            }
        }
        self.ask_peers();
    }

    /// The view's start is committed again in the view before anyone is told of it (prepared
    /// and committed with `r >= 1`, committed with `r = 0`). Replicas roll back to the start
    /// only once a verifier quorum voted for it in this view, so every later view-change
    /// quorum holds a verifier that entered this view and reports the start as its lock: a
    /// lock of an older view above the start, which replicas gave up when they followed this
    /// view, can never outrank it again. Without this round, one verifier entering a view was
    /// enough to roll replicas back, and a later view whose quorum never heard of that view
    /// could start after an older lock no replica held any more: the cluster stalled (seed
    /// 11560 of `--mode 1,0`). With `r >= 1` it also makes every lock and commit of this view
    /// provable by votes of this view (a claim of a new view's start would otherwise need the
    /// whole `NewView` as proof, and that its own `ViewChange`s, without end).
    fn begin_opening(&mut self, now: Time, start: BatchSeq, token: Token) {
        self.opening = Some((start, token));
        let round = if self.proves() {
            Round::Prepare
        } else {
            Round::Commit
        };
        let slot = VSlot {
            sent_prepare: (round == Round::Prepare).then_some(token),
            sent_commit: (round == Round::Commit).then_some(token),
            first_seen: Some(now),
            ..VSlot::default()
        };
        self.slots.insert(start, slot);
        if self.may_vote() {
            let view = self.view;
            let vote = self.signed_vote(
                round,
                Lock {
                    view,
                    seq: start,
                    token,
                },
            );
            self.send_verifiers(vote);
        }
    }

    /// The view's start committed in the view: tell the execution replicas where the view
    /// starts.
    pub(super) fn open_view(&mut self) {
        let (start, token) = self.opening.take().expect("called while opening a view");
        let cert = self
            .slots
            .get_mut(&start)
            .and_then(|slot| slot.commit_cert.take());
        if start >= self.committed {
            self.settle(start, token, cert);
        } else {
            self.slots.remove(&start);
        }
        let view = self.view;
        self.entered = Some((view, start, token));
        self.send_replicas(Message::Verified {
            view,
            seq: start,
            token,
            sequential: true,
        });
        self.announce_commits();
    }
}
