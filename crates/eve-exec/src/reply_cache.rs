//! The reply cache: each client's last reply, kept as an object of the replicated state so
//! that replies are covered by the Merkle root (and so by the token), rolled back and
//! transferred with everything else.

use bytes::Bytes;
use eve_mixer::ConflictKey;
use eve_state::{SYSTEM_KEY_PREFIX, StateStore};
use eve_types::{BatchSeq, ClientId, RequestNo};
use serde::{Deserialize, Serialize};

/// A client's last executed request and its reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedReply {
    /// The request it answers.
    pub request_no: RequestNo,
    /// The batch that executed it.
    pub seq: BatchSeq,
    /// The reply.
    pub body: Bytes,
}

/// An entry's bytes: `request_no` (u64, little-endian), `seq` (u64, little-endian), then the
/// body. A fixed header, so that looking an entry up (every request does, to tell a new
/// request from a retransmission) reads two numbers and shares the body without copying it.
const HEADER_BYTES: usize = 16;

impl CachedReply {
    /// The entry as stored in the state.
    pub fn encode(&self) -> Bytes {
        encode(self.request_no, self.seq, &self.body)
    }

    /// An entry read from the state; `None` if it is shorter than its header (impossible
    /// unless the state was corrupted). The body shares `bytes`.
    pub fn decode(bytes: Bytes) -> Option<Self> {
        let (request_no, seq) = header(&bytes)?;
        Some(Self {
            request_no,
            seq,
            body: bytes.slice(HEADER_BYTES..),
        })
    }
}

fn encode(request_no: RequestNo, seq: BatchSeq, body: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + body.len());
    bytes.extend_from_slice(&request_no.0.to_le_bytes());
    bytes.extend_from_slice(&seq.0.to_le_bytes());
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// The request number and batch of an entry's bytes.
fn header(bytes: &[u8]) -> Option<(RequestNo, BatchSeq)> {
    let header: &[u8; HEADER_BYTES] = bytes.get(..HEADER_BYTES)?.try_into().ok()?;
    let number =
        |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes of a header"));
    Some((RequestNo(number(0)), BatchSeq(number(8))))
}

/// The object key of a client's entry: `0xff 'r' <client id, big-endian>`.
pub fn reply_cache_key(client: ClientId) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = SYSTEM_KEY_PREFIX;
    key[1] = b'r';
    key[2..].copy_from_slice(&client.0.to_be_bytes());
    key
}

/// The conflict key of a client's entry: every request of the client writes it, so the mixer
/// never runs two requests of one client in the same parallel batch.
pub fn reply_cache_conflict_key(client: ClientId) -> ConflictKey {
    ConflictKey::of(&reply_cache_key(client))
}

/// The client's cached reply, if any. An entry that does not decode (impossible unless the
/// state was corrupted) reads as absent, and the request executes again.
pub fn lookup(state: &StateStore, client: ClientId) -> Option<CachedReply> {
    CachedReply::decode(state.get(&reply_cache_key(client))?)
}

/// The client's cached reply as of a held version `version` (a committed one, say), if any.
pub fn lookup_at(
    state: &StateStore,
    client: ClientId,
    version: BatchSeq,
) -> Result<Option<CachedReply>, eve_state::StateError> {
    let bytes = state.get_at(&reply_cache_key(client), version)?;
    Ok(bytes.and_then(CachedReply::decode))
}

/// The request number of the client's cached reply, if any, read in place (without taking a
/// share of the entry): what every request checks before it executes.
pub(crate) fn last_request_no(state: &StateStore, client: ClientId) -> Option<RequestNo> {
    state.read(&reply_cache_key(client), |bytes| {
        header(bytes?).map(|(request_no, _)| request_no)
    })
}

/// Records the client's latest reply: `body`, the answer to `request_no`, executed in `seq`.
pub(crate) fn record(
    state: &StateStore,
    client: ClientId,
    request_no: RequestNo,
    seq: BatchSeq,
    body: &[u8],
) {
    state
        .put(&reply_cache_key(client), encode(request_no, seq, body))
        .expect("reply cache entries fit the state limits: replies are bounded by REPLY_BYTES_MAX");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_a_short_one_reads_as_absent() {
        let entry = CachedReply {
            request_no: RequestNo(7),
            seq: BatchSeq(u64::MAX),
            body: Bytes::from_static(b"reply"),
        };
        assert_eq!(CachedReply::decode(entry.encode()), Some(entry));
        let empty = CachedReply {
            request_no: RequestNo(1),
            seq: BatchSeq(2),
            body: Bytes::new(),
        };
        assert_eq!(CachedReply::decode(empty.encode()), Some(empty));
        assert_eq!(CachedReply::decode(Bytes::from_static(&[0; 15])), None);
    }
}
