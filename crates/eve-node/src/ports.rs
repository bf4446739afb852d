//! Free loopback ports for clusters started on port 0 (tests, `eve-node demo`, benchmarks).
//!
//! A port found free is free only until someone binds it, and a node binds its port only
//! when it starts, after the whole cluster's addresses are chosen. Ports are therefore taken
//! from below the system's ephemeral range (32768 and up on Linux by default), which the
//! sockets bound to port 0 meanwhile (clients, other tests) are given from, and handed out in
//! turn within a process from an offset drawn from its process id, so that test processes
//! running side by side rarely try the same ones.

use anyhow::{Result, bail};
use std::sync::atomic::{AtomicU64, Ordering};

/// The first port handed out.
const FIRST: u16 = 10_000;
/// Ports handed out: `FIRST .. FIRST + SPAN`, below the ephemeral range.
const SPAN: u16 = 22_000;

/// The first of `n` consecutive loopback ports that are free for both UDP (QUIC) and TCP (the
/// admin endpoint) right now, none of them handed out before by this process.
pub fn free_loopback_ports(n: u16) -> Result<u16> {
    if n == 0 || n > SPAN {
        bail!("asked for {n} ports: between 1 and {SPAN}");
    }
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
    let _ = NEXT.compare_exchange(
        u64::MAX,
        // A prime multiplier spreads neighbouring process ids over the span.
        (std::process::id() as u64).wrapping_mul(7_919) % SPAN as u64,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(n as u64, Ordering::SeqCst) % SPAN as u64;
        if offset + n as u64 > SPAN as u64 {
            continue;
        }
        let base = FIRST + offset as u16;
        let free = (base..base + n).all(|port| {
            std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        if free {
            return Ok(base);
        }
    }
    bail!(
        "no {n} consecutive free loopback ports between {FIRST} and {}: free some, or give the \
         cluster a base port of its own",
        FIRST + SPAN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_handed_out_once_below_the_ephemeral_range() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let base = free_loopback_ports(3).unwrap();
            assert!(base >= FIRST && base + 3 <= FIRST + SPAN);
            for port in base..base + 3 {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }

    #[test]
    fn a_bound_port_is_not_handed_out() {
        let base = free_loopback_ports(1).unwrap();
        // Hold the next ports this process would try: none of them comes back.
        let held: Vec<_> = (1..=40u16)
            .filter_map(|i| std::net::UdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        let next = free_loopback_ports(1).unwrap();
        assert!(
            held.iter().all(|s| s.local_addr().unwrap().port() != next),
            "{next} is bound"
        );
    }

    #[test]
    fn no_ports_is_an_error() {
        assert!(free_loopback_ports(0).is_err());
    }
}
