//! A durable replica's journal: what it logged and synced survives a crash, a torn or
//! corrupted tail is cut, a damaged checkpoint is refused for an older one, and a restarted
//! replica's state is proven batch by batch against the roots its execution first produced.

use bytes::Bytes;
use eve_agreement::journal::{CHECKPOINT_PREFIX, Journal, Recovered};
use eve_agreement::{Batch, ExecCommand, ExecEvent, ReplicaExecutor};
use eve_apps::{KvOp, KvStore};
use eve_exec::{Executor, InlineRunner};
use eve_mixer::GreedyMixer;
use eve_state::{StateConfig, StateStore};
use eve_storage::{Disk, SharedDisk, SimDisk};
use eve_types::{BatchSeq, ClientId, Digest, NonDet, Request, RequestNo, View};

fn config() -> StateConfig {
    StateConfig::new(4, 1 << 16).unwrap()
}

fn executor() -> Executor<KvStore> {
    Executor::new(
        KvStore,
        StateStore::new(config()),
        Box::new(GreedyMixer),
        Box::new(InlineRunner),
    )
}

fn durable(disk: &SharedDisk<SimDisk>) -> ReplicaExecutor<KvStore> {
    let executor = executor();
    let journal = Journal::create(Box::new(disk.clone()), executor.state()).unwrap();
    ReplicaExecutor::new(executor).with_journal(journal)
}

fn recover(disk: &SharedDisk<SimDisk>) -> (ReplicaExecutor<KvStore>, Recovered) {
    let mut executor = executor();
    let (journal, recovered) = Journal::recover(Box::new(disk.clone()), &mut executor).unwrap();
    (
        ReplicaExecutor::new(executor).with_journal(journal),
        recovered,
    )
}

/// Batch `seq`: a put and a counter increment from each of two clients.
fn batch(seq: u64, tag: &str) -> Batch {
    let requests = (1..=2u64)
        .flat_map(|c| {
            let put = KvOp::Put {
                key: Bytes::from(format!("k{c}")),
                value: Bytes::from(format!("{tag}{seq}")),
            };
            [(c, put)]
        })
        .map(|(c, op)| Request {
            client: ClientId(c),
            request_no: RequestNo(seq),
            op: op.encode(),
            signature: None,
        })
        .collect();
    Batch {
        view: View(0),
        seq: BatchSeq(seq),
        requests,
        nondet: NonDet {
            time_ms: seq,
            seed: seq,
        },
        sequential: false,
    }
}

fn execute(exec: &mut ReplicaExecutor<KvStore>, batch: Batch) -> Digest {
    let events = exec.apply(ExecCommand::Execute { epoch: 0, batch });
    match events.as_slice() {
        [ExecEvent::Executed { roots, .. }] => roots.new_root,
        other => panic!("expected the batch's result, got {other:?}"),
    }
}

#[test]
fn a_restarted_replica_replays_every_batch_it_synced_and_proves_each() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    let mut roots = Vec::new();
    for seq in 1..=5 {
        roots.push(execute(&mut exec, batch(seq, "v")));
        if seq == 2 {
            exec.apply(ExecCommand::MarkStable { seq: BatchSeq(2) });
        }
    }
    let map = exec.executor().state().to_map();
    disk.lock().crash(7);
    let (exec, recovered) = recover(&disk);
    assert_eq!(recovered.checkpoint.map(|(seq, _)| seq), Some(BatchSeq(2)));
    let replayed: Vec<u64> = recovered.replayed.iter().map(|b| b.batch.seq.0).collect();
    assert_eq!(replayed, [3, 4, 5]);
    assert_eq!(recovered.replay_stopped, None);
    assert_eq!(exec.executor().state().root(), roots[4]);
    assert_eq!(exec.executor().state().to_map(), map);
    // The replies come back with the batches, for the logic to release at commit.
    assert_eq!(recovered.replayed[2].replies.len(), 2);
}

