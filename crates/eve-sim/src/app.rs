//! The application the simulator replicates: the real key-value store, plus two ways to make
//! replicas diverge on purpose.

use bytes::Bytes;
use eve_apps::KvWithRacy;
use eve_exec::{Application, ExecContext};
use eve_mixer::ConflictKeys;
use eve_types::splitmix64;

pub use eve_apps::RACY_OP;

/// The object a corrupting replica overwrites.
pub const CORRUPTED_KEY: &[u8] = b"corrupted";

/// [`KvWithRacy`] (the key-value store, and a racy counter for operations starting with
/// [`RACY_OP`]) and, on a replica configured to corrupt, a stray write after some requests:
/// the replica that corrupts an object after executing.
#[derive(Clone, Copy, Debug)]
pub struct SimApp {
    app: KvWithRacy,
    /// Parts per million of requests after which this replica writes garbage.
    corrupt_ppm: u32,
    /// Makes this replica's garbage its own.
    salt: u64,
}

impl SimApp {
    /// The application of a correct replica.
    pub fn correct() -> Self {
        Self {
            app: KvWithRacy::new(0),
            corrupt_ppm: 0,
            salt: 0,
        }
    }

    /// The application of a replica that corrupts an object after `corrupt_ppm` parts per
    /// million of its requests.
    pub fn corrupting(corrupt_ppm: u32, salt: u64) -> Self {
        Self {
            corrupt_ppm,
            salt,
            ..Self::correct()
        }
    }
}

impl Application for SimApp {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        self.app.conflict_keys(op, keys)
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        let reply = self.app.execute(ctx, op);
        if self.corrupt_ppm > 0 {
            let draw = splitmix64(ctx.random() ^ self.salt);
            if draw % 1_000_000 < u64::from(self.corrupt_ppm) {
                let _ = ctx.put(CORRUPTED_KEY, draw.to_le_bytes().to_vec());
            }
        }
        reply
    }

    fn name(&self) -> &'static str {
        "sim-kv"
    }
}
