//! A client with a request outstanding, fed any message from any node: it never panics, and it
//! completes the request only with a reply to it (u = 1, r = 1: two matching replies from
//! different replicas).
#![no_main]

use eve_agreement::{Client, Message, NodeId, Time};
use eve_types::{ClientId, ClusterConfig, ReplicaId, ReplicationMode, VerifierId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 1 })
        .validate()
        .expect("a valid configuration");
    let mut client = Client::new(ClientId(7), &config);
    let request_no = client
        .submit(Time::ZERO, bytes::Bytes::from_static(b"op"))
        .expect("one request");
    // Each message: one byte picking the sender, two of length, then the message's bytes.
    let mut rest = data;
    while rest.len() >= 3 {
        let from = match rest[0] % 4 {
            0 => NodeId::Replica(ReplicaId(u32::from(rest[0] >> 2) % 6)),
            1 => NodeId::Verifier(VerifierId(u32::from(rest[0] >> 2) % 6)),
            2 => NodeId::Client(ClientId(u64::from(rest[0] >> 2))),
            _ => NodeId::Replica(ReplicaId(0)),
        };
        let length = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
        rest = &rest[3..];
        let body = &rest[..length.min(rest.len())];
        rest = &rest[body.len()..];
        let Ok(message) = Message::decode(body) else {
            continue;
        };
        if let Some(completion) = client.handle_message(from, message) {
            assert_eq!(
                completion.request_no, request_no,
                "only the outstanding request completes"
            );
            return;
        }
        while client.poll_output().is_some() {}
    }
});