#[test]
fn a_batch_logged_but_not_synced_may_be_lost_or_torn_but_never_half_replayed() {
    let mut torn = 0;
    let mut kept = 0;
    for seed in 0..40 {
        let disk = SharedDisk::new(SimDisk::new(1 << 30));
        let mut exec = durable(&disk);
        execute(&mut exec, batch(1, "v"));
        // Batch 2 is executed; its sync (and so its token) never happens.
        let events = exec.apply_unsynced(ExecCommand::Execute {
            epoch: 0,
            batch: batch(2, "v"),
        });
        assert_eq!(events.len(), 1);
        disk.lock().crash(seed);
        let (exec, recovered) = recover(&disk);
        let replayed = recovered.replayed.len();
        assert!(replayed == 1 || replayed == 2, "batch 1 was synced");
        torn += usize::from(recovered.tail.is_some());
        kept += usize::from(replayed == 2);
        assert!(recovered.tail.as_ref().is_none_or(|t| !t.corrupt));
        assert_eq!(
            exec.executor().state().sealed_version(),
            BatchSeq(replayed as u64)
        );
    }
    assert!(
        torn > 0,
        "some crash tore the record ({torn} torn, {kept} kept)"
    );
}

#[test]
fn a_replay_follows_a_batch_executed_again_after_a_rollback() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    execute(&mut exec, batch(1, "v"));
    execute(&mut exec, batch(2, "v"));
    execute(&mut exec, batch(3, "v"));
    exec.apply(ExecCommand::Rollback { to: BatchSeq(1) });
    execute(&mut exec, batch(2, "w"));
    let root = execute(&mut exec, batch(3, "w"));
    disk.lock().crash(0);
    let (exec, recovered) = recover(&disk);
    let replayed: Vec<(u64, String)> = recovered
        .replayed
        .iter()
        .map(|b| {
            let KvOp::Put { value, .. } = KvOp::decode(&b.batch.requests[0].op).unwrap() else {
                unreachable!()
            };
            (b.batch.seq.0, String::from_utf8(value.to_vec()).unwrap())
        })
        .collect();
    assert_eq!(
        replayed,
        [(1, "v1".into()), (2, "w2".into()), (3, "w3".into())]
    );
    assert_eq!(exec.executor().state().root(), root);
}

#[test]
fn a_damaged_checkpoint_is_refused_for_the_one_before_and_the_rest_comes_from_peers() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    for seq in 1..=4 {
        execute(&mut exec, batch(seq, "v"));
        if seq % 2 == 0 {
            exec.apply(ExecCommand::MarkStable { seq: BatchSeq(seq) });
        }
    }
    let newest = format!("{CHECKPOINT_PREFIX}{:020}", 4);
    let files = disk.lock().list().unwrap();
    assert!(files.contains(&newest), "{files:?}");
    assert!(
        !files.contains(&format!("{CHECKPOINT_PREFIX}{:020}", 0)),
        "only the newest two checkpoints are kept: {files:?}"
    );
    assert!(disk.lock().corrupt(&newest, 100));
    let (exec, recovered) = recover(&disk);
    assert_eq!(recovered.refused.len(), 1, "{:?}", recovered.refused);
    assert!(
        recovered.refused[0].contains("checksum"),
        "{:?}",
        recovered.refused
    );
    assert_eq!(recovered.checkpoint.map(|(seq, _)| seq), Some(BatchSeq(2)));
    // The log holds nothing at or below the newest checkpoint: the replica stays at 2 and
    // catches up by state transfer.
    assert!(recovered.replayed.is_empty());
    assert_eq!(exec.executor().state().sealed_version(), BatchSeq(2));
}

#[test]
fn a_corrupted_log_record_ends_the_replay_there() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    for seq in 1..=3 {
        execute(&mut exec, batch(seq, "v"));
    }
    let log = disk.lock().read("batches.log").unwrap().unwrap();
    // A byte in the middle of the second record's payload.
    let records = log.len() / 3;
    assert!(disk.lock().corrupt("batches.log", records + records / 2));
    let (_, recovered) = recover(&disk);
    assert_eq!(recovered.replayed.len(), 1);
    assert!(recovered.tail.unwrap().corrupt);
}

#[test]
fn without_any_sound_checkpoint_the_state_is_lost_and_said_so() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    execute(&mut exec, batch(1, "v"));
    disk.lock().wipe();
    let (exec, recovered) = recover(&disk);
    assert_eq!(recovered.checkpoint, None);
    assert!(recovered.replayed.is_empty());
    assert_eq!(exec.executor().state().sealed_version(), BatchSeq(0));
    assert!(Journal::create(Box::new(disk.clone()), exec.executor().state()).is_ok());
    assert!(
        Journal::create(Box::new(disk), exec.executor().state()).is_err(),
        "a second journal on the same disk is refused"
    );
}

