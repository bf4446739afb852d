//! A durable replica's journal: a write-ahead log of the batches it executed and checkpoints
//! of its stable versions, on a [`Disk`].
//!
//! The rule: a replica logs a batch (its requests, non-deterministic inputs and mode, the
//! objects its execution wrote, its replies, and the roots it produced) and syncs the log
//! before its token leaves. The verifiers
//! commit a batch only on a token quorum, so a committed batch lies in the logs of at least
//! one correct replica that executed it, whatever crashes afterwards, and so does every batch
//! before it; replies, released only at commit, never run ahead of the disk. One sync covers
//! every batch executed since the last (group commit: the node's execution thread syncs once
//! per burst of commands).
//!
//! At every checkpoint (`MarkStable`) and after a state transfer the replica writes the whole
//! state of that version ([`Snapshot`]) atomically as a new checkpoint file, keeps the
//! previous one, removes older ones, and rewrites the log without the batches the checkpoint
//! covers. Each checkpoint file carries a checksum and the roots of its version.
//!
//! On a restart ([`Journal::recover`]) the replica loads its newest checkpoint that is whole
//! and whose objects hash to its recorded root (falling back to the one before), then replays
//! the logged batches on it in log order, each by applying the objects it wrote, checking that
//! each produces the logged root; a batch logged again at a position it held already was
//! re-executed after a rollback, and the replay rolls back the same way. A batch that does
//! not follow the replayed state (its logged base root is not the state's: it was executed on
//! a version later rolled back) is skipped, and so is one whose writes do not produce its
//! logged root. Writes are replayed rather than requests re-executed: the
//! committed state is what the replicas' executions produced, and an application with a
//! concurrency bug (which Eve survives) may not produce it again. Only a batch whose writes
//! exceed [`LOGGED_WRITES_BYTES_MAX`] is logged without them and executed again, in the mode it
//! first ran in. What it proves is handed to the replica logic as executed
//! and uncommitted ([`crate::Replica::resume`]); the verifiers then say what of it committed,
//! and whatever the replica lacks it fetches by state transfer.

use crate::message::{Batch, Roots};
use eve_exec::{Application, ExecMode, Executor};
use eve_state::{Delta, Snapshot, StateStore};
use eve_storage::{Disk, DiskError, RecordLog, TailRepair};
use eve_types::{BatchSeq, Reply};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The log's file name.
pub const JOURNAL_LOG_FILE: &str = "batches.log";

/// Checkpoint files are named this, followed by their version in 20 digits.
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";

/// Checkpoints kept on disk: the newest and the one before it, to fall back to when the
/// newest is found damaged.
pub const CHECKPOINTS_KEPT: usize = 2;

/// Bytes of keys and values a batch's record carries at most; a batch that wrote more is
/// logged without its writes and executed again when it is replayed.
pub const LOGGED_WRITES_BYTES_MAX: usize = 8 << 20;

/// One record of the log. Borrowed when written (the batch and its replies stay with the
/// executor), owned when read back.
#[derive(Serialize, Deserialize)]
struct Logged<'a> {
    batch: Cow<'a, Batch>,
    roots: Roots,
    /// What the batch wrote, unless that exceeded [`LOGGED_WRITES_BYTES_MAX`].
    writes: Option<Delta>,
    replies: Cow<'a, [Reply]>,
}

/// A checkpoint file's content, after its checksum.
#[derive(Serialize, Deserialize)]
struct CheckpointFile {
    /// The roots of the batch that produced the version (none for version 0).
    roots: Option<Roots>,
    snapshot: Snapshot,
}

/// What a journal did, for reports and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalCounters {
    /// Batches logged.
    pub records: u64,
    /// Bytes of records logged.
    pub record_bytes: u64,
    /// Syncs of the log (each covering every batch logged since the one before).
    pub syncs: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

/// A batch a restarted replica replayed from its log and proved (its execution produced the
/// logged roots again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayedBatch {
    /// The batch.
    pub batch: Batch,
    /// The roots its execution produced.
    pub roots: Roots,
    /// Its replies.
    pub replies: Vec<Reply>,
}

