//! Time as the protocol logic sees it: a number handed in by the driver, never read from a
//! clock. The simulator passes simulated time; the node passes time since it started.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time, in microseconds since an arbitrary origin fixed by the driver.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time(pub u64);

impl Time {
    /// Time zero.
    pub const ZERO: Time = Time(0);

    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms.saturating_mul(1000)))
    }

    /// This time minus `ms` milliseconds (saturating at zero).
    pub fn minus_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_sub(ms.saturating_mul(1000)))
    }

    /// This time plus `us` microseconds (saturating).
    pub fn plus_us(self, us: u64) -> Time {
        Time(self.0.saturating_add(us))
    }

    /// Whole milliseconds since the origin.
    pub fn as_ms(self) -> u64 {
        self.0 / 1000
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1000, self.0 % 1000)
    }
}
