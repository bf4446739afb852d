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
    let bytes = state.get(&reply_cache_key(client))?;
    postcard::from_bytes(&bytes).ok()
}

/// The client's cached reply as of a held version `version` (a committed one, say), if any.
pub fn lookup_at(
    state: &StateStore,
    client: ClientId,
    version: BatchSeq,
) -> Result<Option<CachedReply>, eve_state::StateError> {
    let bytes = state.get_at(&reply_cache_key(client), version)?;
    Ok(bytes.and_then(|bytes| postcard::from_bytes(&bytes).ok()))
}

/// Records the client's latest reply.
pub(crate) fn record(state: &StateStore, client: ClientId, entry: &CachedReply) {
    let bytes = postcard::to_allocvec(entry).expect("encoding a reply cache entry cannot fail");
    state
        .put(&reply_cache_key(client), Bytes::from(bytes))
        .expect("reply cache entries fit the state limits: replies are bounded by REPLY_BYTES_MAX");
}