/// What a restarted replica found on its disk and proved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The checkpoint loaded, with the roots of the batch that produced it (none for version
    /// 0); `None` if no checkpoint could be loaded: the state is lost and the replica must
    /// fetch it from its peers.
    pub checkpoint: Option<(BatchSeq, Option<Roots>)>,
    /// The batches replayed on it, in order.
    pub replayed: Vec<ReplayedBatch>,
    /// Checkpoints refused, newest first, with why.
    pub refused: Vec<String>,
    /// The log's tail that was cut (torn or corrupted), if any.
    pub tail: Option<TailRepair>,
    /// Why the replay stopped before the end of the log, if it did (a record that does not
    /// decode).
    pub replay_stopped: Option<String>,
    /// Logged batches skipped: executed on a version the replay does not hold (another chain,
    /// left by a rollback), or not proven.
    pub skipped: u64,
    /// Why the last batch that chained on the replayed state could not be proven, if one
    /// could not.
    pub unproven: Option<String>,
}

/// Why a journal could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The disk failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A journal was asked to start afresh on a disk that holds one.
    #[error("the data directory already holds a replica's journal (checkpoint {0}): recover it")]
    NotEmpty(BatchSeq),
}

/// A durable replica's log and checkpoints (see the module documentation).
pub struct Journal {
    disk: Box<dyn Disk + Send>,
    log: RecordLog,
    /// The records above the newest checkpoint, to rewrite the log without the rest.
    records: Vec<(BatchSeq, Vec<u8>)>,
    /// The roots of the versions executed or imported above the newest checkpoint.
    roots: BTreeMap<BatchSeq, Roots>,
    /// The newest checkpoint's version.
    checkpoint: BatchSeq,
    counters: JournalCounters,
}

fn checkpoint_name(version: BatchSeq) -> String {
    format!("{CHECKPOINT_PREFIX}{:020}", version.0)
}

