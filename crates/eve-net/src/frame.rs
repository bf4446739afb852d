//! Frames on a QUIC stream: a 4-byte big-endian length, then that many bytes. The length is
//! checked against [`FRAME_BYTES_MAX`] before anything is allocated, so a peer cannot make a
//! node reserve memory by announcing a huge frame.

use crate::limits::FRAME_BYTES_MAX;
use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;

/// A stream's bytes are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced length exceeds the limit.
    #[error("a frame of {bytes} bytes exceeds FRAME_BYTES_MAX ({FRAME_BYTES_MAX})")]
    TooLarge {
        /// The announced length.
        bytes: usize,
    },
    /// A frame of length zero: no message is empty.
    #[error("an empty frame")]
    Empty,
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The stream failed.
    #[error("reading the stream failed: {0}")]
    Read(String),
}

/// The frame carrying `payload`.
///
/// # Panics
/// If `payload` is empty or longer than [`FRAME_BYTES_MAX`]: every message the protocol
/// sends is within the limit, and a frame the receiver would refuse must not be sent.
pub fn encode_frame(payload: &[u8]) -> Bytes {
    assert!(
        !payload.is_empty() && payload.len() <= FRAME_BYTES_MAX,
        "a frame of {} bytes is outside 1..={FRAME_BYTES_MAX}",
        payload.len()
    );
    let mut frame = BytesMut::with_capacity(LENGTH_BYTES + payload.len());
    frame.put_u32(payload.len() as u32);
    frame.put_slice(payload);
    frame.freeze()
}

/// The payload length a header announces, if acceptable.
pub fn frame_length(header: [u8; LENGTH_BYTES]) -> Result<usize, FrameError> {
    let bytes = u32::from_be_bytes(header) as usize;
    if bytes == 0 {
        return Err(FrameError::Empty);
    }
    if bytes > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { bytes });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_announces_its_payload_length() {
        let frame = encode_frame(b"hello");
        assert_eq!(&frame[..LENGTH_BYTES], &[0, 0, 0, 5]);
        assert_eq!(&frame[LENGTH_BYTES..], b"hello");
        assert_eq!(frame_length([0, 0, 0, 5]), Ok(5));
    }

    #[test]
    fn oversized_and_empty_lengths_are_refused_before_allocating() {
        let too_large = (FRAME_BYTES_MAX as u32 + 1).to_be_bytes();
        assert_eq!(
            frame_length(too_large),
            Err(FrameError::TooLarge {
                bytes: FRAME_BYTES_MAX + 1
            })
        );
        assert_eq!(
            frame_length([0xff; 4]),
            Err(FrameError::TooLarge {
                bytes: u32::MAX as usize
            })
        );
        assert_eq!(frame_length([0; 4]), Err(FrameError::Empty));
        assert_eq!(
            frame_length((FRAME_BYTES_MAX as u32).to_be_bytes()),
            Ok(FRAME_BYTES_MAX)
        );
    }
}
