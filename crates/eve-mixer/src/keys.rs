//! Conflict keys: what the application says each request reads and writes.

use eve_types::limits::CONFLICT_KEYS_PER_REQUEST_MAX;
use serde::{Deserialize, Serialize};

/// A hashed conflict key. Two requests conflict when they share a key and at least one writes it.
///
/// The application chooses the granularity (an object, a row, a table, a partition of a table);
/// the mixer only compares keys for equality. Two different application keys that hash to the
/// same value are a false conflict, which costs parallelism and never safety.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConflictKey(pub u64);

impl ConflictKey {
    /// The key for an application key: its XXH3 64-bit hash with seed 0. The function is fixed
    /// (no per-process random seed), so every replica derives the same key from the same bytes.
    pub fn of(key: &[u8]) -> Self {
        Self(xxhash_rust::xxh3::xxh3_64(key))
    }
}

/// The keys one request reads and writes, as the application names them.
///
/// At most [`CONFLICT_KEYS_PER_REQUEST_MAX`] keys are kept, reads and writes together. A request
/// that names more is marked as conflicting with everything (as if
/// [`conflict_with_everything`](Self::conflict_with_everything) had been called) and the keys
/// past the limit are dropped: once a request conflicts with everything its keys decide nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConflictKeys {
    reads: Vec<ConflictKey>,
    writes: Vec<ConflictKey>,
    everything: bool,
}

impl ConflictKeys {
    /// No keys: the request conflicts with nothing (except requests that conflict with
    /// everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// The request reads `key`.
    pub fn read(&mut self, key: &[u8]) {
        self.read_key(ConflictKey::of(key));
    }

    /// The request writes `key`.
    pub fn write(&mut self, key: &[u8]) {
        self.write_key(ConflictKey::of(key));
    }

    /// The request reads an already hashed key.
    pub fn read_key(&mut self, key: ConflictKey) {
        if self.has_room() {
            self.reads.push(key);
        }
    }

    /// The request writes an already hashed key.
    pub fn write_key(&mut self, key: ConflictKey) {
        if self.has_room() {
            self.writes.push(key);
        }
    }

    /// The request runs alone, ordered against every other request of its batch: it conflicts
    /// with all of them, including those that name no keys.
    pub fn conflict_with_everything(&mut self) {
        self.everything = true;
    }

    /// Forgets every key and the everything flag, keeping the allocation for the next request.
    pub fn clear(&mut self) {
        self.reads.clear();
        self.writes.clear();
        self.everything = false;
    }

    /// The keys the request reads, in the order they were named (duplicates kept).
    pub fn reads(&self) -> &[ConflictKey] {
        &self.reads
    }

    /// The keys the request writes, in the order they were named (duplicates kept).
    pub fn writes(&self) -> &[ConflictKey] {
        &self.writes
    }

    /// Whether the request conflicts with every other request: because the application said so,
    /// or because it named more than [`CONFLICT_KEYS_PER_REQUEST_MAX`] keys in total.
    pub fn conflicts_with_everything(&self) -> bool {
        self.everything
    }

    /// Whether the two requests conflict: either conflicts with everything, or they share a key
    /// that at least one of them writes. Reads of the same key do not conflict.
    ///
    /// This compares every pair of keys (at most `CONFLICT_KEYS_PER_REQUEST_MAX` squared); the
    /// mixers never call it, it is the definition they are tested against.
    pub fn conflicts(&self, other: &ConflictKeys) -> bool {
        if self.everything || other.everything {
            return true;
        }
        let shares = |ours: &[ConflictKey], theirs: &[ConflictKey]| {
            ours.iter().any(|key| theirs.contains(key))
        };
        shares(&self.writes, &other.writes)
            || shares(&self.writes, &other.reads)
            || shares(&self.reads, &other.writes)
    }

    /// Whether one more key fits under the limit; if not, the request now conflicts with
    /// everything.
    fn has_room(&mut self) -> bool {
        assert!(self.reads.len() + self.writes.len() <= CONFLICT_KEYS_PER_REQUEST_MAX);
        if self.reads.len() + self.writes.len() == CONFLICT_KEYS_PER_REQUEST_MAX {
            self.everything = true;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(key: &[u8]) -> ConflictKeys {
        let mut keys = ConflictKeys::new();
        keys.read(key);
        keys
    }

    fn writes(key: &[u8]) -> ConflictKeys {
        let mut keys = ConflictKeys::new();
        keys.write(key);
        keys
    }

    #[test]
    fn conflict_key_is_xxh3_64_with_seed_zero() {
        // Reference value of XXH3_64bits("") from the xxHash test vectors.
        assert_eq!(
            ConflictKey::of(b""),
            ConflictKey(0x2D06_8005_38D3_94C2),
            "the key function must be the same on every machine and every version"
        );
        assert_eq!(ConflictKey::of(b"account/7"), ConflictKey::of(b"account/7"));
        assert_ne!(ConflictKey::of(b"account/7"), ConflictKey::of(b"account/8"));
    }

    #[test]
    fn reads_of_the_same_key_do_not_conflict() {
        assert!(
            !reads(b"x").conflicts(&reads(b"x")),
            "two readers can run together"
        );
    }

    #[test]
    fn a_write_conflicts_with_a_read_or_write_of_the_same_key() {
        assert!(writes(b"x").conflicts(&reads(b"x")), "write then read");
        assert!(reads(b"x").conflicts(&writes(b"x")), "read then write");
        assert!(writes(b"x").conflicts(&writes(b"x")), "write then write");
        assert!(!writes(b"x").conflicts(&writes(b"y")), "different keys");
    }

    #[test]
    fn keyless_requests_conflict_only_with_everything_requests() {
        let keyless = ConflictKeys::new();
        let mut everything = ConflictKeys::new();
        everything.conflict_with_everything();
        assert!(!keyless.conflicts(&keyless), "no keys, no conflict");
        assert!(!keyless.conflicts(&writes(b"x")), "no shared key");
        assert!(
            keyless.conflicts(&everything),
            "everything means everything"
        );
        assert!(everything.conflicts(&keyless), "conflict is symmetric");
    }

    #[test]
    fn naming_more_than_the_limit_conflicts_with_everything() {
        let mut keys = ConflictKeys::new();
        for i in 0..CONFLICT_KEYS_PER_REQUEST_MAX as u64 {
            keys.read_key(ConflictKey(i));
        }
        assert!(
            !keys.conflicts_with_everything(),
            "exactly CONFLICT_KEYS_PER_REQUEST_MAX keys is still within the limit"
        );
        keys.write(b"one too many");
        assert!(
            keys.conflicts_with_everything(),
            "one key past the limit makes the request conflict with everything"
        );
        assert_eq!(
            keys.reads().len() + keys.writes().len(),
            CONFLICT_KEYS_PER_REQUEST_MAX,
            "keys past the limit are not stored"
        );
        assert!(
            keys.conflicts(&ConflictKeys::new()),
            "it conflicts even with a keyless request"
        );
    }

    #[test]
    fn clear_forgets_keys_and_the_everything_flag() {
        let mut keys = writes(b"x");
        keys.read(b"y");
        keys.conflict_with_everything();
        keys.clear();
        assert_eq!(keys, ConflictKeys::new(), "a cleared request names nothing");
    }
}
