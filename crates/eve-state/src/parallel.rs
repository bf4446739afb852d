//! A hook through which the store's owner lends it threads for sealing.
//!
//! The state store never starts threads itself. Sealing a large batch rehashes many buckets and
//! tree paths that are independent of each other, so [`StateStore::seal_with`] takes a
//! [`ParallelFor`] and spreads that work over it; the executor passes its worker pool.
//!
//! [`StateStore::seal_with`]: crate::StateStore::seal_with

/// Runs independent tasks, perhaps on several threads.
pub trait ParallelFor {
    /// Calls `task(i)` exactly once for every `i` in `0..len`, in any order and on any thread,
    /// and returns only when every call has returned.
    fn parallel_for(&mut self, len: usize, task: &(dyn Fn(usize) + Sync));

    /// How many tasks it can run at once; the store makes about four tasks per thread.
    fn parallelism(&self) -> usize;
}

/// Runs every task in order on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl ParallelFor for Serial {
    fn parallel_for(&mut self, len: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..len).for_each(task);
    }

    fn parallelism(&self) -> usize {
        1
    }
}
