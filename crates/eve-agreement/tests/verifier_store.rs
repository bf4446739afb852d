//! A durable verifier's memory on disk: the last synced memory survives a crash, a torn write
//! falls back to the one before (nothing depending on it was sent), and a corrupted record or
//! a lost disk leave no memory to trust, so that the verifier recovers from its peers.

use eve_agreement::verifier_store::{MEMORY_FILE, VerifierStore, VerifierStoreError};
use eve_agreement::{Verifier, VerifierMemory};
use eve_storage::{SharedDisk, SimDisk};
use eve_types::{BatchSeq, ClusterConfig, ReplicationMode, VerifierId, View};

fn memory(id: u32, view: u64) -> VerifierMemory {
    let config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 })
        .validate()
        .unwrap();
    let mut memory = Verifier::new(VerifierId(id), config).memory();
    memory.view = View(view);
    memory.asked = View(view);
    memory.votes = vec![(BatchSeq(view + 1), None, None)];
    memory
}

fn disk() -> SharedDisk<SimDisk> {
    SharedDisk::new(SimDisk::new(1 << 20))
}

#[test]
fn the_last_synced_memory_survives_and_an_unsynced_one_may_be_torn_away() {
    let mut torn = 0;
    for seed in 0..20 {
        let disk = disk();
        let mut store = VerifierStore::create(Box::new(disk.clone()), &memory(0, 0)).unwrap();
        store.write(&memory(0, 1)).unwrap();
        store.sync().unwrap();
        store.write(&memory(0, 2)).unwrap();
        disk.lock().crash(seed);
        let opened = VerifierStore::open(Box::new(disk), VerifierId(0)).unwrap();
        let view = opened.memory.expect("a memory survives").view;
        assert!(view == View(1) || view == View(2), "{view}");
        if view == View(1) {
            torn += 1;
            assert!(opened.tail.is_none_or(|t| !t.corrupt));
        }
    }
    assert!(torn > 0);
}

#[test]
fn a_corrupted_record_or_a_lost_disk_leaves_no_memory_to_trust() {
    let disk = disk();
    let mut store = VerifierStore::create(Box::new(disk.clone()), &memory(0, 0)).unwrap();
    for view in 1..4 {
        store.write(&memory(0, view)).unwrap();
    }
    store.sync().unwrap();
    assert!(disk.lock().corrupt(MEMORY_FILE, 30));
    let opened = VerifierStore::open(Box::new(disk.clone()), VerifierId(0)).unwrap();
    assert!(
        opened.memory.is_none(),
        "what followed the damage may have been acted on"
    );
    assert!(opened.tail.unwrap().corrupt);
    let wiped = self::disk();
    let opened = VerifierStore::open(Box::new(wiped), VerifierId(0)).unwrap();
    assert!(opened.memory.is_none());
}

#[test]
fn another_verifiers_memory_is_refused_and_a_second_creation_too() {
    let disk = disk();
    VerifierStore::create(Box::new(disk.clone()), &memory(1, 0)).unwrap();
    assert!(matches!(
        VerifierStore::open(Box::new(disk.clone()), VerifierId(0)),
        Err(VerifierStoreError::OtherVerifier { .. })
    ));
    assert!(matches!(
        VerifierStore::create(Box::new(disk), &memory(1, 0)),
        Err(VerifierStoreError::NotEmpty)
    ));
}

#[test]
fn the_log_is_compacted_and_still_holds_the_last_memory() {
    let disk = disk();
    let mut store = VerifierStore::create(Box::new(disk.clone()), &memory(0, 0)).unwrap();
    let writes = eve_agreement::verifier_store::MEMORY_RECORDS_MAX * 2 + 5;
    for view in 1..=writes {
        store.write(&memory(0, view)).unwrap();
    }
    store.sync().unwrap();
    let bytes = {
        use eve_storage::Disk;
        disk.lock().read(MEMORY_FILE).unwrap().unwrap().len()
    };
    let one = postcard::to_allocvec(&memory(0, writes)).unwrap().len();
    assert!(bytes < (one + 16) * 1100, "compacted: {bytes} bytes");
    let opened = VerifierStore::open(Box::new(disk), VerifierId(0)).unwrap();
    assert_eq!(opened.memory.unwrap().view, View(writes));
}

/// Found by the simulator (seeds 12117 and 19557 of `--mode 1,1`): a verifier that lost its
/// disk recovers from its peers; its first memory afterwards must be durable at once, or a
/// crash before its next message brings it back as one that lost its disk again.
#[test]
fn the_first_memory_after_a_lost_disk_is_durable_at_once() {
    for seed in 0..20 {
        let disk = disk();
        let mut store = VerifierStore::open(Box::new(disk.clone()), VerifierId(0))
            .unwrap()
            .store;
        store.write(&memory(0, 3)).unwrap();
        disk.lock().crash(seed);
        let opened = VerifierStore::open(Box::new(disk), VerifierId(0)).unwrap();
        assert_eq!(opened.memory.map(|m| m.view), Some(View(3)), "seed {seed}");
    }
}
