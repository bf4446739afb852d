//! The trait a library user implements to replicate their service.

use crate::context::ExecContext;
use bytes::Bytes;
use eve_mixer::ConflictKeys;

/// A replicated application: a state machine over the objects of a
/// [`StateStore`](eve_state::StateStore).
///
/// Eve executes requests of one parallel batch concurrently on several threads, so
/// `execute` takes `&self` and must keep all replicated state in the store (through the
/// [`ExecContext`]); anything kept elsewhere is neither hashed, rolled back nor transferred.
/// An execution must depend only on the objects it reads, the operation, and the context's
/// `time_ms()` and `random()`: that is what makes sequential re-execution agree on every
/// replica. Concurrency bugs are tolerated (they show up as diverging tokens, and the batch
/// is re-executed sequentially), but they cost throughput.
///
/// ```
/// use bytes::Bytes;
/// use eve_exec::{Application, ExecContext};
/// use eve_mixer::ConflictKeys;
///
/// /// Appends the operation to a log object per first byte.
/// struct Logs;
///
/// impl Application for Logs {
///     fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
///         keys.write(&op[..op.len().min(1)]);
///     }
///
///     fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
///         let key = &op[..op.len().min(1)];
///         let mut log = ctx.get(key).map(|v| v.to_vec()).unwrap_or_default();
///         log.extend_from_slice(op);
///         let len = log.len();
///         match ctx.put(key, log) {
///             Ok(()) => Bytes::from(len.to_string()),
///             Err(err) => Bytes::from(err.to_string()),
///         }
///     }
/// }
/// ```
pub trait Application: Send + Sync + 'static {
    /// Names the keys `op` reads and writes, so the mixer can keep conflicting requests apart.
    /// Must be a pure function of `op`. Naming too few keys costs divergence and rollback;
    /// naming too many costs parallelism. An operation that cannot be decoded may name no
    /// keys, or call [`ConflictKeys::conflict_with_everything`].
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys);

    /// Executes `op` and returns the reply for the client. Errors of the application (a
    /// malformed operation, a value too large for the store) belong in the reply.
    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes;

    /// A short name for logs and reports.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}
