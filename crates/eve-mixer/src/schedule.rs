//! The mixer's output: an ordered list of parallel batches.

use eve_types::limits::BATCH_REQUESTS_MAX;

/// The mixer's output: an ordered list of parallel batches that together hold every request
/// position `0..n` exactly once, each parallel batch non-empty.
///
/// The executor runs one parallel batch at a time, with a barrier between parallel batches.
/// Stored flat (all positions, parallel batch after parallel batch, plus the end offset of each
/// parallel batch) so that a schedule is two allocations however many parallel batches it has.
/// The fields are private and every constructor checks the invariant, so a `Schedule` in hand
/// is a valid one; its `n` is [`requests`](Self::requests), which a consumer compares with the
/// length of its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Every position once, parallel batch after parallel batch.
    positions: Vec<u32>,
    /// `ends[k]` is the end offset in `positions` of parallel batch `k`; strictly increasing,
    /// the last equal to `positions.len()`.
    ends: Vec<u32>,
}

/// Why a list of parallel batches is not a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A parallel batch holds no request.
    #[error("parallel batch {index} is empty; every parallel batch must hold a request")]
    EmptyParallelBatch {
        /// Its index in the schedule.
        index: usize,
    },
    /// A position is past the largest batch there can be.
    #[error(
        "position {position} is out of range; positions are below {max} \
         (eve_types::limits::BATCH_REQUESTS_MAX)"
    )]
    OutOfRange {
        /// The position.
        position: u32,
        /// The limit.
        max: usize,
    },
    /// A position appears more than once.
    #[error("position {position} appears more than once")]
    Duplicate {
        /// The position.
        position: u32,
    },
    /// A position below the largest one given appears nowhere.
    #[error("position {position} is missing (positions must be 0..n, each exactly once)")]
    Missing {
        /// The first missing position.
        position: u32,
    },
}

impl Schedule {
    /// `n` parallel batches of one request each, in batch order: the sequential execution
    /// every replica falls back to after a rollback.
    ///
    /// # Panics
    /// If `n` exceeds [`BATCH_REQUESTS_MAX`]; batches are checked against it where they enter.
    pub fn sequential(n: usize) -> Self {
        let n = checked_requests(n);
        Self::from_parts((0..n).collect(), (1..=n).collect())
    }

    /// One parallel batch holding every request (no parallel batch at all when `n == 0`).
    ///
    /// # Panics
    /// If `n` exceeds [`BATCH_REQUESTS_MAX`]; batches are checked against it where they enter.
    pub fn parallel(n: usize) -> Self {
        let n = checked_requests(n);
        let ends = if n == 0 { Vec::new() } else { vec![n] };
        Self::from_parts((0..n).collect(), ends)
    }

    /// The schedule with these parallel batches, in this order, checked: no parallel batch is
    /// empty, every position is below [`BATCH_REQUESTS_MAX`] and appears once, and the positions
    /// are exactly `0..n` where `n` is one more than the largest. The first problem found is
    /// reported: empty parallel batches and positions out of range in one scan, then
    /// duplicates, then the smallest missing position.
    ///
    /// A caller that knows `n` compares it with [`requests`](Self::requests): trailing
    /// positions left out cannot be told apart from a smaller batch.
    ///
    /// # Errors
    /// [`ScheduleError::EmptyParallelBatch`], [`ScheduleError::OutOfRange`],
    /// [`ScheduleError::Duplicate`] or [`ScheduleError::Missing`], as above.
    pub fn from_parallel_batches(batches: Vec<Vec<u32>>) -> Result<Self, ScheduleError> {
        let mut largest: Option<u32> = None;
        for (index, batch) in batches.iter().enumerate() {
            if batch.is_empty() {
                return Err(ScheduleError::EmptyParallelBatch { index });
            }
            for &position in batch {
                if position as usize >= BATCH_REQUESTS_MAX {
                    return Err(ScheduleError::OutOfRange {
                        position,
                        max: BATCH_REQUESTS_MAX,
                    });
                }
                largest = largest.max(Some(position));
            }
        }
        let n = largest.map_or(0, |largest| largest as usize + 1);
        let mut seen = vec![false; n];
        for &position in batches.iter().flatten() {
            let slot = &mut seen[position as usize];
            if *slot {
                return Err(ScheduleError::Duplicate { position });
            }
            *slot = true;
        }
        if let Some(position) = seen.iter().position(|&seen| !seen) {
            return Err(ScheduleError::Missing {
                position: position as u32,
            });
        }
        let mut ends = Vec::with_capacity(batches.len());
        let mut positions = Vec::with_capacity(n);
        for batch in batches {
            positions.extend(batch);
            ends.push(positions.len() as u32);
        }
        Ok(Self::from_parts(positions, ends))
    }

    /// The schedule that puts position `i` in parallel batch `levels[i]`, positions in batch
    /// order within each parallel batch. Every level below the largest must be used (the
    /// mixers produce levels that are, since a request at level `k > 0` follows one at `k - 1`).
    ///
    /// # Panics
    /// If a level between 0 and the largest is unused, or `levels` is longer than
    /// [`BATCH_REQUESTS_MAX`].
    pub(crate) fn from_levels(levels: &[u32]) -> Self {
        let n = checked_requests(levels.len());
        let level_count = levels.iter().max().map_or(0, |&max| max as usize + 1);
        // Counting sort: `ends[k]` first counts level k, then becomes its end offset.
        let mut ends = vec![0u32; level_count];
        for &level in levels {
            ends[level as usize] += 1;
        }
        let mut end = 0;
        for slot in &mut ends {
            assert!(*slot > 0, "every level below the largest holds a request");
            end += *slot;
            *slot = end;
        }
        // `next[k]`: where the next position at level k goes; starts at level k's start offset.
        let mut next: Vec<u32> = std::iter::once(0)
            .chain(ends.iter().copied())
            .take(level_count)
            .collect();
        let mut positions = vec![0u32; n as usize];
        for (position, &level) in levels.iter().enumerate() {
            let slot = &mut next[level as usize];
            positions[*slot as usize] = position as u32;
            *slot += 1;
        }
        Self::from_parts(positions, ends)
    }

