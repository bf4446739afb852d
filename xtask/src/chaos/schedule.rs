//! The fault schedule of a chaos run, drawn from a seed: quiet spells and fault windows in
//! turn, one fault at a time, so that each fault's heal can be timed on its own.
//!
//! The same seed, duration and cluster give the same schedule, so a failing run repeats from
//! its printed command.

use eve_types::SplitMix64;
use std::fmt;
use std::time::Duration;

/// One fault, held for a window and then healed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// One process cut off from every other process and from the clients.
    Isolate { node: usize },
    /// The processes split in two groups that cannot reach each other (clients reach both).
    Halves { side: Vec<usize> },
    /// Two groups that cannot reach each other, and one process (`bridge`) that reaches both.
    Bridge { bridge: usize, side: Vec<usize> },
    /// Packets from `from` to `to` are dropped; the other way works.
    OneWay { from: usize, to: usize },
    /// `percent` of the packets a process sends or receives are dropped at random.
    Loss { node: usize, percent: u32 },
    /// The processes are killed with SIGKILL and started again when the window ends.
    Kill { nodes: Vec<usize> },
    /// The process is stopped with SIGSTOP and continued with SIGCONT when the window ends.
    Pause { node: usize },
    /// The process is restarted with its clock `offset_s` seconds off (libfaketime), and
    /// restarted with the right clock when the window ends.
    Skew { node: usize, offset_s: i64 },
    /// The process's link sends at most `kbit` kilobits a second (`tc tbf`).
    Slow { node: usize, kbit: u32 },
}

impl Fault {
    /// The kind, as named on the command line (`--faults`).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Isolate { .. } => "isolate",
            Fault::Halves { .. } => "halves",
            Fault::Bridge { .. } => "bridge",
            Fault::OneWay { .. } => "one-way",
            Fault::Loss { .. } => "loss",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Skew { .. } => "skew",
            Fault::Slow { .. } => "slow",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Isolate { node } => write!(f, "isolate node-{node}"),
            Fault::Halves { side } => write!(f, "halves: {side:?} | the rest"),
            Fault::Bridge { bridge, side } => {
                write!(f, "bridge: {side:?} | the rest, node-{bridge} in both")
            }
            Fault::OneWay { from, to } => write!(f, "one-way cut node-{from} -> node-{to}"),
            Fault::Loss { node, percent } => write!(f, "{percent}% loss at node-{node}"),
            Fault::Kill { nodes } => write!(f, "kill {nodes:?}, restart at heal"),
            Fault::Pause { node } => write!(f, "pause node-{node}"),
            Fault::Skew { node, offset_s } => write!(f, "clock of node-{node} {offset_s:+} s"),
            Fault::Slow { node, kbit } => write!(f, "node-{node} limited to {kbit} kbit/s"),
        }
    }
}

/// Every kind of fault, in the order `--faults` lists them.
pub const KINDS: [&str; 9] = [
    "isolate", "halves", "bridge", "one-way", "loss", "kill", "pause", "skew", "slow",
];

/// A fault and when it holds, from the start of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// When the fault begins.
    pub start: Duration,
    /// When it is healed.
    pub end: Duration,
    /// The fault.
    pub fault: Fault,
}

/// What a schedule may draw from.
#[derive(Clone, Debug)]
pub struct Options {
    /// Processes in the cluster.
    pub nodes: usize,
    /// Processes that may be down or cut off at once and still leave a working cluster.
    pub tolerated: usize,
    /// Every process keeps its state on disk: several may be killed at once.
    pub disk: bool,
    /// The kinds to draw ([`KINDS`]).
    pub kinds: Vec<&'static str>,
    /// The shortest fault window: longer than every timeout of the protocol and the client.
    pub fault_min: Duration,
    /// The longest fault window.
    pub fault_max: Duration,
    /// The shortest quiet spell between two windows (and before the first).
    pub quiet_min: Duration,
    /// The longest quiet spell.
    pub quiet_max: Duration,
}

/// Draws the windows of a run of `duration` from `seed`: a quiet spell, a fault, a quiet
/// spell, ..., every window healed at least `quiet_min` before the end.
pub fn draw(seed: u64, duration: Duration, options: &Options) -> Vec<Window> {
    assert!(options.nodes >= 2 && !options.kinds.is_empty());
    let mut rng = SplitMix64::new(seed);
    let mut between = |lo: Duration, hi: Duration| {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(rng.next_u64() % (span + 1))
    };
    let mut windows = Vec::new();
    let mut now = Duration::ZERO;
    loop {
        now += between(options.quiet_min, options.quiet_max);
        let end = now + between(options.fault_min, options.fault_max);
        if end + options.quiet_min > duration {
            break;
        }
        windows.push(Window {
            start: now,
            end,
            fault: Fault::Isolate { node: 0 },
        });
        now = end;
    }
    let mut rng = SplitMix64::new(seed ^ 0xFA17);
    for window in &mut windows {
        window.fault = draw_fault(&mut rng, options);
    }
    windows
}

