//! Every bound of the transport, by name.

use std::time::Duration;

/// The longest frame accepted: a message's own limit. The length is checked before anything
/// is allocated for the frame.
pub const FRAME_BYTES_MAX: usize = eve_types::limits::MESSAGE_SIZE_BYTES_MAX;

/// Messages queued for one peer; beyond it new ones are dropped and counted (the protocol
/// repairs loss by repetition; a stuck peer cannot exhaust memory).
pub const SEND_QUEUE_MESSAGES_MAX: usize = 4096;

/// Messages received and not yet taken by the node; when full, readers stop reading and QUIC
/// flow control slows the senders.
pub const INBOUND_QUEUE_MESSAGES_MAX: usize = 8192;

/// Concurrent unidirectional streams a peer may open on one connection.
pub const UNI_STREAMS_MAX: u32 = 16;

/// Bytes one stream may have in flight to a receiver.
pub const STREAM_RECEIVE_WINDOW: u32 = 4 * 1024 * 1024;

/// Bytes one connection may have in flight to a receiver, over all its streams.
pub const RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

/// A connection with no traffic for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Keep-alive packets keep a quiet connection open (shorter than [`IDLE_TIMEOUT`]).
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);

/// The round-trip time a connection assumes before it measured one. QUIC's default (333 ms)
/// suits the open internet; a cluster's nodes are a few milliseconds apart at most, and the
/// first handshake packets of a node dialing a peer that is not listening yet are lost: with
/// the default they are sent again only after about a second, longer than a verifier waits
/// for a batch to commit, so every cluster started with a view change.
pub const INITIAL_RTT: Duration = Duration::from_millis(30);

/// The first delay before redialing a peer; it doubles on each failure.
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);

/// The longest delay between dials of an unreachable peer.
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);

/// How long closing the endpoint waits for its connections to drain (for lost close frames to
/// be repeated). Connections whose handshake never finished would otherwise wait three probe
/// timeouts on the initial 333 ms round-trip estimate.
pub const CLOSE_DRAIN_MAX: Duration = Duration::from_millis(300);

/// How long a dial may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
