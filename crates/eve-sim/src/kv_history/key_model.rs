//! The sequential specification of one key of [`eve_apps::KvStore`], for the per-key check.
//!
//! Each rule below restates what `eve_apps`'s `kv.rs` does to one key: counters and balances
//! are 8-byte little-endian `i64`s, an absent key counts as 0, any other length is
//! `NotANumber`, and an operation answered with `KvReply::Error` changed nothing. A transfer
//! between two keys is split into a transfer out of `from` and a transfer into `to`; each half
//! checks only what its own key must have been for the recorded reply to be possible (see the
//! module documentation of [`kv_history`](super) for what this cannot catch).

use crate::linearizability::Model;
use bytes::Bytes;
use eve_apps::KvReply;

/// What one call does to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyOp {
    /// `KvOp::Get`.
    Get,
    /// `KvOp::Put` of this value.
    Put(Bytes),
    /// `KvOp::Delete`.
    Delete,
    /// `KvOp::CompareAndSwap`.
    CompareAndSwap {
        expected: Option<Bytes>,
        new: Option<Bytes>,
    },
    /// `KvOp::Increment` by this delta.
    Increment(i64),
    /// `KvOp::Transfer` of this amount with `from == to`: it reads the key and changes nothing.
    TransferSelf(i64),
    /// The debit half of `KvOp::Transfer` of this amount, on `from`.
    TransferOut(i64),
    /// The credit half of `KvOp::Transfer` of this amount, on `to`.
    TransferIn(i64),
}

/// The value of one key: `None` when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct KeyState(pub(crate) Option<Bytes>);

impl KeyState {
    fn of_number(n: i64) -> Self {
        Self(Some(Bytes::copy_from_slice(&n.to_le_bytes())))
    }