fn draw_fault(rng: &mut SplitMix64, options: &Options) -> Fault {
    let n = options.nodes;
    let mut below = |k: usize| (rng.next_u64() % k as u64) as usize;
    let kind = options.kinds[below(options.kinds.len())];
    let node = below(n);
    // A minority side: the larger side keeps a quorum.
    let minority =
        |first: usize, size: usize| -> Vec<usize> { (0..size).map(|i| (first + i) % n).collect() };
    let tolerated = options.tolerated.clamp(1, n - 1);
    match kind {
        "isolate" => Fault::Isolate { node },
        "halves" => Fault::Halves {
            side: minority(node, 1 + below(tolerated)),
        },
        "bridge" => {
            let side = minority((node + 1) % n, 1 + below(tolerated.min(n - 2).max(1)));
            Fault::Bridge { bridge: node, side }
        }
        "one-way" => Fault::OneWay {
            from: node,
            to: (node + 1 + below(n - 1)) % n,
        },
        "loss" => Fault::Loss {
            node,
            percent: 5 + below(26) as u32,
        },
        "kill" => {
            let at_once = if options.disk {
                // With every process on disk, even the whole cluster may go down at once.
                1 + below(n)
            } else {
                1 + below(tolerated)
            };
            Fault::Kill {
                nodes: minority(node, at_once),
            }
        }
        "pause" => Fault::Pause { node },
        "skew" => {
            let magnitude = 30 + below(3571) as i64;
            let offset_s = if below(2) == 0 { magnitude } else { -magnitude };
            Fault::Skew { node, offset_s }
        }
        "slow" => Fault::Slow {
            node,
            kbit: 200 + 100 * below(19) as u32,
        },
        other => unreachable!("unknown fault kind {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(disk: bool) -> Options {
        Options {
            nodes: 3,
            tolerated: 1,
            disk,
            kinds: KINDS.to_vec(),
            fault_min: Duration::from_secs(12),
            fault_max: Duration::from_secs(20),
            quiet_min: Duration::from_secs(5),
            quiet_max: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_seed_gives_one_schedule_of_disjoint_windows_healed_before_the_end() {
        let duration = Duration::from_secs(300);
        let a = draw(7, duration, &options(false));
        assert_eq!(a, draw(7, duration, &options(false)));
        assert_ne!(a, draw(8, duration, &options(false)));
        assert!(a.len() >= 8, "{} windows in 300 s", a.len());
        let mut last_end = Duration::ZERO;
        for w in &a {
            assert!(w.start >= last_end + Duration::from_secs(5));
            assert!(w.end - w.start >= Duration::from_secs(12));
            assert!(w.end - w.start <= Duration::from_secs(20));
            last_end = w.end;
        }
        assert!(last_end + Duration::from_secs(5) <= duration);
    }

    #[test]
    fn faults_stay_within_what_the_cluster_tolerates() {
        for seed in 0..500 {
            for disk in [false, true] {
                for w in draw(seed, Duration::from_secs(600), &options(disk)) {
                    match &w.fault {
                        Fault::Kill { nodes } if !disk => assert_eq!(nodes.len(), 1),
                        Fault::Kill { nodes } => assert!((1..=3).contains(&nodes.len())),
                        Fault::Halves { side } => assert_eq!(side.len(), 1),
                        Fault::Bridge { bridge, side } => {
                            assert_eq!(side.len(), 1);
                            assert!(!side.contains(bridge));
                        }
                        Fault::OneWay { from, to } => assert_ne!(from, to),
                        Fault::Loss { percent, .. } => assert!((5..=30).contains(percent)),
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn only_the_kinds_asked_for_are_drawn() {
        let mut only = options(false);
        only.kinds = vec!["pause", "kill"];
        let windows = draw(3, Duration::from_secs(600), &only);
        assert!(!windows.is_empty());
        assert!(
            windows
                .iter()
                .all(|w| matches!(w.fault, Fault::Pause { .. } | Fault::Kill { .. }))
        );
    }
}
