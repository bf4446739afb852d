//! Any bytes given to the message decoder: it never panics, and a message it accepts encodes
//! back to bytes that decode to the same message.
#![no_main]

use eve_agreement::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode()).expect("an encoded message decodes");
        assert_eq!(again, message);
    }
});
