//! The node's clock: the protocol's [`Time`] is microseconds since the node started, read
//! from a monotonic clock (wall-clock jumps never reach the logic).

use eve_agreement::Time;
use std::time::{Duration, Instant};

/// Maps the monotonic clock to protocol time and back.
#[derive(Clone, Copy, Debug)]
pub struct NodeClock {
    start: Instant,
}

impl NodeClock {
    /// A clock whose time 0 is now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// The protocol time now.
    pub fn now(&self) -> Time {
        Time(self.start.elapsed().as_micros() as u64)
    }

    /// The instant at which protocol time `at` falls.
    pub fn instant(&self, at: Time) -> Instant {
        self.start + Duration::from_micros(at.0)
    }
}

/// Nanoseconds on the monotonic clock since the process first asked: the clock the node lends
/// its executors to time their parallel batches (`Executor::with_adaptive_inline`).
pub fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