/// The checkpoints on `disk`, newest first.
fn checkpoints(disk: &dyn Disk) -> Result<Vec<(BatchSeq, String)>, DiskError> {
    let mut found: Vec<(BatchSeq, String)> = disk
        .list()?
        .into_iter()
        .filter_map(|name| {
            let digits = name.strip_prefix(CHECKPOINT_PREFIX)?;
            Some((BatchSeq(digits.parse().ok()?), name))
        })
        .collect();
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Reads and checks one checkpoint file: whole, its checksum matching, its objects hashing to
/// its recorded root. Returns the restored store and the roots of its version.
fn load_checkpoint(
    disk: &dyn Disk,
    name: &str,
    version: BatchSeq,
    config: eve_state::StateConfig,
) -> Result<(StateStore, Option<Roots>), String> {
    let bytes = disk
        .read(name)
        .map_err(|e| e.to_string())?
        .ok_or("it is gone")?;
    let body = eve_storage::checked(&bytes).map_err(|e| e.to_string())?;
    let file: CheckpointFile =
        postcard::from_bytes(body).map_err(|e| format!("it does not decode: {e}"))?;
    if file.snapshot.version != version {
        return Err(format!(
            "it holds version {} under the name of {version}",
            file.snapshot.version
        ));
    }
    if let Some(roots) = file.roots
        && roots.new_root != file.snapshot.root
    {
        return Err("its roots do not match its state".into());
    }
    let store = StateStore::restore(config, &file.snapshot, file.snapshot.root)
        .map_err(|e| format!("its objects do not make its root: {e}"))?;
    Ok((store, file.roots))
}

/// Replays a batch logged without its writes by executing it again in the mode it first ran
/// in; it must produce the logged roots.
fn execute_again<A: Application>(
    executor: &mut Executor<A>,
    batch: &Batch,
    roots: Roots,
) -> Result<(), String> {
    let seq = batch.seq;
    let mode = if batch.sequential {
        ExecMode::Sequential
    } else {
        ExecMode::Parallel
    };
    let outcome = executor
        .execute(seq, &batch.requests, batch.nondet, mode)
        .map_err(|err| format!("batch {seq} failed: {err}"))?;
    if outcome.previous_root == roots.prev_root && outcome.new_root == roots.new_root {
        return Ok(());
    }
    let base = seq.prev().expect("replayed batches follow a version");
    executor
        .rollback(base)
        .expect("the version below a replayed batch is held");
    Err(format!(
        "batch {seq} executed again to another state than it first produced"
    ))
}

/// The newest checkpoint on `disk` that is whole and makes its root, as a snapshot of its
/// version's objects (for an operator to move a state to another cluster); the checkpoints
/// refused on the way, with why, come back too.
pub fn newest_snapshot(
    disk: &dyn Disk,
    config: eve_state::StateConfig,
) -> Result<(Option<Snapshot>, Vec<String>), DiskError> {
    let mut refused = Vec::new();
    for (version, name) in checkpoints(disk)? {
        match load_checkpoint(disk, &name, version, config) {
            Ok((store, _)) => {
                let snapshot = store
                    .snapshot(version)
                    .expect("a restored store holds its version");
                return Ok((Some(snapshot), refused));
            }
            Err(why) => refused.push(format!("{name}: {why}")),
        }
    }
    Ok((None, refused))
}

impl Journal {
    /// Starts a journal on an empty data directory, with a checkpoint of `state`'s last sealed
    /// version (a new replica's initial state, version 0).
    pub fn create(
        mut disk: Box<dyn Disk + Send>,
        state: &StateStore,
    ) -> Result<Self, JournalError> {
        if let Some(&(version, _)) = checkpoints(disk.as_ref())?.first() {
            return Err(JournalError::NotEmpty(version));
        }
        let log = RecordLog::open(disk.as_mut(), JOURNAL_LOG_FILE)?.log;
        let mut journal = Self {
            disk,
            log,
            records: Vec::new(),
            roots: BTreeMap::new(),
            checkpoint: BatchSeq(0),
            counters: JournalCounters::default(),
        };
        journal.write_checkpoint(state, state.sealed_version(), None)?;
        Ok(journal)
    }

    /// Opens the journal on `disk` after a restart: loads the newest sound checkpoint into
    /// `executor` (replacing its state) and replays the log on it (see the module
    /// documentation). With no sound checkpoint the executor's state is left as it was and
    /// [`Recovered::checkpoint`] is `None`.
    pub fn recover<A: Application>(
        mut disk: Box<dyn Disk + Send>,
        executor: &mut Executor<A>,
    ) -> Result<(Self, Recovered), DiskError> {
        let mut recovered = Recovered::default();
        let config = executor.state().config();
        for (version, name) in checkpoints(disk.as_ref())? {
            match load_checkpoint(disk.as_ref(), &name, version, config) {
                Ok((store, roots)) => {
                    *executor.state_mut() = store;
                    recovered.checkpoint = Some((version, roots));
                    break;
                }
                Err(why) => recovered.refused.push(format!("{name}: {why}")),
            }
        }
        let opened = RecordLog::open(disk.as_mut(), JOURNAL_LOG_FILE)?;
        recovered.tail = opened.repair;
        let mut journal = Self {
            disk,
            log: opened.log,
            records: Vec::new(),
            roots: BTreeMap::new(),
            checkpoint: BatchSeq(0),
            counters: JournalCounters::default(),
        };
        let Some((version, roots)) = recovered.checkpoint else {
            // Nothing to replay on: the log is of no use; the state will come from peers.
            journal.log.rewrite(journal.disk.as_mut(), [])?;
            return Ok((journal, recovered));
        };
        journal.checkpoint = version;
        if let Some(roots) = roots {
            journal.roots.insert(version, roots);
        }
        journal.replay(executor, opened.records, &mut recovered);
        // The log keeps exactly the records the replay proved.
        let kept: Vec<(BatchSeq, Vec<u8>)> = std::mem::take(&mut journal.records);
        journal
            .log
            .rewrite(journal.disk.as_mut(), kept.iter().map(|(_, r)| &r[..]))?;
        journal.records = kept;
        Ok((journal, recovered))
    }

    fn replay<A: Application>(
        &mut self,
        executor: &mut Executor<A>,
        records: Vec<Vec<u8>>,
        recovered: &mut Recovered,
    ) {
        let stable = self.checkpoint;
        for record in records {
            let Ok(Logged {
                batch,
                roots,
                writes,
                replies,
            }) = postcard::from_bytes::<Logged>(&record)
            else {
                recovered.replay_stopped = Some("a record that does not decode".into());
                return;
            };
            let seq = batch.seq;
            if seq <= stable {
                continue;
            }
            let base = seq.prev().expect("above the checkpoint");
            let sealed = executor.state().sealed_version();
            // A batch executed on a version this replay does not hold (one rolled back before
            // a state transfer or a checkpoint, or past a record that could not be proven)
            // belongs to another chain: it is skipped.
            let on_chain = base <= sealed
                && executor
                    .state()
                    .root_of(base)
                    .is_ok_and(|root| root == roots.prev_root);
            if !on_chain {
                recovered.skipped += 1;
                continue;
            }
            if base < sealed {
                // Executed again after a rollback.
                executor
                    .rollback(base)
                    .expect("versions above the checkpoint are held");
                recovered.replayed.retain(|b| b.batch.seq <= base);
                self.records.retain(|(s, _)| *s <= base);
                self.roots.retain(|&s, _| s <= base);
            }
            let proven = match &writes {
                Some(delta) if delta.from == base && delta.to == seq => executor
                    .state_mut()
                    .import_delta(delta, roots.new_root)
                    .map_err(|err| format!("batch {seq}'s writes do not make its root: {err}")),
                Some(_) => Err(format!("batch {seq}'s writes are of other versions")),
                None => execute_again(executor, &batch, roots),
            };
            if let Err(why) = proven {
                // The state is back at `base`: what follows on this chain is skipped.
                recovered.skipped += 1;
                recovered.unproven = Some(why);
                continue;
            }
            self.roots.insert(seq, roots);
            self.records.push((seq, record));
            recovered.replayed.push(ReplayedBatch {
                batch: batch.into_owned(),
                roots,
                replies: replies.into_owned(),
            });
        }
    }

    /// Logs `batch`, just executed on `state` to `roots` with `replies`; durable at the next
    /// [`sync`](Self::sync), which must come before its token leaves.
    pub fn executed(
        &mut self,
        batch: &Batch,
        roots: Roots,
        replies: &[Reply],
        state: &StateStore,
    ) -> Result<(), DiskError> {
        let writes = batch.seq.prev().and_then(|base| {
            state
                .export_delta(base, batch.seq, LOGGED_WRITES_BYTES_MAX)
                .ok()
        });
        let record = postcard::to_allocvec(&Logged {
            batch: Cow::Borrowed(batch),
            roots,
            writes,
            replies: Cow::Borrowed(replies),
        })
        .expect("batches encode");
        self.log.append(self.disk.as_mut(), &record)?;
        self.counters.records += 1;
        self.counters.record_bytes += record.len() as u64;
        self.roots.insert(batch.seq, roots);
        self.records.push((batch.seq, record));
        Ok(())
    }

    /// The state was rolled back to `to`: the roots of what it undid no longer hold. (The log
    /// keeps the undone batches; a replay rolls back where a batch was logged again.)
    pub fn rolled_back(&mut self, to: BatchSeq) {
        self.roots.retain(|&s, _| s <= to);
    }

    /// Makes every batch logged so far durable: one sync for all of them.
    pub fn sync(&mut self) -> Result<(), DiskError> {
        if self.log.is_dirty() {
            self.log.sync(self.disk.as_mut())?;
            self.counters.syncs += 1;
        }
        Ok(())
    }

    /// `version` became stable: writes its checkpoint (if its roots are known) and drops what
    /// it covers from the log.
    pub fn stable(&mut self, state: &StateStore, version: BatchSeq) -> Result<(), DiskError> {
        if version <= self.checkpoint {
            return Ok(());
        }
        let Some(&roots) = self.roots.get(&version) else {
            // A version this journal never saw executed or imported: no checkpoint of it.
            return Ok(());
        };
        self.write_checkpoint(state, version, Some(roots))
    }

    /// The state was replaced by a transfer of `version` with `roots` (agreed): checkpoints
    /// it, and drops the whole log (its batches were executed on another state).
    pub fn imported(
        &mut self,
        state: &StateStore,
        version: BatchSeq,
        roots: Roots,
    ) -> Result<(), DiskError> {
        self.records.clear();
        self.roots.clear();
        self.roots.insert(version, roots);
        self.write_checkpoint(state, version, Some(roots))
    }

    fn write_checkpoint(
        &mut self,
        state: &StateStore,
        version: BatchSeq,
        roots: Option<Roots>,
    ) -> Result<(), DiskError> {
        let snapshot = state
            .snapshot(version)
            .expect("checkpoints are taken of held versions");
        let body =
            postcard::to_allocvec(&CheckpointFile { roots, snapshot }).expect("checkpoints encode");
        self.disk.write_atomic(
            &checkpoint_name(version),
            &eve_storage::with_checksum(&body),
        )?;
        self.counters.checkpoints += 1;
        self.checkpoint = version;
        self.records.retain(|(s, _)| *s > version);
        self.roots.retain(|&s, _| s >= version);
        self.log
            .rewrite(self.disk.as_mut(), self.records.iter().map(|(_, r)| &r[..]))?;
        for (old, name) in checkpoints(self.disk.as_ref())?
            .into_iter()
            .skip(CHECKPOINTS_KEPT)
        {
            debug_assert!(old < version);
            self.disk.remove(&name)?;
        }
        Ok(())
    }

    /// What the journal did so far.
    pub fn counters(&self) -> &JournalCounters {
        &self.counters
    }
}
