//! Properties of state transfer: diverged stores converge, only what differs moves, and
//! tampered data changes nothing.

mod common;

use bytes::Bytes;
use common::{Op, apply, ops, small_store};
use eve_state::{StateConfig, StateError, StateImport, StateStore};
use eve_types::BatchSeq;
use proptest::prelude::*;

/// Two stores that share `common` as committed version 1, then diverge: `behind` executes
/// `wrong` (and seals it as version 2, as a diverged replica would), `ahead` executes
/// `right` and seals it as version 2.
fn diverged(common: &[Op], wrong: &[Op], right: &[Op]) -> (StateStore, StateStore) {
    let mut behind = small_store();
    let mut ahead = small_store();
    for store in [&mut behind, &mut ahead] {
        apply(store, common);
        store.seal().unwrap();
        let committed = store.sealed_version();
        store.mark_stable(committed).unwrap();
    }
    let ops_without_seals = |ops: &[Op]| -> Vec<Op> {
        ops.iter()
            .filter(|op| !matches!(op, Op::Seal))
            .cloned()
            .collect()
    };
    apply(&mut behind, &ops_without_seals(wrong));
    behind.seal().unwrap();
    apply(&mut ahead, &ops_without_seals(right));
    ahead.seal().unwrap();
    (behind, ahead)
}

/// Objects whose values differ between two maps (present on one side only counts).
fn differing(
    a: &std::collections::BTreeMap<Bytes, Bytes>,
    b: &std::collections::BTreeMap<Bytes, Bytes>,
) -> usize {
    let keys: std::collections::BTreeSet<&Bytes> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).count()
}

