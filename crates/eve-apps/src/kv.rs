//! The built-in replicated key-value store.

use bytes::Bytes;
use eve_exec::{Application, ExecContext};
use eve_mixer::ConflictKeys;
use serde::{Deserialize, Serialize};

/// An operation on the key-value store. Keys are application objects; keys that start with
/// byte `0xff` are refused (eve keeps them for itself). Counters and balances are stored as
/// 8-byte little-endian `i64`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Reads a key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Writes a key.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Sets `key` to `new` (deletes it if `None`) only if its value is `expected`
    /// (`None`: absent).
    CompareAndSwap {
        /// The key.
        key: Bytes,
        /// The value it must have.
        expected: Option<Bytes>,
        /// The value it gets.
        new: Option<Bytes>,
    },
    /// Adds `delta` to the counter at `key` (absent counts as 0).
    Increment {
        /// The key.
        key: Bytes,
        /// The amount, which may be negative.
        delta: i64,
    },
    /// Moves `amount` from the balance at `from` to the balance at `to`, atomically, if `from`
    /// holds at least `amount` (absent balances count as 0).
    Transfer {
        /// The debited key.
        from: Bytes,
        /// The credited key.
        to: Bytes,
        /// The amount.
        amount: i64,
    },
}

/// The store's answer to a [`KvOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    /// The value read (`Get`), or the value before the write (`Put`, `Delete`).
    Value(Option<Bytes>),
    /// `CompareAndSwap` succeeded.
    Swapped,
    /// `CompareAndSwap` failed; the key's current value.
    CasFailed {
        /// The current value.
        current: Option<Bytes>,
    },
    /// A counter's value after `Increment`.
    Counter(i64),
    /// `Transfer` succeeded; the balances after it.
    Transferred {
        /// Balance left at `from`.
        from_balance: i64,
        /// Balance now at `to`.
        to_balance: i64,
    },
    /// `Transfer` refused: `from` holds too little (or the amount is negative).
    InsufficientFunds {
        /// The balance at `from`.
        balance: i64,
    },
    /// The key holds something that is not an 8-byte counter.
    NotANumber,
    /// The arithmetic would overflow an `i64`.
    Overflow,
    /// The operation could not be decoded, or the store refused it (reserved key, too large).
    Error(String),
}

impl KvOp {
    /// The operation's wire form.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a KvOp cannot fail"))
    }

    /// Decodes an operation.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

impl KvReply {
    /// The reply's wire form.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a KvReply cannot fail"))
    }

    /// Decodes a reply.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// The replicated key-value store: one object per key.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvStore;

impl Application for KvStore {
    fn conflict_keys(&self, op: &[u8], keys: &mut ConflictKeys) {
        match KvOp::decode(op) {
            Ok(KvOp::Get { key }) => keys.read(&key),
            Ok(
                KvOp::Put { key, .. }
                | KvOp::Delete { key }
                | KvOp::CompareAndSwap { key, .. }
                | KvOp::Increment { key, .. },
            ) => keys.write(&key),
            Ok(KvOp::Transfer { from, to, .. }) => {
                keys.write(&from);
                keys.write(&to);
            }
            // Undecodable operations touch nothing; they only produce an error reply.
            Err(_) => {}
        }
    }

    fn execute(&self, ctx: &mut ExecContext<'_>, op: &[u8]) -> Bytes {
        let reply = match KvOp::decode(op) {
            Ok(op) => apply(ctx, op),
            Err(err) => KvReply::Error(format!("undecodable operation: {err}")),
        };
        reply.encode()
    }

    fn name(&self) -> &'static str {
        "kv"
    }
}

fn apply(ctx: &mut ExecContext<'_>, op: KvOp) -> KvReply {
    let result = match op {
        KvOp::Get { key } => Ok(KvReply::Value(ctx.get(&key))),
        KvOp::Put { key, value } => {
            let old = ctx.get(&key);
            ctx.put(&key, value).map(|()| KvReply::Value(old))
        }
        KvOp::Delete { key } => {
            let old = ctx.get(&key);
            ctx.delete(&key).map(|_| KvReply::Value(old))
        }
        KvOp::CompareAndSwap { key, expected, new } => {
            let current = ctx.get(&key);
            if current != expected {
                Ok(KvReply::CasFailed { current })
            } else {
                match new {
                    Some(value) => ctx.put(&key, value),
                    None => ctx.delete(&key).map(|_| ()),
                }
                .map(|()| KvReply::Swapped)
            }
        }
        KvOp::Increment { key, delta } => match read_number(ctx, &key) {
            Err(reply) => Ok(reply),
            Ok(value) => match value.checked_add(delta) {
                None => Ok(KvReply::Overflow),
                Some(sum) => write_number(ctx, &key, sum).map(|()| KvReply::Counter(sum)),
            },
        },
        KvOp::Transfer { from, to, amount } => transfer(ctx, &from, &to, amount),
    };
    result.unwrap_or_else(|err| KvReply::Error(err.to_string()))
}

fn transfer(
    ctx: &mut ExecContext<'_>,
    from: &[u8],
    to: &[u8],
    amount: i64,
) -> Result<KvReply, eve_state::StateError> {
    let from_balance = match read_number(ctx, from) {
        Ok(balance) => balance,
        Err(reply) => return Ok(reply),
    };
    if amount < 0 || from_balance < amount {
        return Ok(KvReply::InsufficientFunds {
            balance: from_balance,
        });
    }
    if from == to {
        return Ok(KvReply::Transferred {
            from_balance,
            to_balance: from_balance,
        });
    }
    let to_balance = match read_number(ctx, to) {
        Ok(balance) => balance,
        Err(reply) => return Ok(reply),
    };
    let Some(credited) = to_balance.checked_add(amount) else {
        return Ok(KvReply::Overflow);
    };
    let debited = from_balance - amount;
    write_number(ctx, to, credited)?;
    write_number(ctx, from, debited)?;
    Ok(KvReply::Transferred {
        from_balance: debited,
        to_balance: credited,
    })
}

/// Reads a counter; absent is 0. A value of the wrong size is answered with `NotANumber`.
pub(crate) fn read_number(ctx: &ExecContext<'_>, key: &[u8]) -> Result<i64, KvReply> {
    match ctx.get(key) {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
            .map(i64::from_le_bytes)
            .map_err(|_| KvReply::NotANumber),
    }
}

fn write_number(
    ctx: &mut ExecContext<'_>,
    key: &[u8],
    value: i64,
) -> Result<(), eve_state::StateError> {
    ctx.put(key, value.to_le_bytes().to_vec())
}
