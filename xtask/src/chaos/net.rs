//! The chaos run's network: every process in a network namespace of its own, joined to a
//! bridge in the root namespace by a veth pair, and the faults laid on it.
//!
//! - Process `i` lives in namespace `evechaos<i>` at `10.77.0.<i+1>`; the bridge `evechaos`
//!   holds `10.77.0.254`, so the clients (in the root namespace) reach every process.
//! - Partitions and random loss are nftables rules in the process's namespace (table
//!   `inet chaos`, an input and an output chain): dropping by address, in one direction or
//!   both, or at random with `numgen`.
//! - Slow links are `tc tbf` rate limits on both ends of the process's veth pair.
//!
//! Everything is set up as root with `ip`, `nft` and `tc`, and torn down when [`Net`] is dropped
//! (and at the start, in case an earlier run was killed before it could).

use super::schedule::Fault;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

/// The bridge in the root namespace.
const BRIDGE: &str = "evechaos";

/// Most processes a network holds (addresses `.1` to `.250`).
pub const NODES_MAX: usize = 250;

/// The namespace of process `i`.
pub fn namespace(i: usize) -> String {
    format!("evechaos{i}")
}

/// The address of process `i`.
pub fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, 0, i as u8 + 1))
}

/// The root namespace's veth end of process `i`.
fn host_veth(i: usize) -> String {
    format!("evch{i}")
}

/// Why this machine cannot run a chaos network, or `None` when it can: root, `ip`, `nft` and
/// `tc`, and a namespace that can be made.
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("network namespaces need root".to_owned());
    }
    for tool in ["ip", "nft", "tc"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!(
                "`{tool}` is not installed (Debian, Ubuntu: apt-get install iproute2 nftables)"
            ));
        }
    }
    let probe = "evechaosprobe";
    let made = run("ip", &["netns", "add", probe]);
    let _ = run("ip", &["netns", "del", probe]);
    made.err()
        .map(|e| format!("cannot make a network namespace: {e:#}"))
}

/// Whether this process runs with user id 0 (its effective id, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs `program` with `args`, failing with its error output.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs an nftables script in process `i`'s namespace.
fn nft(i: usize, script: &str) -> Result<()> {
    let ns = namespace(i);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft in {ns}: {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The network of a chaos run: dropping it removes every namespace, link and rule.
pub struct Net {
    nodes: usize,
}

impl Net {
    /// Builds the network for `nodes` processes (removing what an earlier run left).
    pub fn build(nodes: usize) -> Result<Self> {
        assert!((1..=NODES_MAX).contains(&nodes));
        teardown(NODES_MAX);
        let net = Net { nodes };
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        run("ip", &["addr", "add", "10.77.0.254/24", "dev", BRIDGE])?;
        run("ip", &["link", "set", BRIDGE, "up"])?;
        for i in 0..nodes {
            let (ns, host) = (namespace(i), host_veth(i));
            let inner = format!("evcn{i}");
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &["link", "add", &host, "type", "veth", "peer", "name", &inner],
            )?;
            run("ip", &["link", "set", &inner, "netns", &ns])?;
            run("ip", &["link", "set", &host, "master", BRIDGE])?;
            run("ip", &["link", "set", &host, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns, "ip"];
                all.extend_from_slice(args);
                run("ip", &all)
            };
            inside(&["link", "set", "lo", "up"])?;
            inside(&["link", "set", &inner, "name", "eth0"])?;
            let cidr = format!("{}/24", address(i));
            inside(&["addr", "add", &cidr, "dev", "eth0"])?;
            inside(&["link", "set", "eth0", "up"])?;
            nft(
                i,
                "table inet chaos {\n\
                 chain input { type filter hook input priority 0; policy accept; }\n\
                 chain output { type filter hook output priority 0; policy accept; }\n\
                 }\n",
            )?;
        }
        Ok(net)
    }

    /// Lays `fault`'s network part on the network (process faults are not its business).
    pub fn apply(&self, fault: &Fault) -> Result<()> {
        let all: Vec<usize> = (0..self.nodes).collect();
        let cut = |a: &[usize], b: &[usize]| -> Result<()> {
            // Both ways between every process of `a` and every process of `b`.
            for &i in a {
                self.drop_between(i, b, true, true)?;
            }
            for &j in b {
                self.drop_between(j, a, true, true)?;
            }
            Ok(())
        };
        match fault {
            Fault::Isolate { node } => nft(
                *node,
                "add rule inet chaos input iifname != \"lo\" drop\n\
                 add rule inet chaos output oifname != \"lo\" drop\n",
            ),
            Fault::Halves { side } => {
                let rest: Vec<usize> = all.iter().copied().filter(|i| !side.contains(i)).collect();
                cut(side, &rest)
            }
            Fault::Bridge { bridge, side } => {
                let rest: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|i| !side.contains(i) && i != bridge)
                    .collect();
                cut(side, &rest)
            }
            Fault::OneWay { from, to } => self.drop_between(*from, &[*to], false, true),
            Fault::Loss { node, percent } => nft(
                *node,
                &format!(
                    "add rule inet chaos input iifname != \"lo\" numgen random mod 100 < {percent} drop\n\
                     add rule inet chaos output oifname != \"lo\" numgen random mod 100 < {percent} drop\n"
                ),
            ),
            Fault::Slow { node, kbit } => {
                let rate = format!("{kbit}kbit");
                let ns = namespace(*node);
                let tbf = ["rate", &rate, "burst", "32kbit", "latency", "400ms"];
                let mut inside = vec![
                    "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                ];
                inside.extend_from_slice(&tbf);
                run("ip", &inside)?;
                let host = host_veth(*node);
                let mut outside = vec!["qdisc", "add", "dev", &host, "root", "tbf"];
                outside.extend_from_slice(&tbf);
                run("tc", &outside)
            }
            Fault::Kill { .. } | Fault::Pause { .. } | Fault::Skew { .. } => Ok(()),
        }
    }

    /// In process `i`'s namespace, drops what it receives from (`inbound`) and sends to
    /// (`outbound`) the processes `peers`.
    fn drop_between(&self, i: usize, peers: &[usize], inbound: bool, outbound: bool) -> Result<()> {
        if peers.is_empty() {
            return Ok(());
        }
        let set = peers
            .iter()
            .map(|&p| address(p).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut script = String::new();
        if inbound {
            script += &format!("add rule inet chaos input ip saddr {{ {set} }} drop\n");
        }
        if outbound {
            script += &format!("add rule inet chaos output ip daddr {{ {set} }} drop\n");
        }
        nft(i, &script)
    }

    /// Lifts every network fault.
    pub fn heal(&self) -> Result<()> {
        for i in 0..self.nodes {
            nft(
                i,
                "flush chain inet chaos input\nflush chain inet chaos output\n",
            )?;
            let ns = namespace(i);
            // No rate limit is not an error.
            let _ = run(
                "ip",
                &[
                    "netns", "exec", &ns, "tc", "qdisc", "del", "dev", "eth0", "root",
                ],
            );
            let _ = run("tc", &["qdisc", "del", "dev", &host_veth(i), "root"]);
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        teardown(self.nodes);
    }
}

/// Removes the namespaces of the first `nodes` processes (their veth pairs go with them) and
/// the bridge, ignoring what is not there.
fn teardown(nodes: usize) {
    let present = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for i in 0..nodes {
        let ns = namespace(i);
        if present.split_whitespace().any(|w| w == ns) {
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
    let _ = run("ip", &["link", "del", BRIDGE]);
}
