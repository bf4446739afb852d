//! Restarting without memory. A replica that crashed may have ordered batches as primary in
//! the views it led; after a restart it does not remember them, and ordering again in such a
//! view could give one sequence number two batches (in effect, equivocation). So it asks the
//! verifiers, and orders nothing until a verifier quorum (`u + r + 1`) answered with the highest
//! view each is in or moving to: a view it led was entered by verifiers after a view-change
//! quorum asked for it, that quorum meets the answering one, so the highest answer is at least
//! every view it led. It never leads that view or an older one: as the primary of such a view
//! it suspects itself, and the verifiers move on to a view it may lead.

use super::{LeadFloor, Replica};
use crate::message::Message;
use crate::time::Time;
use eve_types::{VerifierId, View};

impl Replica {
    /// Whether this replica may order batches in its current view.
    pub(super) fn may_lead(&self) -> bool {
        match &self.lead_floor {
            LeadFloor::Any => true,
            LeadFloor::Recovering { .. } => false,
            LeadFloor::Above(floor) => self.view > *floor,
        }
    }

    /// Asks the verifiers again while the answers are not in (they may have been lost).
    pub(super) fn ask_recovery(&mut self) {
        if let LeadFloor::Recovering { nonce, .. } = self.lead_floor {
            self.send_verifiers(Message::Recover { nonce });
        }
    }

    pub(super) fn on_recover_reply(&mut self, now: Time, from: VerifierId, nonce: u64, view: View) {
        let quorum = self.sizes.verifier_quorum;
        let LeadFloor::Recovering {
            nonce: expected,
            answers,
        } = &mut self.lead_floor
        else {
            self.counters.drops.count("recovery-answer-unasked");
            return;
        };
        if nonce != *expected {
            self.counters
                .drops
                .count("recovery-answer-of-another-incarnation");
            return;
        }
        answers.insert(from, view);
        if answers.len() < quorum {
            return;
        }
        let floor = answers.values().copied().max().unwrap_or(View(0));
        self.lead_floor = LeadFloor::Above(floor);
        self.counters.recoveries += 1;
        self.decline_if_primary(now);
        self.cut_batches(now, false);
    }

    /// As the primary of a view it may not lead, the replica asks the verifiers to move on.
    /// Repeated at every catch-up round, since a suspicion can be lost.
    pub(super) fn decline_if_primary(&mut self, now: Time) {
        if !self.is_primary() || self.may_lead() || self.is_recovering() {
            return;
        }
        self.counters.views_declined += 1;
        self.counters.suspicions += 1;
        let view = self.view;
        self.send_verifiers(Message::Suspect { view });
        self.arm_progress(now);
    }
}
