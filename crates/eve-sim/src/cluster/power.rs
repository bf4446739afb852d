//! Disks and power. In a durable run every replica keeps its journal and every verifier its
//! memory on a simulated disk of its own. A node that goes down keeps what it synced and a
//! seeded prefix of what it did not (a torn last write); a node that comes back restarts from
//! its disk. The power fails everywhere at once, as often as the scenario says: every node
//! goes down at the same instant and comes back after a short outage, some of them with a disk
//! lost or damaged (within the faults the configuration tolerates).

use super::{Cluster, Event, Role};
use crate::app::SimApp;
use crate::report::RunReport;
use eve_agreement::journal::{Journal, Recovered};
use eve_agreement::verifier_store::{OpenedStore, VerifierStore};
use eve_agreement::{NodeId, ReplicaExecutor, ReplicaLogic, Time, Verifier, VerifierMemory};
use eve_storage::{Disk, SharedDisk, SimDisk};
use eve_types::{BatchSeq, ReplicaId, Request, VerifierId};
use std::collections::BTreeMap;

/// A simulated disk's capacity: large enough never to fill in a run.
pub(super) const DISK_BYTES: u64 = 1 << 40;

/// How long the power stays off, at most, in milliseconds.
const OUTAGE_MS_MAX: u64 = 400;

/// Simulated time a sync of the log takes, in microseconds: a batch's token waits for it.
pub(super) const SYNC_COST_US: u64 = 200;

/// A new simulated disk, shared between the node and the power switch.
pub(super) fn new_disk() -> SharedDisk<SimDisk> {
    SharedDisk::new(SimDisk::new(DISK_BYTES))
}

/// A restarted replica's execution side and logic, with the requests of the batches it
/// replayed (for the reference check).
pub(super) type Recovery = (
    ReplicaExecutor<SimApp>,
    ReplicaLogic,
    BTreeMap<BatchSeq, Vec<Request>>,
);

/// Counts what opening a log found.
fn count_tail(tail: Option<&eve_storage::TailRepair>, report: &mut RunReport) {
    match tail {
        Some(t) if t.corrupt => report.counts.corruptions_found += 1,
        Some(_) => report.counts.torn_tails += 1,
        None => {}
    }
}

impl Cluster {
    /// Schedules the power failures of a durable run.
    pub(super) fn schedule_power_failures(&mut self, heal: Time) {
        for _ in 0..self.scenario.faults.power_failures {
            let at = Time(self.rng.below(heal.0.max(1)));
            self.schedule(at, Event::PowerFailure);
        }
    }

    /// The power fails everywhere: every node that is up goes down at once, and one of them
    /// may lose or damage its disk; the power comes back after a short outage.
    pub(super) fn power_failure(&mut self) {
        self.report.counts.power_failures += 1;
        // Whether a disk may be lost is judged on the cluster as it stands when the power
        // fails: once every node is down, no replica counts as executing anything, so a
        // replica that restarted and had not caught up with the latest executed batch no
        // longer counted as faulty, and a second replica's disk could be lost beyond the
        // budget (seed 54945 of `--mode 1,1` at `6255572`: the only copy of a view's start
        // was lost and the liveness check failed).
        let may_strike: Vec<Role> = [Role::Replica, Role::Verifier]
            .into_iter()
            .filter(|&role| self.may_strike(role))
            .collect();
        for i in 0..self.replicas.len() as u32 {
            if self.replicas[i as usize].up {
                self.take_down(NodeId::Replica(ReplicaId(i)));
            }
        }
        for i in 0..self.verifiers.len() as u32 {
            if self.verifiers[i as usize].up {
                self.take_down(NodeId::Verifier(VerifierId(i)));
            }
        }
        if self.scenario.faults.disk_faults {
            self.damage_a_disk(&may_strike);
        }
        let outage = 1 + self.rng.below(OUTAGE_MS_MAX);
        let at = self.now.plus_ms(outage);
        self.schedule(at, Event::PowerRestored);
    }

    /// The power is back: every node that went down with it restarts from its disk (nodes a
    /// crash fault holds come back when that fault ends, and a verifier crashed for good
    /// never does).
    pub(super) fn power_restored(&mut self) {
        let held: Vec<NodeId> = self
            .slots
            .iter()
            .filter_map(|s| match s.active {
                Some((crate::scenario::FaultKind::CrashRestart, node)) => Some(node),
                _ => None,
            })
            .collect();
        for i in 0..self.replicas.len() as u32 {
            let id = ReplicaId(i);
            if !self.replicas[i as usize].up && !held.contains(&NodeId::Replica(id)) {
                self.restart(id);
            }
        }
        for i in 0..self.verifiers.len() as u32 {
            let id = VerifierId(i);
            if !held.contains(&NodeId::Verifier(id)) {
                self.restart_verifier(id);
            }
        }
    }

