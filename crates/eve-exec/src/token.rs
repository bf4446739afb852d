//! The token a replica sends to the verifiers after executing a batch.

use eve_types::{BatchSeq, Digest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `H(seq || previous_root || new_root)`: binds the batch, the state it started from and the
/// state (objects and reply cache, hence replies) it produced. Replicas whose tokens match
/// executed the batch to the same result.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Token(pub Digest);

impl Token {
    /// The token of batch `seq` taking the state from `previous_root` to `new_root`.
    pub fn compute(seq: BatchSeq, previous_root: Digest, new_root: Digest) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"eve-token-v1");
        hasher.update(&seq.0.to_le_bytes());
        hasher.update(previous_root.as_bytes());
        hasher.update(new_root.as_bytes());
        Self(Digest(*hasher.finalize().as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.0.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_changes_with_each_input() {
        let a = Digest([1; 32]);
        let b = Digest([2; 32]);
        let base = Token::compute(BatchSeq(1), a, b);
        assert_eq!(base, Token::compute(BatchSeq(1), a, b), "a pure function");
        assert_ne!(base, Token::compute(BatchSeq(2), a, b));
        assert_ne!(base, Token::compute(BatchSeq(1), b, b));
        assert_ne!(base, Token::compute(BatchSeq(1), a, a));
        assert_ne!(
            base,
            Token::compute(BatchSeq(1), b, a),
            "order of the roots matters"
        );
    }
}