    /// The key read as a counter: absent is 0, anything but 8 bytes is not a number.
    fn number(&self) -> Option<i64> {
        match &self.0 {
            None => Some(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                .ok()
                .map(i64::from_le_bytes),
        }
    }

    /// The single state after `op` answered with `reply` (never `Error`), or `None` if this
    /// key's value makes that reply impossible.
    fn after_reply(&self, op: &KeyOp, reply: &KvReply) -> Option<Self> {
        let number = self.number();
        let same = |holds: bool| holds.then(|| self.clone());
        match (op, reply) {
            (KeyOp::TransferSelf(_) | KeyOp::TransferOut(_) | KeyOp::TransferIn(_), _) => {
                self.after_transfer_reply(op, reply)
            }
            (KeyOp::Get, KvReply::Value(value)) => same(*value == self.0),
            (KeyOp::Put(new), KvReply::Value(old)) => {
                (*old == self.0).then(|| Self(Some(new.clone())))
            }
            (KeyOp::Delete, KvReply::Value(old)) => (*old == self.0).then_some(Self(None)),
            (KeyOp::CompareAndSwap { expected, new }, KvReply::Swapped) => {
                (self.0 == *expected).then(|| Self(new.clone()))
            }
            (KeyOp::CompareAndSwap { expected, .. }, KvReply::CasFailed { current }) => {
                same(self.0 == *current && current != expected)
            }
            (KeyOp::Increment(delta), KvReply::Counter(sum)) => {
                (number.and_then(|n| n.checked_add(*delta)) == Some(*sum))
                    .then(|| Self::of_number(*sum))
            }
            (KeyOp::Increment(_), KvReply::NotANumber) => same(number.is_none()),
            (KeyOp::Increment(delta), KvReply::Overflow) => {
                same(number.is_some_and(|n| n.checked_add(*delta).is_none()))
            }
            _ => None,
        }
    }

    /// [`KeyState::after_reply`] for the transfer kinds, in the order the store decides a
    /// transfer: `from` must be a number, then cover the amount, then (if `from != to`) `to`
    /// must be a number that does not overflow when credited.
    fn after_transfer_reply(&self, op: &KeyOp, reply: &KvReply) -> Option<Self> {
        let number = self.number();
        let same = |holds: bool| holds.then(|| self.clone());
        match (op, reply) {
            (
                KeyOp::TransferSelf(amount),
                KvReply::Transferred {
                    from_balance,
                    to_balance,
                },
            ) => same(
                from_balance == to_balance
                    && number == Some(*from_balance)
                    && covers(*from_balance, *amount),
            ),
            (KeyOp::TransferSelf(_), KvReply::NotANumber) => same(number.is_none()),
            (
                KeyOp::TransferSelf(amount) | KeyOp::TransferOut(amount),
                KvReply::InsufficientFunds { balance },
            ) => same(number == Some(*balance) && !covers(*balance, *amount)),
            (KeyOp::TransferOut(amount), KvReply::Transferred { from_balance, .. }) => number
                .filter(|&n| covers(n, *amount) && n - amount == *from_balance)
                .map(|_| Self::of_number(*from_balance)),
            // Either `from` is not a number, or it covers the amount and `to` is not a number.
            (KeyOp::TransferOut(amount), KvReply::NotANumber) => {
                same(number.is_none_or(|n| covers(n, *amount)))
            }
            // `from` covered the amount and crediting `to` overflowed, so the amount is positive.
            (KeyOp::TransferOut(amount), KvReply::Overflow) => {
                same(*amount > 0 && number.is_some_and(|n| covers(n, *amount)))
            }
            (KeyOp::TransferIn(amount), KvReply::Transferred { to_balance, .. }) => (*amount >= 0
                && number.and_then(|n| n.checked_add(*amount)) == Some(*to_balance))
            .then(|| Self::of_number(*to_balance)),
            // The store refused on `from` (perhaps before it read `to`): `to` may hold anything.
            (KeyOp::TransferIn(_), KvReply::InsufficientFunds { .. } | KvReply::NotANumber) => {
                Some(self.clone())
            }
            (KeyOp::TransferIn(amount), KvReply::Overflow) => {
                same(*amount > 0 && number.is_some_and(|n| n.checked_add(*amount).is_none()))
            }
            _ => None,
        }
    }

    /// Every state `op` may leave if it took effect with an unknown reply.
    fn after_unknown(&self, op: &KeyOp) -> Vec<Self> {
        let number = self.number();
        match op {
            KeyOp::Get | KeyOp::TransferSelf(_) => vec![self.clone()],
            KeyOp::Put(value) => vec![Self(Some(value.clone()))],
            KeyOp::Delete => vec![Self(None)],
            KeyOp::CompareAndSwap { expected, new } if self.0 == *expected => {
                vec![Self(new.clone())]
            }
            KeyOp::CompareAndSwap { .. } => vec![self.clone()],
            KeyOp::Increment(delta) => match number.and_then(|n| n.checked_add(*delta)) {
                Some(sum) => vec![Self::of_number(sum)],
                None => vec![self.clone()],
            },
            // Debited, or refused because of `to` (which this key cannot see).
            KeyOp::TransferOut(amount) => match number {
                Some(n) if covers(n, *amount) => vec![Self::of_number(n - amount), self.clone()],
                _ => vec![self.clone()],
            },
            // Credited, or refused because of `from` (which this key cannot see).
            KeyOp::TransferIn(amount) => match number.and_then(|n| n.checked_add(*amount)) {
                Some(sum) if *amount >= 0 => vec![Self::of_number(sum), self.clone()],
                _ => vec![self.clone()],
            },
        }
    }
}

/// Whether a balance allows a transfer of `amount`, as the store decides it.
fn covers(balance: i64, amount: i64) -> bool {
    amount >= 0 && balance >= amount
}

impl Model for KeyState {
    type Op = KeyOp;
    type Ret = KvReply;

    fn step(&self, op: &KeyOp, ret: Option<&KvReply>) -> Vec<Self> {
        match ret {
            None => self.after_unknown(op),
            Some(KvReply::Error(_)) => vec![self.clone()],
            Some(reply) => self.after_reply(op, reply).into_iter().collect(),
        }
    }

