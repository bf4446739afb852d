//! Identifier newtypes. Each names one concept so that a replica id can never be passed where
//! a batch sequence number is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw number inside the identifier.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_newtype!(
    /// An execution replica or verifier, numbered from 0 in the cluster configuration.
    ReplicaId(u32),
    "R"
);
id_newtype!(
    /// A verifier, numbered from 0 in the cluster configuration (`n_ver` of them).
    VerifierId(u32),
    "Ver"
);
id_newtype!(
    /// A client of the replicated service.
    ClientId(u64),
    "C"
);
id_newtype!(
    /// A client's own request counter; each client numbers its requests 1, 2, 3, ...
    RequestNo(u64),
    "#"
);
id_newtype!(
    /// The position of a batch in the agreed order. `BatchSeq(0)` names the empty initial
    /// state; the first batch is `BatchSeq(1)`. The state store names each version by the
    /// sequence number of the batch that produced it.
    BatchSeq(u64),
    "S"
);
id_newtype!(
    /// A view: the period during which one execution replica (`view mod n_exec`) is primary.
    View(u64),
    "V"
);

impl BatchSeq {
    /// The sequence number after this one.
    ///
    /// # Panics
    /// On overflow of `u64`, which 2^64 batches cannot reach in practice.
    pub fn next(self) -> Self {
        Self(self.0.checked_add(1).expect("BatchSeq overflow"))
    }

    /// The sequence number before this one, or `None` at `BatchSeq(0)`.
    pub fn prev(self) -> Option<Self> {
        self.0.checked_sub(1).map(Self)
    }
}

impl View {
    /// The view after this one.
    ///
    /// # Panics
    /// On overflow of `u64`.
    pub fn next(self) -> Self {
        Self(self.0.checked_add(1).expect("View overflow"))
    }
}

impl RequestNo {
    /// The request number after this one.
    ///
    /// # Panics
    /// On overflow of `u64`.
    pub fn next(self) -> Self {
        Self(self.0.checked_add(1).expect("RequestNo overflow"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_with_their_prefix() {
        assert_eq!(format!("{}", ReplicaId(2)), "R2");
        assert_eq!(format!("{:?}", BatchSeq(7)), "S7");
        assert_eq!(format!("{}", ClientId(9)), "C9");
    }

    #[test]
    fn batch_seq_steps() {
        assert_eq!(BatchSeq(0).next(), BatchSeq(1));
        assert_eq!(BatchSeq(0).prev(), None);
        assert_eq!(BatchSeq(5).prev(), Some(BatchSeq(4)));
    }

    #[test]
    fn ids_encode_as_plain_integers() {
        let bytes = postcard::to_allocvec(&BatchSeq(300)).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&300u64).unwrap());
    }
}
