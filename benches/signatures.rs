//! The cost of client signatures (used with `r >= 1`): signing a request with the client's
//! ed25519 key, and checking it under the key of its certificate, as the node does, for a
//! request of 64 operation bytes. The baseline is hashing the same signing payload with blake3
//! (what a token costs per request's worth of bytes), in the same run: report ratios.
//!
//! The keyring remembers the signatures it found valid (the transport checks them ahead, off
//! the protocol's thread): the checks measured cycle through more distinct requests than it
//! remembers, so each is a real check, and "remembered" measures what the logic's own check
//! then costs.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use eve::agreement::NodeId;
use eve::agreement::auth::{RequestSigner, RequestVerifier, Verdict};
use eve::net::{CHECKED_SIGNATURES_MAX, ClientKeyring, ClusterCa, Ed25519Signer};
use eve::types::{ClientId, Digest, Request, RequestNo};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

fn bench(c: &mut Criterion) {
    let ca = ClusterCa::generate("bench").expect("a CA");
    let id = ClientId(1);
    let credentials = ca.issue(NodeId::Client(id)).expect("a client certificate");
    let signer = Ed25519Signer::from_credentials(&credentials).expect("an ed25519 key");
    let cluster = Digest([7; 32]);
    let keyring = ClientKeyring::new(cluster);
    let cert = CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).expect("PEM");
    assert!(keyring.learn(id, &cert));
    let mut request = Request::new(id, RequestNo(1), vec![b'x'; 64]).expect("a small request");
    let payload = request.signing_payload(&cluster);
    request.signature = Some(signer.sign(&payload));
    assert_eq!(keyring.verify(&cluster, &[&request]), vec![Verdict::Valid]);

    let mut group = c.benchmark_group("request signature (64-byte operation)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("blake3 of the payload (baseline)", |b| {
        b.iter(|| blake3::hash(black_box(&payload)))
    });
    group.bench_function("sign", |b| {
        b.iter(|| signer.sign(black_box(&request.signing_payload(&cluster))))
    });
    group.bench_function("remembered (checked ahead)", |b| {
        b.iter(|| keyring.verify(black_box(&cluster), &[black_box(&request)]))
    });
    let distinct: Vec<Request> = (0..CHECKED_SIGNATURES_MAX as u64 * 3 / 2)
        .map(|no| {
            let mut r = Request::new(id, RequestNo(no + 2), vec![b'x'; 64]).expect("small");
            r.signature = Some(signer.sign(&r.signing_payload(&cluster)));
            r
        })
        .collect();
    let mut next = distinct.iter().cycle();
    group.bench_function("verify", |b| {
        b.iter(|| {
            let r = next.next().expect("cycles");
            keyring.verify(black_box(&cluster), &[black_box(r)])
        })
    });
    group.finish();

    // A batch's worth of requests from 32 clients, checked together as a backup checks a
    // batch: the time per request.
    let signers: Vec<(ClientId, Ed25519Signer)> = (2..34)
        .map(|c| {
            let id = ClientId(c);
            let credentials = ca.issue(NodeId::Client(id)).expect("a client certificate");
            let cert =
                CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).expect("PEM");
            assert!(keyring.learn(id, &cert));
            let signer = Ed25519Signer::from_credentials(&credentials).expect("an ed25519 key");
            (id, signer)
        })
        .collect();
    let batches: Vec<Vec<Request>> = (0..CHECKED_SIGNATURES_MAX as u64 * 3 / 2 / 32)
        .map(|no| {
            signers
                .iter()
                .map(|(id, signer)| {
                    let mut r =
                        Request::new(*id, RequestNo(no + 1), vec![b'x'; 64]).expect("small");
                    r.signature = Some(signer.sign(&r.signing_payload(&cluster)));
                    r
                })
                .collect()
        })
        .collect();
    let first: Vec<&Request> = batches[0].iter().collect();
    assert!(
        keyring
            .verify(&cluster, &first)
            .iter()
            .all(|v| *v == Verdict::Valid)
    );
    let mut group = c.benchmark_group("request signatures, 32 checked together");
    group.throughput(Throughput::Elements(first.len() as u64));
    let mut next = batches.iter().cycle();
    group.bench_function("verify", |b| {
        b.iter(|| {
            let refs: Vec<&Request> = next.next().expect("cycles").iter().collect();
            keyring.verify(black_box(&cluster), black_box(&refs))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
