//! What clients send, what they get back, and the non-deterministic inputs of a batch.

use crate::ids::{BatchSeq, ClientId, RequestNo};
use crate::limits::{OP_BYTES_MAX, REPLY_BYTES_MAX};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A client's request: an opaque operation that the application decodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Request {
    /// Who sent it.
    pub client: ClientId,
    /// The client's number for it; a client's requests execute in this order, each once.
    pub request_no: RequestNo,
    /// The operation, in the application's own encoding.
    pub op: Bytes,
    /// The client's signature over [`signing_payload`](Self::signing_payload), required when
    /// the cluster tolerates Byzantine replicas (`r >= 1`) and absent otherwise.
    pub signature: Option<Signature>,
}

/// A 64-byte signature (ed25519 in the node): a client's over its request, a verifier's over
/// its vote or view change.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "..)")
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Signature;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                let bytes: [u8; 64] = bytes
                    .try_into()
                    .map_err(|_| E::invalid_length(bytes.len(), &self))?;
                Ok(Signature(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

impl Request {
    /// A request, checked against [`OP_BYTES_MAX`].
    pub fn new(
        client: ClientId,
        request_no: RequestNo,
        op: impl Into<Bytes>,
    ) -> Result<Self, RequestError> {
        let request = Self {
            client,
            request_no,
            op: op.into(),
            signature: None,
        };
        request.check()?;
        Ok(request)
    }

    /// The bytes a client signs: a domain tag, the cluster's id (so a request of one cluster
    /// cannot be replayed in another), the client, the request number and the operation.
    pub fn signing_payload(&self, cluster: &crate::Digest) -> Vec<u8> {
        const TAG: &[u8] = b"eve/request/v1";
        let mut payload = Vec::with_capacity(TAG.len() + 32 + 16 + self.op.len());
        payload.extend_from_slice(TAG);
        payload.extend_from_slice(&cluster.0);
        payload.extend_from_slice(&self.client.0.to_le_bytes());
        payload.extend_from_slice(&self.request_no.0.to_le_bytes());
        payload.extend_from_slice(&self.op);
        payload
    }

    /// Checks a request that arrived from outside (a decoded message) against the limits.
    pub fn check(&self) -> Result<(), RequestError> {
        if self.op.len() > OP_BYTES_MAX {
            return Err(RequestError::OpTooLarge {
                bytes: self.op.len(),
                max: OP_BYTES_MAX,
            });
        }
        if self.request_no == RequestNo(0) {
            return Err(RequestError::ZeroRequestNo);
        }
        Ok(())
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The operation is longer than the limit.
    #[error("operation is {bytes} bytes; the limit is {max} (eve_types::limits::OP_BYTES_MAX)")]
    OpTooLarge {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Request numbers start at 1; 0 means "nothing executed yet" in the reply cache.
    #[error("request number 0 is reserved; number a client's requests from 1")]
    ZeroRequestNo,
}

/// The result of executing one request, as the executing replica reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reply {
    /// The client the reply goes to.
    pub client: ClientId,
    /// The request it answers.
    pub request_no: RequestNo,
    /// The batch that executed the request.
    pub seq: BatchSeq,
    /// The application's reply, at most [`REPLY_BYTES_MAX`] bytes.
    pub body: Bytes,
}

impl Reply {
    /// Largest reply body; see [`REPLY_BYTES_MAX`].
    pub const BODY_BYTES_MAX: usize = REPLY_BYTES_MAX;
}

/// The non-deterministic inputs of a batch, chosen once by the primary and carried in the batch
/// so that every replica executes with the same values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NonDet {
    /// The primary's clock when it cut the batch, in milliseconds since the Unix epoch
    /// (or since the start of a simulation).
    pub time_ms: u64,
    /// A random seed; each request derives its own value from it and its position.
    pub seed: u64,
}

impl NonDet {
    /// The deterministic random value of the request at `position` in the batch
    /// (splitmix64 of the seed and the position: cheap, and different for every position).
    pub fn random_for(&self, position: usize) -> u64 {
        crate::rng::splitmix64(self.seed ^ crate::rng::splitmix64(position as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_op_is_refused_with_its_size() {
        let err = Request::new(ClientId(1), RequestNo(1), vec![0u8; OP_BYTES_MAX + 1]).unwrap_err();
        assert_eq!(
            err,
            RequestError::OpTooLarge {
                bytes: OP_BYTES_MAX + 1,
                max: OP_BYTES_MAX
            }
        );
        assert!(err.to_string().contains("OP_BYTES_MAX"));
    }

    #[test]
    fn a_signature_round_trips_and_the_payload_binds_every_field() {
        let mut request = Request::new(ClientId(7), RequestNo(9), &b"op"[..]).unwrap();
        request.signature = Some(Signature([5; 64]));
        let bytes = postcard::to_allocvec(&request).unwrap();
        assert_eq!(postcard::from_bytes::<Request>(&bytes).unwrap(), request);
        let cluster = crate::Digest([1; 32]);
        let base = request.signing_payload(&cluster);
        let mut other = request.clone();
        other.client = ClientId(8);
        assert_ne!(other.signing_payload(&cluster), base);
        let mut other = request.clone();
        other.request_no = RequestNo(10);
        assert_ne!(other.signing_payload(&cluster), base);
        let mut other = request.clone();
        other.op = Bytes::from_static(b"oq");
        assert_ne!(other.signing_payload(&cluster), base);
        assert_ne!(request.signing_payload(&crate::Digest([2; 32])), base);
    }

    #[test]
    fn request_no_zero_is_refused() {
        assert_eq!(
            Request::new(ClientId(1), RequestNo(0), &b"x"[..]).unwrap_err(),
            RequestError::ZeroRequestNo
        );
    }

    #[test]
    fn random_values_differ_by_position_and_repeat_for_same_inputs() {
        let nondet = NonDet {
            time_ms: 5,
            seed: 42,
        };
        let values: Vec<u64> = (0..100).map(|i| nondet.random_for(i)).collect();
        let mut unique = values.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 100, "every position gets its own value");
        assert_eq!(
            values[7],
            nondet.random_for(7),
            "the same inputs give the same value"
        );
    }

    #[test]
    fn request_round_trips_through_postcard() {
        let r = Request::new(ClientId(3), RequestNo(9), &b"op"[..]).unwrap();
        let bytes = postcard::to_allocvec(&r).unwrap();
        let back: Request = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
    }
}
