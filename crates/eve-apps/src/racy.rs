//! A deliberately racy application, for tests: a shared counter updated with a separate load
//! and store, which gives different results under parallel execution.

use bytes::Bytes;
use eve_exec::{Application, ExecContext};
use eve_mixer::ConflictKeys;

/// The object holding the counter.
pub const RACY_COUNTER_KEY: &[u8] = b"racy/counter";

/// Every request adds one to a shared counter by reading it, doing some busy work, and
/// writing it back, and replies with the value it wrote. Executed sequentially, `n` requests
/// leave `n` in the counter and reply `1, 2, ..., n` in batch order. Executed in parallel,
/// updates get lost and replies depend on timing, so replicas diverge: exactly the
/// concurrency bug Eve must survive.
///
/// By default it names no conflict keys (the bug: it claims its requests are independent);
/// [`RacyCounter::honest`] names the counter, and the mixer then serializes every request.
#[derive(Clone, Copy, Debug)]
pub struct RacyCounter {
    spin: u32,
    declare_conflicts: bool,
}

impl RacyCounter {
    /// A racy counter that spins `spin` rounds of busy work between its load and its store,
    /// widening the race window.
    pub fn new(spin: u32) -> Self {
        Self {
            spin,
            declare_conflicts: false,
        }
    }

    /// The same counter, but naming its conflict key, so a correct mixer never runs two of its
    /// requests in one parallel batch.
    pub fn honest(spin: u32) -> Self {
        Self {
            spin,
            declare_conflicts: true,
        }
    }
}

impl Application for RacyCounter {
    fn conflict_keys(&self, _op: &[u8], keys: &mut ConflictKeys) {
        if self.declare_conflicts {
            keys.write(RACY_COUNTER_KEY);
        }
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, _op: &[u8]) -> Bytes {
        let loaded = ctx
            .get(RACY_COUNTER_KEY)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map_or(0, u64::from_le_bytes);
        crate::busy::busy_work(self.spin);
        let stored = loaded + 1;
        match ctx.put(RACY_COUNTER_KEY, stored.to_le_bytes().to_vec()) {
            Ok(()) => Bytes::copy_from_slice(&stored.to_le_bytes()),
            Err(err) => Bytes::from(err.to_string()),
        }
    }

    fn name(&self) -> &'static str {
        "racy-counter"
    }
}
