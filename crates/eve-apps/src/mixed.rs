//! The key-value store with a racy counter beside it: operations starting with [`RACY_OP`]
//! go to a [`RacyCounter`] that names no conflict keys (so parallel execution races and
//! replicas diverge), everything else to the [`KvStore`]. A way to inject divergence at a
//! chosen rate into a key-value workload, for demos and simulations.

use crate::{KvStore, RacyCounter};
use bytes::Bytes;
use eve_exec::{Application, ExecContext};
use eve_mixer::ConflictKeys;

/// The first byte of a racy-counter operation; no [`crate::KvOp`] encoding starts with it.
pub const RACY_OP: u8 = b'!';

/// [`KvStore`] plus a [`RacyCounter`] for operations starting with [`RACY_OP`].
///
/// ```
/// use eve_apps::{KvWithRacy, RACY_OP};
/// let app = KvWithRacy::new(0);
/// let racy_op = [RACY_OP];
/// # let _ = (app, racy_op);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct KvWithRacy {
    kv: KvStore,
    racy: RacyCounter,
}

impl KvWithRacy {
    /// The store, with a racy counter that spins `spin` rounds between its load and store.
    pub fn new(spin: u32) -> Self {
        Self {
            kv: KvStore,
            racy: RacyCounter::new(spin),
        }
    }
}

impl Application for KvWithRacy {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        match op.first() {
            Some(&RACY_OP) => self.racy.conflict_keys(op, keys),
            _ => self.kv.conflict_keys(op, keys),
        }
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        match op.first() {
            Some(&RACY_OP) => self.racy.execute(ctx, op),
            _ => self.kv.execute(ctx, op),
        }
    }

    fn name(&self) -> &'static str {
        "kv-with-racy"
    }
}
