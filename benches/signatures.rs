//! The cost of client signatures (used with `r >= 1`): signing a request with the client's
//! ed25519 key, and checking it under the key of its certificate, as the node does, for a
//! request of 64 operation bytes. The baseline is hashing the same signing payload with blake3
//! (what a token costs per request's worth of bytes), in the same run: report ratios.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use eve::agreement::NodeId;
use eve::agreement::auth::{RequestSigner, RequestVerifier, Verdict};
use eve::net::{ClientKeyring, ClusterCa, Ed25519Signer};
use eve::types::{ClientId, Digest, Request, RequestNo};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

fn bench(c: &mut Criterion) {
    let ca = ClusterCa::generate("bench").expect("a CA");
    let id = ClientId(1);
    let credentials = ca.issue(NodeId::Client(id)).expect("a client certificate");
    let signer = Ed25519Signer::from_credentials(&credentials).expect("an ed25519 key");
    let keyring = ClientKeyring::default();
    let cert = CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).expect("PEM");
    assert!(keyring.learn(id, &cert));
    let cluster = Digest([7; 32]);
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
    group.bench_function("verify", |b| {
        b.iter(|| keyring.verify(black_box(&cluster), &[black_box(&request)]))
    });
    group.finish();

    // A batch's worth of requests from 32 clients, checked together as a backup checks a
    // batch: the time per request.
    let batch: Vec<Request> = (2..34)
        .map(|c| {
            let id = ClientId(c);
            let credentials = ca.issue(NodeId::Client(id)).expect("a client certificate");
            let cert =
                CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).expect("PEM");
            assert!(keyring.learn(id, &cert));
            let signer = Ed25519Signer::from_credentials(&credentials).expect("an ed25519 key");
            let mut request = Request::new(id, RequestNo(1), vec![b'x'; 64]).expect("small");
            request.signature = Some(signer.sign(&request.signing_payload(&cluster)));
            request
        })
        .collect();
    let refs: Vec<&Request> = batch.iter().collect();
    assert!(
        keyring
            .verify(&cluster, &refs)
            .iter()
            .all(|v| *v == Verdict::Valid)
    );
    let mut group = c.benchmark_group("request signatures, 32 checked together");
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.bench_function("verify", |b| {
        b.iter(|| keyring.verify(black_box(&cluster), black_box(&refs)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