proptest! {
    /// A diverged store rolls back to its committed version, imports the peer's delta, and
    /// ends with the peer's root and objects; the delta carries exactly the objects that
    /// differ between the committed version and the peer's.
    #[test]
    fn delta_transfer_converges_and_moves_only_differing_objects(
        common in ops(60), wrong in ops(40), right in ops(40),
    ) {
        let (mut behind, ahead) = diverged(&common, &wrong, &right);
        let committed = behind.stable_version();
        behind.rollback(committed).unwrap();
        let delta = ahead.export_delta(committed, ahead.sealed_version(), usize::MAX).unwrap();
        prop_assert_eq!(delta.entries.len(), differing(&behind.to_map(), &ahead.to_map()));
        behind.import_delta(&delta, ahead.root()).unwrap();
        prop_assert_eq!(behind.root(), ahead.root());
        prop_assert_eq!(behind.to_map(), ahead.to_map());
        prop_assert_eq!(behind.sealed_version(), ahead.sealed_version());
        prop_assert_eq!(behind.rebuild_root(), behind.root());
    }

    /// A full transfer fetches only the buckets that differ, and converges.
    #[test]
    fn chunked_transfer_converges_and_fetches_only_differing_buckets(
        common in ops(60), wrong in ops(40), right in ops(40), max_bytes in 1usize..200,
    ) {
        let (mut behind, ahead) = diverged(&common, &wrong, &right);
        let committed = behind.stable_version();
        behind.rollback(committed).unwrap();
        let manifest = ahead.manifest(ahead.sealed_version()).unwrap();
        let differing_buckets = (0..16u32)
            .filter(|&b| behind.bucket_hash(b) != ahead.bucket_hash(b))
            .count();
        let mut import = StateImport::new(&behind, manifest, ahead.root()).unwrap();
        prop_assert_eq!(import.wanted().len(), differing_buckets);
        let mut requests = 0;
        while let Some(request) = import.next_request(max_bytes) {
            requests += 1;
            prop_assert!(requests < 10_000, "the transfer makes progress");
            import.add_chunk(ahead.export_chunk(&request).unwrap()).unwrap();
        }
        import.apply(&mut behind).unwrap();
        prop_assert_eq!(behind.root(), ahead.root());
        prop_assert_eq!(behind.to_map(), ahead.to_map());
    }

    /// An empty store (a restarted replica) fetches a whole state in small chunks.
    #[test]
    fn empty_store_fetches_the_whole_state(steps in ops(150), max_bytes in 1usize..400) {
        let mut source = small_store();
        apply(&mut source, &steps);
        source.seal().unwrap();
        let mut fresh = small_store();
        let mut import = StateImport::new(&fresh, source.manifest(source.sealed_version()).unwrap(), source.root()).unwrap();
        while let Some(request) = import.next_request(max_bytes) {
            import.add_chunk(source.export_chunk(&request).unwrap()).unwrap();
        }
        prop_assert_eq!(import.objects_received(), source.len());
        import.apply(&mut fresh).unwrap();
        prop_assert_eq!(fresh.root(), source.root());
        prop_assert_eq!(fresh.len(), source.len());
        prop_assert_eq!(fresh.bytes(), source.bytes());
    }

    /// A peer can serve an older held version while it has moved on.
    #[test]
    fn exports_of_an_older_version_match_that_version(a in ops(60), b in ops(60)) {
        let mut source = small_store();
        apply(&mut source, &a);
        source.seal().unwrap();
        let old = source.sealed_version();
        let old_root = source.root();
        let old_objects = source.to_map();
        apply(&mut source, &b);
        source.seal().unwrap();
        source.put(b"unsealed", "x".into()).unwrap();
        let manifest = source.manifest(old).unwrap();
        prop_assert_eq!(manifest.root().unwrap(), old_root);
        let mut fresh = small_store();
        let mut import = StateImport::new(&fresh, manifest, old_root).unwrap();
        while let Some(request) = import.next_request(64) {
            import.add_chunk(source.export_chunk(&request).unwrap()).unwrap();
        }
        import.apply(&mut fresh).unwrap();
        prop_assert_eq!(fresh.to_map(), old_objects);
    }

    /// A delta whose content was altered is refused and leaves the receiver as it was.
    #[test]
    fn tampered_delta_changes_nothing(common in ops(40), right in ops(40), flip in any::<prop::sample::Index>()) {
        let (mut behind, ahead) = diverged(&common, &[], &right);
        let committed = behind.stable_version();
        behind.rollback(committed).unwrap();
        let mut delta = ahead.export_delta(committed, ahead.sealed_version(), usize::MAX).unwrap();
        prop_assume!(!delta.entries.is_empty());
        let at = flip.index(delta.entries.len());
        let entry = &mut delta.entries[at];
        entry.value = Some(match &entry.value {
            Some(v) => Bytes::from([v.as_ref(), b"!"].concat()),
            None => Bytes::from_static(b"resurrected"),
        });
        let (root, objects) = (behind.root(), behind.to_map());
        let err = behind.import_delta(&delta, ahead.root()).unwrap_err();
        prop_assert!(matches!(err, StateError::RootMismatch { .. }), "{}", err);
        prop_assert_eq!(behind.root(), root);
        prop_assert_eq!(behind.to_map(), objects);
        prop_assert_eq!(behind.sealed_version(), committed);
    }

    /// A chunk whose content was altered is refused with the bucket named, and the transfer
    /// can go on with an honest peer.
    #[test]
    fn tampered_chunk_is_refused_and_transfer_recovers(steps in ops(100), flip in any::<prop::sample::Index>()) {
        let mut source = small_store();
        apply(&mut source, &steps);
        source.seal().unwrap();
        prop_assume!(!source.is_empty());
        let mut fresh = small_store();
        let mut import = StateImport::new(&fresh, source.manifest(source.sealed_version()).unwrap(), source.root()).unwrap();
        let request = import.next_request(usize::MAX).unwrap();
        let mut chunk = source.export_chunk(&request).unwrap();
        let objects: Vec<&mut (Bytes, Bytes)> = chunk.parts.iter_mut().flat_map(|p| p.objects.iter_mut()).collect();
        let n = objects.len();
        let target = objects.into_iter().nth(flip.index(n)).unwrap();
        target.1 = Bytes::from([target.1.as_ref(), b"?"].concat());
        let err = import.add_chunk(chunk).unwrap_err();
        prop_assert!(matches!(err, StateError::ChunkTampered { .. }), "{}", err);
        while let Some(request) = import.next_request(usize::MAX) {
            import.add_chunk(source.export_chunk(&request).unwrap()).unwrap();
        }
        import.apply(&mut fresh).unwrap();
        prop_assert_eq!(fresh.root(), source.root());
    }
}

