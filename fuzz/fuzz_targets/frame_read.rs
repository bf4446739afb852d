//! A stream's bytes read as the transport reads them: a length header, checked before anything
//! is allocated, then that many bytes decoded as a message, frame after frame, until the
//! stream ends or a frame is refused. Never panics, never allocates past the frame limit.
#![no_main]

use eve_agreement::Message;
use eve_net::{LENGTH_BYTES, frame_length};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= LENGTH_BYTES {
        let header: [u8; LENGTH_BYTES] = rest[..LENGTH_BYTES].try_into().expect("sliced");
        let Ok(length) = frame_length(header) else {
            return;
        };
        assert!(length <= eve_net::limits::FRAME_BYTES_MAX);
        rest = &rest[LENGTH_BYTES..];
        if rest.len() < length {
            return; // the stream ended inside a frame
        }
        let _ = Message::decode(&rest[..length]);
        rest = &rest[length..];
    }
});