    /// One node, of a role whose fault budget allowed it when the power failed (`may_strike`),
    /// loses its disk or finds a byte of one of its files corrupted. It then counts as faulty
    /// until it has recovered.
    fn damage_a_disk(&mut self, may_strike: &[Role]) {
        let role = if self.rng.below(2) == 0 {
            Role::Replica
        } else {
            Role::Verifier
        };
        if !may_strike.contains(&role) {
            return;
        }
        let candidates: Vec<usize> = match role {
            Role::Replica => (0..self.replicas.len())
                .filter(|&i| !self.is_fixed_faulty(i))
                .collect(),
            Role::Verifier => (0..self.verifiers.len())
                .filter(|&i| !self.verifiers[i].dead && !self.is_lying_verifier(i))
                .collect(),
        };
        if candidates.is_empty() {
            return;
        }
        let pick = candidates[self.rng.below(candidates.len() as u64) as usize];
        let node = match role {
            Role::Replica => NodeId::Replica(ReplicaId(pick as u32)),
            Role::Verifier => NodeId::Verifier(VerifierId(pick as u32)),
        };
        let Some(disk) = self.disk_of(node) else {
            return;
        };
        self.damaged.insert(node);
        let mut disk = disk.lock();
        if self.rng.below(2) == 0 {
            disk.wipe();
            self.report.counts.disks_lost += 1;
            return;
        }
        let files: Vec<(String, usize)> = disk
            .list()
            .expect("a simulated disk lists its files")
            .into_iter()
            .filter_map(|name| {
                let len = disk.read(&name).ok()??.len();
                (len > 0).then_some((name, len))
            })
            .collect();
        if files.is_empty() {
            return;
        }
        let (name, len) = &files[self.rng.below(files.len() as u64) as usize];
        let offset = self.rng.below(*len as u64) as usize;
        disk.corrupt(name, offset);
    }

    /// Whether replica `index` is faulty from the start (Byzantine, or the one whose
    /// application corrupts its state or whose mixer misses conflicts).
    pub(super) fn is_fixed_faulty(&self, index: usize) -> bool {
        let faults = &self.scenario.faults;
        self.replicas[index].byzantine.is_some()
            || (index == 0 && (faults.corrupt_ppm > 0 || faults.missed_conflict_ppm > 0))
    }

    /// Whether verifier `index` is the Byzantine one.
    fn is_lying_verifier(&self, index: usize) -> bool {
        self.scenario.faults.byzantine_verifier.is_some()
            && self.scenario.faults.byzantine_verifier_id as usize == index
    }

    /// A replica or verifier goes down; its disk keeps what was synced and a seeded prefix
    /// of the rest.
    pub(super) fn take_down(&mut self, node: NodeId) {
        self.report.counts.crashes += 1;
        // Drawn only for a disk, so that runs in memory draw what they always drew.
        let disk = self.disk_of(node);
        let seed = disk.as_ref().map_or(0, |_| self.rng.next_u64());
        match node {
            NodeId::Replica(id) => self.replicas[id.0 as usize].up = false,
            NodeId::Verifier(id) => {
                let verifier = &mut self.verifiers[id.0 as usize];
                verifier.up = false;
                verifier.store = None;
            }
            NodeId::Client(_) => unreachable!("clients do not crash"),
        }
        if let Some(disk) = disk {
            disk.lock().crash(seed);
        }
    }

    /// A durable replica after a restart from its disk; `None` for a replica without one.
    pub(super) fn recover_replica(
        &mut self,
        id: ReplicaId,
        incarnation: u64,
        nonce: u64,
    ) -> Option<Recovery> {
        let disk = self.replicas[id.0 as usize].disk.clone()?;
        let mut exec = super::new_executor(&self.scenario, &self.config, id, incarnation);
        let (journal, recovered) = Journal::recover(Box::new(disk), exec.executor_mut())
            .expect("a simulated disk does not fail");
        self.count_recovery(&recovered);
        self.note(format!(
            "{id} recovered: checkpoint {:?}, replayed {:?}, skipped {}, refused {:?}, tail {:?}, stopped {:?}, unproven {:?}",
            recovered.checkpoint.map(|(seq, _)| seq),
            recovered.replayed.iter().map(|b| b.batch.seq.0).collect::<Vec<_>>(),
            recovered.skipped,
            recovered.refused,
            recovered.tail,
            recovered.replay_stopped,
            recovered.unproven,
        ));
        let exec = exec.with_journal(journal);
        let logic = ReplicaLogic::resume(id, &self.config, nonce, &recovered)
            .with_request_verifier(self.auth.clone());
        let executed = recovered
            .replayed
            .iter()
            .map(|b| (b.batch.seq, b.batch.requests.clone()))
            .collect();
        Some((exec, logic, executed))
    }

