//! What an application sees while it executes one request.

use bytes::Bytes;
use eve_state::{StateError, StateStore, is_system_key};
use eve_types::{BatchSeq, ClientId, RequestNo};

/// The execution context of one request: access to the replicated state, and the request's
/// deterministic time and random value.
pub struct ExecContext<'a> {
    state: &'a StateStore,
    seq: BatchSeq,
    client: ClientId,
    request_no: RequestNo,
    time_ms: u64,
    random: u64,
}

impl<'a> ExecContext<'a> {
    /// A context for one request. The executor builds these; tests of an application may too.
    pub fn new(
        state: &'a StateStore,
        seq: BatchSeq,
        client: ClientId,
        request_no: RequestNo,
        time_ms: u64,
        random: u64,
    ) -> Self {
        Self {
            state,
            seq,
            client,
            request_no,
            time_ms,
            random,
        }
    }

    /// The value of an object, as this batch has left it so far.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.state.get(key)
    }

    /// Writes an object. Keys starting with `0xff` are eve's own and are refused, as are keys
    /// and values over their limits; a refused write changes nothing.
    pub fn put(&mut self, key: &[u8], value: impl Into<Bytes>) -> Result<(), StateError> {
        if is_system_key(key) {
            return Err(StateError::ReservedKey);
        }
        self.state.put(key, value.into())
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, StateError> {
        if is_system_key(key) {
            return Err(StateError::ReservedKey);
        }
        self.state.delete(key)
    }

    /// The batch's timestamp in milliseconds, chosen once by the primary: the same on every
    /// replica, unlike the local clock.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// This request's random value, derived from the batch's seed and the request's position:
    /// the same on every replica.
    pub fn random(&self) -> u64 {
        self.random
    }

    /// The client that sent the request.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The client's number for the request.
    pub fn request_no(&self) -> RequestNo {
        self.request_no
    }

    /// The batch being executed.
    pub fn seq(&self) -> BatchSeq {
        self.seq
    }
}