    fn is_read_only(op: &KeyOp, ret: Option<&KvReply>) -> bool {
        match (op, ret) {
            // A self-transfer reads its key and returns before writing, whatever its outcome.
            (KeyOp::Get | KeyOp::TransferSelf(_), _) => true,
            (_, None) => false,
            (_, Some(KvReply::Error(_) | KvReply::CasFailed { .. })) => true,
            (
                KeyOp::Increment(_) | KeyOp::TransferOut(_) | KeyOp::TransferIn(_),
                Some(KvReply::NotANumber | KvReply::Overflow | KvReply::InsufficientFunds { .. }),
            ) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: i64) -> KeyState {
        KeyState::of_number(n)
    }

    fn text(s: &'static str) -> KeyState {
        KeyState(Some(Bytes::from_static(s.as_bytes())))
    }

    fn step(state: &KeyState, op: KeyOp, reply: KvReply) -> Vec<KeyState> {
        state.step(&op, Some(&reply))
    }

    #[test]
    fn an_absent_counter_is_zero_but_stays_distinct_from_a_stored_zero() {
        let absent = KeyState(None);
        assert_eq!(
            step(&absent, KeyOp::Increment(0), KvReply::Counter(0)),
            vec![num(0)],
            "incrementing an absent key by 0 stores an explicit 0"
        );
        assert_eq!(
            step(&num(0), KeyOp::Get, KvReply::Value(None)),
            vec![],
            "a stored 0 is not an absent key to Get"
        );
        assert_eq!(
            step(&text("abc"), KeyOp::Increment(1), KvReply::NotANumber),
            vec![text("abc")],
            "a 3-byte value is not a number"
        );
        assert_eq!(
            step(&num(i64::MAX), KeyOp::Increment(1), KvReply::Overflow),
            vec![num(i64::MAX)],
            "overflow leaves the counter as it was"
        );
        assert_eq!(
            step(&num(1), KeyOp::Increment(1), KvReply::Overflow),
            vec![],
            "1 + 1 does not overflow"
        );
    }

    #[test]
    fn compare_and_swap_failure_must_name_the_value_that_differed() {
        let state = text("a");
        let cas = |expected: Option<&'static str>| KeyOp::CompareAndSwap {
            expected: expected.map(|s| Bytes::from_static(s.as_bytes())),
            new: None,
        };
        assert_eq!(
            step(&state, cas(Some("a")), KvReply::Swapped),
            vec![KeyState(None)],
            "a matching CAS installs the new value (here: deletes)"
        );
        assert_eq!(
            step(
                &state,
                cas(Some("b")),
                KvReply::CasFailed {
                    current: Some(Bytes::from_static(b"a"))
                }
            ),
            vec![state.clone()],
            "a mismatching CAS reports the current value"
        );
        assert_eq!(
            step(
                &state,
                cas(Some("a")),
                KvReply::CasFailed {
                    current: Some(Bytes::from_static(b"a"))
                }
            ),
            vec![],
            "a CAS cannot fail when the current value is the expected one"
        );
    }

    #[test]
    fn transfer_halves_constrain_only_their_own_key() {
        let transferred = KvReply::Transferred {
            from_balance: 3,
            to_balance: 7,
        };
        assert_eq!(
            step(&num(5), KeyOp::TransferOut(2), transferred.clone()),
            vec![num(3)],
            "from held 5, paid 2, left 3"
        );
        assert_eq!(
            step(&num(4), KeyOp::TransferOut(2), transferred.clone()),
            vec![],
            "from cannot be left with 3 after paying 2 out of 4"
        );
        assert_eq!(
            step(&num(5), KeyOp::TransferIn(2), transferred.clone()),
            vec![num(7)],
            "to held 5, received 2, holds 7"
        );
        assert_eq!(
            step(&KeyState(None), KeyOp::TransferIn(7), transferred),
            vec![num(7)],
            "an absent `to` counts as 0"
        );
        let refused = KvReply::InsufficientFunds { balance: 1 };
        assert_eq!(
            step(&num(1), KeyOp::TransferOut(2), refused.clone()),
            vec![num(1)],
            "1 does not cover 2"
        );
        assert_eq!(
            step(&num(1), KeyOp::TransferOut(-1), refused.clone()),
            vec![num(1)],
            "a negative amount is always refused"
        );
        assert_eq!(
            step(&num(1), KeyOp::TransferOut(1), refused.clone()),
            vec![],
            "1 covers 1"
        );
        assert_eq!(
            step(&text("x"), KeyOp::TransferIn(2), refused),
            vec![text("x")],
            "a refusal on `from` says nothing about `to`"
        );
    }