    fn count_recovery(&mut self, recovered: &Recovered) {
        let counts = &mut self.report.counts;
        counts.checkpoints_loaded += u64::from(recovered.checkpoint.is_some());
        counts.batches_replayed += recovered.replayed.len() as u64;
        counts.corruptions_found += recovered.refused.len() as u64;
        count_tail(recovered.tail.as_ref(), &mut self.report);
    }

    /// A durable verifier after a restart: resumed from the memory on its disk, or, if the
    /// disk holds none it can trust, recovering from its peers; `None` without a disk.
    pub(super) fn recover_verifier(&mut self, id: VerifierId, nonce: u64) -> Option<Verifier> {
        let disk = self.verifiers[id.0 as usize].disk.clone()?;
        let OpenedStore {
            store,
            memory,
            tail,
        } = VerifierStore::open(Box::new(disk), id).expect("a simulated disk does not fail");
        count_tail(tail.as_ref(), &mut self.report);
        self.note(format!(
            "{id} recovered: memory {:?}, tail {tail:?}",
            memory
                .as_ref()
                .map(|m| (m.view, m.committed.0, m.votes.len()))
        ));
        self.verifiers[id.0 as usize].store = Some(store);
        let verifier = match memory {
            Some(memory) => {
                self.report.counts.verifier_resumes += 1;
                Verifier::resume(id, self.config.clone(), memory, self.now)
            }
            None => Verifier::restart(id, self.config.clone(), nonce),
        };
        Some(
            verifier
                .with_auth(self.verifier_auth[id.0 as usize].clone())
                .with_durable_memory(),
        )
    }

    /// Writes a verifier's memory (synced before its next message leaves); returns whether
    /// it could. One that cannot (its disk is full) stops: it is down until its disk has room
    /// again and it restarts.
    pub(super) fn persist(&mut self, id: VerifierId, memory: &VerifierMemory) -> bool {
        let store = self.verifiers[id.0 as usize]
            .store
            .as_mut()
            .expect("a durable verifier has a store");
        if store.write(memory).is_ok() {
            return true;
        }
        self.halt_verifier(id);
        false
    }

    /// Syncs a verifier's memory before a message leaves; returns whether the message may
    /// leave.
    pub(super) fn sync_memory(&mut self, id: VerifierId) -> bool {
        let Some(store) = &mut self.verifiers[id.0 as usize].store else {
            return true;
        };
        if !store.is_dirty() {
            return true;
        }
        if store.sync().is_err() {
            self.halt_verifier(id);
            return false;
        }
        self.report.counts.disk_syncs += 1;
        true
    }

    /// A verifier whose disk failed stops.
    fn halt_verifier(&mut self, id: VerifierId) {
        self.report.counts.disk_full_halts += 1;
        self.take_down(NodeId::Verifier(id));
    }

    /// `node`'s disk, in a durable run.
    fn disk_of(&self, node: NodeId) -> Option<SharedDisk<SimDisk>> {
        match node {
            NodeId::Replica(id) => self.replicas[id.0 as usize].disk.clone(),
            NodeId::Verifier(id) => self.verifiers[id.0 as usize].disk.clone(),
            NodeId::Client(_) => None,
        }
    }

    /// Fills `node`'s disk: nothing more can be written to it.
    pub(super) fn fill_disk(&mut self, node: NodeId) {
        if let Some(disk) = self.disk_of(node) {
            let mut disk = disk.lock();
            let used = disk.used();
            disk.set_capacity(used);
        }
    }

    /// Frees `node`'s disk, and restarts the node from it (what an operator does after
    /// making room).
    pub(super) fn free_disk(&mut self, node: NodeId) {
        if let Some(disk) = self.disk_of(node) {
            disk.lock().set_capacity(DISK_BYTES);
        }
        match node {
            NodeId::Replica(id) => {
                let halted = self.replicas[id.0 as usize].exec.halted().is_some();
                self.report.counts.disk_full_halts += u64::from(halted);
                if self.replicas[id.0 as usize].up {
                    self.take_down(node);
                }
                self.restart(id);
            }
            NodeId::Verifier(id) => self.restart_verifier(id),
            NodeId::Client(_) => {}
        }
    }
}