#[test]
fn tampered_manifest_is_refused() {
    let mut source = small_store();
    apply(&mut source, &[Op::Put(1, 1), Op::Put(2, 2)]);
    source.seal().unwrap();
    let mut manifest = source.manifest(BatchSeq(1)).unwrap();
    manifest.bucket_hashes[3].0[0] ^= 1;
    let err = StateImport::new(&small_store(), manifest, source.root()).unwrap_err();
    assert!(matches!(err, StateError::ManifestMismatch { .. }), "{err}");
}

#[test]
fn manifest_with_other_bucket_count_is_refused() {
    let mut source = StateStore::new(StateConfig::new(5, 64).unwrap());
    source.seal().unwrap();
    let manifest = source.manifest(BatchSeq(1)).unwrap();
    let err = StateImport::new(&small_store(), manifest, source.root()).unwrap_err();
    assert_eq!(err, StateError::BucketBitsMismatch { ours: 4, theirs: 5 });
}

#[test]
fn apply_before_every_bucket_arrived_is_refused() {
    let mut source = small_store();
    apply(&mut source, &[Op::Put(1, 1), Op::Put(2, 2), Op::Put(3, 3)]);
    source.seal().unwrap();
    let mut fresh = small_store();
    let import =
        StateImport::new(&fresh, source.manifest(BatchSeq(1)).unwrap(), source.root()).unwrap();
    let missing = import.wanted().len();
    assert!(missing > 0);
    assert_eq!(
        import.apply(&mut fresh),
        Err(StateError::ImportIncomplete { missing })
    );
    assert_eq!(fresh.sealed_version(), BatchSeq(0));
}

#[test]
fn chunk_that_skips_ahead_is_malformed() {
    let mut source = small_store();
    for k in 0..40 {
        source.put(&common::key(k), common::value(1)).unwrap();
    }
    source.seal().unwrap();
    let fresh = small_store();
    let mut import =
        StateImport::new(&fresh, source.manifest(BatchSeq(1)).unwrap(), source.root()).unwrap();
    let mut request = import.next_request(usize::MAX).unwrap();
    request.buckets.remove(0);
    let err = import
        .add_chunk(source.export_chunk(&request).unwrap())
        .unwrap_err();
    assert!(matches!(err, StateError::MalformedTransfer { .. }), "{err}");
}

#[test]
fn delta_on_the_wrong_base_is_refused() {
    let mut a = small_store();
    a.put(b"x", "1".into()).unwrap();
    a.seal().unwrap();
    a.put(b"x", "2".into()).unwrap();
    a.seal().unwrap();
    let delta = a
        .export_delta(BatchSeq(1), BatchSeq(2), usize::MAX)
        .unwrap();
    let mut b = small_store();
    assert_eq!(
        b.import_delta(&delta, a.root()),
        Err(StateError::DeltaBaseMismatch {
            delta_from: BatchSeq(1),
            sealed: BatchSeq(0)
        })
    );
}

#[test]
fn delta_larger_than_its_limit_is_refused() {
    let mut a = small_store();
    for k in 0..10 {
        a.put(&common::key(k), common::value(7)).unwrap();
    }
    a.seal().unwrap();
    let err = a.export_delta(BatchSeq(0), BatchSeq(1), 20).unwrap_err();
    assert!(
        matches!(err, StateError::ExportTooLarge { max: 20, .. }),
        "{err}"
    );
}