    #[test]
    fn transfer_not_a_number_and_overflow_accept_every_cause() {
        assert_eq!(
            step(&text("x"), KeyOp::TransferOut(2), KvReply::NotANumber),
            vec![text("x")],
            "from itself was not a number"
        );
        assert_eq!(
            step(&num(2), KeyOp::TransferOut(2), KvReply::NotANumber),
            vec![num(2)],
            "from covered the amount, so `to` was not a number"
        );
        assert_eq!(
            step(&num(1), KeyOp::TransferOut(2), KvReply::NotANumber),
            vec![],
            "from is a number that does not cover 2: the reply would be InsufficientFunds"
        );
        assert_eq!(
            step(&num(9), KeyOp::TransferIn(2), KvReply::NotANumber),
            vec![num(9)],
            "to is a number, so `from` was not"
        );
        assert_eq!(
            step(&num(i64::MAX), KeyOp::TransferIn(1), KvReply::Overflow),
            vec![num(i64::MAX)],
            "crediting i64::MAX overflows"
        );
        assert_eq!(
            step(&num(5), KeyOp::TransferOut(0), KvReply::Overflow),
            vec![],
            "crediting 0 never overflows"
        );
    }

    #[test]
    fn a_transfer_to_itself_changes_nothing_even_on_an_absent_key() {
        let reply = KvReply::Transferred {
            from_balance: 0,
            to_balance: 0,
        };
        assert_eq!(
            step(&KeyState(None), KeyOp::TransferSelf(0), reply),
            vec![KeyState(None)],
            "the store returns before writing when from == to"
        );
        assert_eq!(
            KeyState(None).step(&KeyOp::TransferSelf(0), None),
            vec![KeyState(None)],
            "a pending self-transfer cannot change the key"
        );
    }

    #[test]
    fn an_error_reply_means_no_effect_and_a_wrong_reply_kind_is_impossible() {
        assert_eq!(
            step(
                &text("a"),
                KeyOp::Put(Bytes::from_static(b"b")),
                KvReply::Error("too large".into())
            ),
            vec![text("a")],
            "an Error reply had no effect"
        );
        assert_eq!(
            step(&text("a"), KeyOp::Get, KvReply::Swapped),
            vec![],
            "a Get is never answered Swapped"
        );
    }

    #[test]
    fn calls_declared_read_only_never_change_the_key() {
        let states = [KeyState(None), num(0), num(5), num(i64::MAX), text("abc")];
        let ops = [
            KeyOp::Get,
            KeyOp::Put(Bytes::from_static(b"x")),
            KeyOp::Delete,
            KeyOp::CompareAndSwap {
                expected: None,
                new: Some(Bytes::from_static(b"x")),
            },
            KeyOp::Increment(1),
            KeyOp::TransferSelf(2),
            KeyOp::TransferOut(2),
            KeyOp::TransferIn(2),
        ];
        let replies = [
            KvReply::Value(None),
            KvReply::Value(num(5).0),
            KvReply::Swapped,
            KvReply::CasFailed { current: None },
            KvReply::Counter(6),
            KvReply::Transferred {
                from_balance: 3,
                to_balance: 3,
            },
            KvReply::InsufficientFunds { balance: 5 },
            KvReply::NotANumber,
            KvReply::Overflow,
            KvReply::Error("refused".into()),
        ];
        for op in &ops {
            for ret in replies.iter().map(Some).chain([None]) {
                if !KeyState::is_read_only(op, ret) {
                    continue;
                }
                for state in &states {
                    assert!(
                        state.step(op, ret).iter().all(|next| next == state),
                        "{op:?} answered {ret:?} is declared read-only but changes {state:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_pending_transfer_may_or_may_not_move_funds_on_each_side() {
        assert_eq!(
            num(5).step(&KeyOp::TransferOut(2), None),
            vec![num(3), num(5)],
            "debited, or refused because of `to`"
        );
        assert_eq!(
            num(1).step(&KeyOp::TransferOut(2), None),
            vec![num(1)],
            "1 does not cover 2: never debited"
        );
        assert_eq!(
            KeyState(None).step(&KeyOp::TransferIn(2), None),
            vec![num(2), KeyState(None)],
            "credited, or refused because of `from`"
        );
    }
}
