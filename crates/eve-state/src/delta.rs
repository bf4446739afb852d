//! Incremental state transfer: the objects that changed between two versions.
//!
//! A replica whose state diverged rolls back to its last committed version `from` and asks a
//! peer for `export_delta(from, to)`: only the objects whose value at `to` differs from their
//! value at `from`. It applies them with [`StateStore::import_delta`], which adopts the result
//! only if the new root equals the agreed one.

use crate::error::StateError;
use crate::store::StateStore;
use bytes::Bytes;
use eve_types::{BatchSeq, Digest};
use serde::{Deserialize, Serialize};

/// One object in a delta: its value at the target version, or `None` if it was deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaEntry {
    /// The object's key.
    pub key: Bytes,
    /// Its value at the delta's target version; `None` when it does not exist there.
    pub value: Option<Bytes>,
}

/// The objects whose value differs between two versions, in strictly increasing key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The version the delta applies to.
    pub from: BatchSeq,
    /// The version it produces.
    pub to: BatchSeq,
    /// The changed objects.
    pub entries: Vec<DeltaEntry>,
}

impl Delta {
    /// Bytes of keys and values carried.
    pub fn payload_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.key.len() + e.value.as_ref().map_or(0, Bytes::len))
            .sum()
    }
}

impl StateStore {
    /// The objects whose value at `to` differs from their value at `from`, for two held
    /// versions `from <= to`. Fails with [`StateError::ExportTooLarge`] past `max_bytes` of
    /// keys and values, so the caller can fall back to a chunked transfer.
    pub fn export_delta(
        &self,
        from: BatchSeq,
        to: BatchSeq,
        max_bytes: usize,
    ) -> Result<Delta, StateError> {
        self.check_held(from)?;
        self.check_held(to)?;
        if from > to {
            return Err(StateError::UnknownVersion {
                version: from,
                stable: self.stable_version(),
                sealed: to,
            });
        }
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        for b in self.buckets_written_after(from) {
            let bucket = self.bucket(b).read();
            let at_from = bucket.objects_at(from);
            let at_to = bucket.objects_at(to);
            let mut keys: Vec<&Bytes> = bucket.keys_written_between(from, to).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let old = at_from.get(key).map(|o| o.leaf);
                let new = at_to.get(key);
                if old == new.map(|o| o.leaf) {
                    continue;
                }
                let value = new.map(|o| o.value.clone());
                bytes += key.len() + value.as_ref().map_or(0, Bytes::len);
                if bytes > max_bytes {
                    return Err(StateError::ExportTooLarge {
                        bytes,
                        max: max_bytes,
                    });
                }
                entries.push(DeltaEntry {
                    key: key.clone(),
                    value,
                });
            }
        }
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(Delta { from, to, entries })
    }

    /// Applies a delta computed from this store's last sealed version and seals the result as
    /// version `delta.to`, keeping it only if its root equals `expected_root`. On any error the
    /// store is exactly as before.
    pub fn import_delta(&mut self, delta: &Delta, expected_root: Digest) -> Result<(), StateError> {
        let base = self.sealed_version();
        if delta.from != base {
            return Err(StateError::DeltaBaseMismatch {
                delta_from: delta.from,
                sealed: base,
            });
        }
        if let Some(pair) = delta.entries.windows(2).find(|w| w[0].key >= w[1].key) {
            return Err(StateError::MalformedTransfer {
                reason: format!("delta keys not strictly increasing at {:?}", pair[1].key),
            });
        }
        if delta.to == base {
            return if delta.entries.is_empty() && self.root() == expected_root {
                Ok(())
            } else {
                Err(StateError::RootMismatch {
                    expected: expected_root,
                    actual: self.root(),
                })
            };
        }
        self.set_working_version(delta.to)?;
        let applied = delta
            .entries
            .iter()
            .try_for_each(|entry| match &entry.value {
                Some(value) => self.put(&entry.key, value.clone()),
                None => self.delete(&entry.key).map(|_| ()),
            });
        self.seal_or_undo(base, applied, expected_root)
    }

    /// Seals an import and keeps it only if it applied cleanly and produced `expected_root`;
    /// otherwise rolls back to `base`.
    pub(crate) fn seal_or_undo(
        &mut self,
        base: BatchSeq,
        applied: Result<(), StateError>,
        expected_root: Digest,
    ) -> Result<(), StateError> {
        if let Err(err) = applied {
            self.rollback(base)
                .expect("the import's base version is held");
            return Err(err);
        }
        let actual = match self.seal() {
            Ok(root) => root,
            Err(err) => {
                self.rollback(base)
                    .expect("the import's base version is held");
                return Err(err);
            }
        };
        if actual != expected_root {
            self.rollback(base)
                .expect("the import's base version is held");
            return Err(StateError::RootMismatch {
                expected: expected_root,
                actual,
            });
        }
        Ok(())
    }
}
