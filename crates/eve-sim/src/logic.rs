//! The protocol logic of a simulated execution replica: an Eve replica, or one side of a
//! primary-backup pair. One interface, so the cluster drives both the same way.

use crate::report::RunReport;
use eve_agreement::{ExecEvent, Message, NodeId, Output, PbReplica, Replica, Time};
use eve_types::{BatchSeq, ReplicaId, ReplicationMode, ValidConfig};

/// An execution replica's logic.
pub enum Logic {
    /// Asynchronous Eve.
    Eve(Replica),
    /// Primary-backup.
    Pb(PbReplica),
}

impl Logic {
    /// A fresh replica for the configuration's mode.
    pub fn new(id: ReplicaId, config: &ValidConfig) -> Self {
        match config.mode {
            ReplicationMode::PrimaryBackup => Logic::Pb(PbReplica::new(id, config.clone())),
            ReplicationMode::Eve { .. } => Logic::Eve(Replica::new(id, config.clone())),
        }
    }

    /// A replica restarted with empty state; `nonce` differs from every earlier incarnation's.
    pub fn restart(id: ReplicaId, config: &ValidConfig, nonce: u64) -> Self {
        match config.mode {
            ReplicationMode::PrimaryBackup => Logic::Pb(PbReplica::restart(id, config.clone())),
            ReplicationMode::Eve { .. } => Logic::Eve(Replica::restart(id, config.clone(), nonce)),
        }
    }

    /// See [`Replica::handle_message`].
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message) {
        match self {
            Logic::Eve(r) => r.handle_message(now, from, msg),
            Logic::Pb(r) => r.handle_message(now, from, msg),
        }
    }

    /// See [`Replica::handle_exec_event`].
    pub fn handle_exec_event(&mut self, now: Time, event: ExecEvent) {
        match self {
            Logic::Eve(r) => r.handle_exec_event(now, event),
            Logic::Pb(r) => r.handle_exec_event(now, event),
        }
    }

    /// See [`Replica::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Time) {
        match self {
            Logic::Eve(r) => r.handle_timeout(now),
            Logic::Pb(r) => r.handle_timeout(now),
        }
    }

    /// See [`Replica::next_timeout`].
    pub fn next_timeout(&self) -> Option<Time> {
        match self {
            Logic::Eve(r) => r.next_timeout(),
            Logic::Pb(r) => r.next_timeout(),
        }
    }

    /// See [`Replica::poll_output`].
    pub fn poll_output(&mut self) -> Option<Output> {
        match self {
            Logic::Eve(r) => r.poll_output(),
            Logic::Pb(r) => r.poll_output(),
        }
    }

    /// The replica's view.
    pub fn view(&self) -> eve_types::View {
        match self {
            Logic::Eve(r) => r.view(),
            Logic::Pb(r) => r.view(),
        }
    }

    /// Batches this replica ordered as primary.
    pub fn batches_ordered(&self) -> u64 {
        match self {
            Logic::Eve(r) => r.counters().batches_ordered,
            Logic::Pb(r) => r.counters().batches_ordered,
        }
    }

    /// Whether the replica restarted and has not yet caught up to a committed state.
    pub fn lost_state(&self) -> bool {
        match self {
            Logic::Eve(r) => !r.holds_committed_state(),
            Logic::Pb(_) => false,
        }
    }

    /// The highest batch the replica executed or is executing (its committed batch in
    /// primary-backup).
    pub fn executing(&self) -> BatchSeq {
        match self {
            Logic::Eve(r) => r.executing(),
            Logic::Pb(r) => r.committed(),
        }
    }

    /// The roots of the last committed batch, where the replica keeps them (Eve).
    pub fn committed_roots(&self) -> Option<eve_agreement::Roots> {
        match self {
            Logic::Eve(r) => r.committed_roots(),
            Logic::Pb(_) => None,
        }
    }

    /// Why the replica cannot make progress, if it knows.
    pub fn stall_reason(&self) -> Option<String> {
        match self {
            Logic::Eve(r) => r.stall_reason(),
            Logic::Pb(_) => None,
        }
    }

    /// The last committed batch.
    pub fn committed(&self) -> BatchSeq {
        match self {
            Logic::Eve(r) => r.committed(),
            Logic::Pb(r) => r.committed(),
        }
    }

    /// A one-line summary of the state.
    pub fn describe(&self) -> String {
        match self {
            Logic::Eve(r) => r.describe(),
            Logic::Pb(r) => format!(
                "{} view {} primary {} committed {} stable {} alone {} transferring {} pending {}",
                r.id(),
                r.view(),
                r.primary(),
                r.committed(),
                r.stable(),
                r.is_alone(),
                r.is_transferring(),
                r.pending_requests()
            ),
        }
    }

    /// Adds the replica's counters to a report.
    pub fn report_to(&self, report: &mut RunReport) {
        match self {
            Logic::Eve(r) => report.add_replica(r.counters()),
            Logic::Pb(r) => report.add_pb(r.counters()),
        }
    }
}