/// Found by the simulator (seed 167 of `--mode 1,0`): a batch executed on a version that was
/// later rolled back stays in the log past the next checkpoint; the replay must skip it (its
/// base root is not the state's), not stop at it and lose what follows.
#[test]
fn a_batch_logged_on_a_rolled_back_version_is_skipped_past_a_checkpoint() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    execute(&mut exec, batch(1, "v"));
    execute(&mut exec, batch(2, "a"));
    execute(&mut exec, batch(3, "a"));
    exec.apply(ExecCommand::Rollback { to: BatchSeq(1) });
    execute(&mut exec, batch(2, "b"));
    exec.apply(ExecCommand::MarkStable { seq: BatchSeq(2) });
    let root = execute(&mut exec, batch(3, "b"));
    disk.lock().crash(0);
    let (exec, recovered) = recover(&disk);
    assert_eq!(recovered.checkpoint.map(|(seq, _)| seq), Some(BatchSeq(2)));
    assert_eq!(
        recovered.skipped, 1,
        "batch 3 of the first chain: {recovered:?}"
    );
    let replayed: Vec<u64> = recovered.replayed.iter().map(|b| b.batch.seq.0).collect();
    assert_eq!(replayed, [3]);
    assert_eq!(exec.executor().state().root(), root);
}

#[test]
fn a_replica_whose_disk_is_full_reports_nothing_and_says_why() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    execute(&mut exec, batch(1, "v"));
    let used = disk.lock().used();
    disk.lock().set_capacity(used);
    let events = exec.apply(ExecCommand::Execute {
        epoch: 0,
        batch: batch(2, "v"),
    });
    assert!(
        events.is_empty(),
        "no token for a batch it could not log: {events:?}"
    );
    let why = exec.halted().expect("it says why").to_string();
    assert!(why.contains("full"), "{why}");
    // Nothing more is reported, even once the disk has room: the node must restart.
    disk.lock().set_capacity(1 << 30);
    assert!(
        exec.apply(ExecCommand::Execute {
            epoch: 0,
            batch: batch(3, "v"),
        })
        .is_empty()
    );
    let (_, recovered) = recover(&disk);
    assert_eq!(
        recovered.replayed.len(),
        1,
        "batch 1 was logged, batch 2 never was"
    );
}

/// A batch whose writes exceed `LOGGED_WRITES_BYTES_MAX` is logged without them and replayed
/// by executing it again, which must produce its logged root.
#[test]
fn a_batch_too_large_to_log_its_writes_is_replayed_by_executing_it_again() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    let value = "x".repeat(60 << 10);
    let requests: Vec<Request> = (1..=150u64)
        .map(|c| Request {
            client: ClientId(c),
            request_no: RequestNo(1),
            op: KvOp::Put {
                key: Bytes::from(format!("big{c}")),
                value: Bytes::from(value.clone()),
            }
            .encode(),
            signature: None,
        })
        .collect();
    let written: usize = requests.iter().map(|r| r.op.len()).sum();
    assert!(written > eve_agreement::journal::LOGGED_WRITES_BYTES_MAX);
    let big = Batch {
        requests,
        ..batch(1, "v")
    };
    let root = execute(&mut exec, big);
    execute(&mut exec, batch(2, "v"));
    disk.lock().crash(0);
    let (exec, recovered) = recover(&disk);
    let replayed: Vec<u64> = recovered.replayed.iter().map(|b| b.batch.seq.0).collect();
    assert_eq!(replayed, [1, 2], "{:?}", recovered.unproven);
    assert_eq!(exec.executor().state().root_of(BatchSeq(1)).unwrap(), root);
}

/// A whole record (its checksum holds) that is not a batch, written by something else than
/// this journal, stops the replay there and says so.
#[test]
fn a_whole_record_that_is_not_a_batch_stops_the_replay_and_says_so() {
    let disk = SharedDisk::new(SimDisk::new(1 << 30));
    let mut exec = durable(&disk);
    execute(&mut exec, batch(1, "v"));
    {
        let mut raw = disk.clone();
        let mut log = eve_storage::RecordLog::open(&mut raw, "batches.log")
            .unwrap()
            .log;
        log.append(&mut raw, b"not a batch").unwrap();
        log.sync(&mut raw).unwrap();
    }
    let (exec, recovered) = recover(&disk);
    assert_eq!(recovered.replayed.len(), 1);
    assert!(recovered.replay_stopped.is_some(), "{recovered:?}");
    assert_eq!(exec.executor().state().sealed_version(), BatchSeq(1));
}
