//! The bounds of the protocol logic's queues and windows.

use eve_types::limits::PIPELINE_DEPTH_MAX;

/// Most requests a primary holds waiting for a batch; more are dropped (clients retransmit).
pub const PENDING_REQUESTS_MAX: usize = 100_000;

/// Most operation bytes a primary holds waiting for a batch; a request that would pass it is
/// dropped (its client retransmits). Without it, [`PENDING_REQUESTS_MAX`] requests of
/// `OP_BYTES_MAX` each would hold 6.5 GB.
pub const PENDING_REQUEST_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most requests of one client a primary holds pending or in uncommitted batches; more are
/// dropped. A client sends one request at a time (a restarted one may leave an older one in
/// flight), so only a flooding client reaches it, and it cannot fill the pending queue alone.
pub const CLIENT_IN_FLIGHT_MAX: usize = 8;

/// How far beyond its last committed batch a replica or verifier keeps per-batch state.
/// Messages about batches further ahead are dropped (or, for agreed tokens, only the highest
/// is remembered, to catch up by state transfer).
pub const SEQ_WINDOW: u64 = 4 * PIPELINE_DEPTH_MAX as u64;

/// Most batches of a view it has not entered yet a replica keeps, to execute once it enters
/// that view (a pipeline's worth: the new primary's first batches, which often arrive before
/// the announcement of the view they belong to).
pub const FUTURE_VIEW_BATCHES_MAX: usize = PIPELINE_DEPTH_MAX;

/// Most forwarded requests a replica watches for the primary to order.
pub const FORWARDED_MAX: usize = 10_000;

/// Most distinct future views for which a verifier keeps view-change messages.
pub const FUTURE_VIEWS_MAX: usize = 8;

/// Most clients a replica remembers the last committed reply of, for resending it to a
/// client that retransmits; past this the oldest entries go (the reply cache in the state
/// still answers duplicates, through a batch).
pub const REPLY_TABLE_MAX: usize = 1_000_000;

/// The verifiers' view-change timer doubles with every view tried in vain, at most this many
/// times (64 times `2 * verify_timeout_ms`), so that verifiers that started apart come together.
pub const VIEW_CHANGE_BACKOFF_DOUBLINGS_MAX: u32 = 6;

/// A verifier repeats its request for a view at most this many times before it asks for the
/// next view, even without a quorum asking with it.
pub const VIEW_CHANGE_RETRANSMITS_MAX: u32 = 3;

/// A peer (or a replica) this many pipelines (`pipeline_depth` batches each) behind a
/// verifier's last committed batch counts as left behind: its view-change request or suspicion
/// is stale while the verifier's view makes progress (a batch that cannot commit lies within
/// one pipeline of the last committed batch).
pub const LEFT_BEHIND_PIPELINES: u64 = 2;
