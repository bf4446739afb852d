//! Who is who in a cluster, and what the logic emits.

use crate::exec_side::ExecCommand;
use crate::message::Message;
use eve_types::{ClientId, ReplicaId, VerifierId};
use std::collections::BTreeMap;
use std::fmt;

/// A participant: an execution replica, a verifier or a client.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    /// An execution replica.
    Replica(ReplicaId),
    /// A verifier.
    Verifier(VerifierId),
    /// A client.
    Client(ClientId),
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Replica(id) => write!(f, "{id}"),
            NodeId::Verifier(id) => write!(f, "{id}"),
            NodeId::Client(id) => write!(f, "{id}"),
        }
    }
}

/// An effect of the protocol logic, for the driver to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a message.
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Hand a command to this replica's execution side (in order).
    Exec(ExecCommand),
}

/// Messages dropped, by reason: a misbehaving or confused peer is counted, never a panic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    by_reason: BTreeMap<&'static str, u64>,
}

impl Drops {
    /// Counts one message dropped for `reason`.
    pub fn count(&mut self, reason: &'static str) {
        *self.by_reason.entry(reason).or_default() += 1;
    }

    /// Drops so far for `reason`.
    pub fn get(&self, reason: &str) -> u64 {
        self.by_reason.get(reason).copied().unwrap_or(0)
    }

    /// Every reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.by_reason.iter().map(|(r, n)| (*r, *n))
    }

    /// Drops for every reason.
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
}
