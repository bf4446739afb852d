//! Who a certificate names: every node's certificate carries one DNS name,
//! `replica-N.eve`, `verifier-N.eve` or `client-N.eve`, and that name is the only identity a
//! connection has. (DNS names, not IP literals: those are not valid in SNI.)

use eve_agreement::NodeId;
use eve_types::{ClientId, ReplicaId, VerifierId};

/// The domain every node name ends with.
pub const DOMAIN: &str = "eve";

/// The DNS name that names `node` in its certificate and in SNI.
///
/// ```
/// # use eve_agreement::NodeId;
/// # use eve_types::ReplicaId;
/// assert_eq!(eve_net::dns_name(NodeId::Replica(ReplicaId(2))), "replica-2.eve");
/// ```
pub fn dns_name(node: NodeId) -> String {
    match node {
        NodeId::Replica(id) => format!("replica-{}.{DOMAIN}", id.0),
        NodeId::Verifier(id) => format!("verifier-{}.{DOMAIN}", id.0),
        NodeId::Client(id) => format!("client-{}.{DOMAIN}", id.0),
    }
}

/// The node a DNS name names, if it is one of [`dns_name`]'s forms.
///
/// ```
/// # use eve_agreement::NodeId;
/// # use eve_types::VerifierId;
/// assert_eq!(eve_net::parse_dns_name("verifier-1.eve"), Some(NodeId::Verifier(VerifierId(1))));
/// assert_eq!(eve_net::parse_dns_name("verifier-01.eve"), None);
/// ```
pub fn parse_dns_name(name: &str) -> Option<NodeId> {
    let host = name.strip_suffix(DOMAIN)?.strip_suffix('.')?;
    let (kind, number) = host.split_once('-')?;
    // One spelling per node: no sign, no leading zeros.
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match kind {
        "replica" => number.parse().ok().map(|n| NodeId::Replica(ReplicaId(n))),
        "verifier" => number.parse().ok().map(|n| NodeId::Verifier(VerifierId(n))),
        "client" => number.parse().ok().map(|n| NodeId::Client(ClientId(n))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for node in [
            NodeId::Replica(ReplicaId(0)),
            NodeId::Replica(ReplicaId(17)),
            NodeId::Verifier(VerifierId(3)),
            NodeId::Client(ClientId(u64::MAX)),
        ] {
            assert_eq!(parse_dns_name(&dns_name(node)), Some(node));
        }
    }

    #[test]
    fn other_names_name_nobody() {
        for name in [
            "replica-1",
            "replica-1.eve.example",
            "replica-.eve",
            "replica-+1.eve",
            "replica-007.eve",
            "replica-99999999999.eve",
            "server-1.eve",
            "localhost",
            "",
        ] {
            assert_eq!(parse_dns_name(name), None, "{name}");
        }
    }
}
