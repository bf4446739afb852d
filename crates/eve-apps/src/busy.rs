//! A benchmark application whose requests burn a chosen amount of CPU and write one object,
//! and the busy-work function it shares with the plain-thread baseline.

use bytes::Bytes;
use eve_exec::{Application, ExecContext};
use eve_mixer::ConflictKeys;
use serde::{Deserialize, Serialize};

/// Burns CPU for `rounds` rounds of a xorshift generator (a few nanoseconds each; calibrate
/// with a clock to get a duration) and returns a value that depends on every round, so the
/// work cannot be optimised away.
pub fn busy_work(rounds: u32) -> u64 {
    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(rounds);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    x
}

/// One request of the busy-work application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyOp {
    /// Rounds of [`busy_work`] to run.
    pub rounds: u32,
    /// The object the request writes (and names as its conflict key).
    pub object: u64,
}

impl BusyOp {
    /// The operation's wire form.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a BusyOp cannot fail"))
    }
}

/// Requests burn CPU, then write their object; conflicts come from requests that share an
/// object. The reply is the 8-byte result of the busy work.
#[derive(Clone, Copy, Debug, Default)]
pub struct BusyWork;

fn object_key(object: u64) -> [u8; 9] {
    let mut key = [b'b'; 9];
    key[1..].copy_from_slice(&object.to_be_bytes());
    key
}

impl Application for BusyWork {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        match postcard::from_bytes::<BusyOp>(op) {
            Ok(op) => keys.write(&object_key(op.object)),
            Err(_) => keys.conflict_with_everything(),
        }
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        let Ok(op) = postcard::from_bytes::<BusyOp>(op) else {
            return Bytes::from_static(b"undecodable BusyOp");
        };
        let result = busy_work(op.rounds);
        let value = result.to_le_bytes();
        match ctx.put(&object_key(op.object), value.to_vec()) {
            Ok(()) => Bytes::copy_from_slice(&value),
            Err(err) => Bytes::from(err.to_string()),
        }
    }

    fn name(&self) -> &'static str {
        "busy-work"
    }
}
