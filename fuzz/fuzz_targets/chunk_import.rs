//! A state transfer fed chunks a peer could send: the bytes are a sequence of postcard-encoded
//! chunks for a fixed source state. The import never panics, and it completes only with the
//! source's exact buckets: a completed import applies and yields the agreed root.
#![no_main]

use eve_state::{Chunk, Manifest, StateConfig, StateImport, StateStore};
use eve_types::Digest;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// 16 buckets, small values: a fuzzer can reach the end of a transfer.
fn config() -> StateConfig {
    StateConfig::new(4, 64).expect("a valid state configuration")
}

/// The source's manifest and root (60 objects over 16 buckets).
static SOURCE: LazyLock<(Manifest, Digest)> = LazyLock::new(|| {
    let mut source = StateStore::new(config());
    for i in 0..60u32 {
        let key = format!("key-{i}");
        source
            .put(key.as_bytes(), format!("value-{i}").into())
            .expect("a small object fits");
    }
    source.seal().expect("sealing a version");
    let manifest = source
        .manifest(source.sealed_version())
        .expect("the sealed version's manifest");
    (manifest, source.root())
});

fuzz_target!(|data: &[u8]| {
    let (manifest, root) = &*SOURCE;
    let mut fresh = StateStore::new(config());
    let mut import =
        StateImport::new(&fresh, manifest.clone(), *root).expect("the manifest matches its root");
    let mut rest = data;
    while let Ok((chunk, tail)) = postcard::take_from_bytes::<Chunk>(rest) {
        let _ = import.add_chunk(chunk);
        rest = tail;
        if import.is_complete() {
            break;
        }
    }
    if import.is_complete() {
        import
            .apply(&mut fresh)
            .expect("verified buckets apply to the agreed root");
        assert_eq!(fresh.root(), *root);
    }
});