    /// Wraps checked parts, asserting the cheap half of the invariant.
    fn from_parts(positions: Vec<u32>, ends: Vec<u32>) -> Self {
        assert!(
            ends.last().map_or(0, |&end| end as usize) == positions.len(),
            "the last parallel batch ends at the last position"
        );
        assert!(
            ends.iter().zip(ends.iter().skip(1)).all(|(a, b)| a < b) && ends.first() != Some(&0),
            "no parallel batch is empty"
        );
        Self { positions, ends }
    }

    /// How many requests the schedule holds (`n`).
    pub fn requests(&self) -> usize {
        self.positions.len()
    }

    /// How many parallel batches it has.
    pub fn parallel_batch_count(&self) -> usize {
        self.ends.len()
    }

    /// The positions in parallel batch `index`.
    ///
    /// # Panics
    /// If `index >= parallel_batch_count()`.
    pub fn parallel_batch(&self, index: usize) -> &[u32] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.positions[start as usize..self.ends[index] as usize]
    }

    /// The parallel batches in execution order.
    pub fn parallel_batches(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.ends.len()).map(|index| self.parallel_batch(index))
    }

    /// The number of requests in the largest parallel batch (0 for an empty schedule).
    pub fn widest(&self) -> usize {
        self.parallel_batches().map(<[u32]>::len).max().unwrap_or(0)
    }
}

/// `n` as a position count, asserted against [`BATCH_REQUESTS_MAX`].
fn checked_requests(n: usize) -> u32 {
    assert!(
        n <= BATCH_REQUESTS_MAX,
        "a batch of {n} requests exceeds BATCH_REQUESTS_MAX ({BATCH_REQUESTS_MAX})"
    );
    n as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(schedule: &Schedule) -> Vec<Vec<u32>> {
        schedule.parallel_batches().map(<[u32]>::to_vec).collect()
    }

    #[test]
    fn sequential_runs_one_request_per_parallel_batch_in_batch_order() {
        assert_eq!(
            batches(&Schedule::sequential(3)),
            vec![vec![0], vec![1], vec![2]]
        );
        assert_eq!(Schedule::sequential(3).widest(), 1, "one at a time");
    }

    #[test]
    fn parallel_runs_everything_in_one_parallel_batch() {
        assert_eq!(batches(&Schedule::parallel(3)), vec![vec![0, 1, 2]]);
        assert_eq!(Schedule::parallel(3).widest(), 3);
    }

    #[test]
    fn an_empty_batch_has_no_parallel_batch() {
        for schedule in [Schedule::sequential(0), Schedule::parallel(0)] {
            assert_eq!(
                schedule.parallel_batch_count(),
                0,
                "an empty parallel batch is invalid"
            );
            assert_eq!(schedule.requests(), 0);
            assert_eq!(schedule.widest(), 0);
        }
        assert_eq!(
            Schedule::from_parallel_batches(vec![]),
            Ok(Schedule::parallel(0))
        );
    }

    #[test]
    fn from_parallel_batches_keeps_the_given_order() {
        let schedule = Schedule::from_parallel_batches(vec![vec![2, 0], vec![1]]).unwrap();
        assert_eq!(
            batches(&schedule),
            vec![vec![2, 0], vec![1]],
            "order is the caller's"
        );
        assert_eq!(schedule.requests(), 3);
        assert_eq!(schedule.parallel_batch(1), &[1]);
    }

    #[test]
    fn from_parallel_batches_rejects_each_malformed_input_with_its_own_error() {
        assert_eq!(
            Schedule::from_parallel_batches(vec![vec![0], vec![], vec![1]]),
            Err(ScheduleError::EmptyParallelBatch { index: 1 }),
            "an empty parallel batch would be a barrier with no work"
        );
        assert_eq!(
            Schedule::from_parallel_batches(vec![vec![0, BATCH_REQUESTS_MAX as u32]]),
            Err(ScheduleError::OutOfRange {
                position: BATCH_REQUESTS_MAX as u32,
                max: BATCH_REQUESTS_MAX
            }),
            "no batch has more than BATCH_REQUESTS_MAX requests"
        );
        assert_eq!(
            Schedule::from_parallel_batches(vec![vec![0, 1], vec![1]]),
            Err(ScheduleError::Duplicate { position: 1 }),
            "a request executed twice"
        );
        assert_eq!(
            Schedule::from_parallel_batches(vec![vec![0, 3], vec![1]]),
            Err(ScheduleError::Missing { position: 2 }),
            "a request never executed"
        );
    }

    #[test]
    fn from_levels_groups_positions_by_level_in_batch_order() {
        assert_eq!(
            batches(&Schedule::from_levels(&[1, 0, 2, 0, 1])),
            vec![vec![1, 3], vec![0, 4], vec![2]],
            "parallel batch k holds the positions at level k, increasing"
        );
    }

    #[test]
    #[should_panic(expected = "every level below the largest holds a request")]
    fn from_levels_refuses_a_gap() {
        let _ = Schedule::from_levels(&[0, 2]);
    }
}
