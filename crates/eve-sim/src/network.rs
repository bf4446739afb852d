//! The simulated network: seeded loss, delay (and so reordering), duplication, and symmetric
//! or one-way partitions between nodes.

use eve_agreement::{NodeId, Time};
use eve_types::SplitMix64;
use std::collections::BTreeMap;

/// How the network misbehaves while faults are on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Messages lost, in parts per million.
    pub drop_ppm: u32,
    /// Messages delivered twice, in parts per million.
    pub duplicate_ppm: u32,
    /// Shortest delay, in microseconds.
    pub delay_us_min: u64,
    /// Longest delay, in microseconds; delays are drawn uniformly, so messages reorder.
    pub delay_us_max: u64,
    /// Messages held far longer, past every timeout, in parts per million: old views'
    /// batches, votes and announcements arrive views later.
    pub late_ppm: u32,
    /// The longest such hold, in milliseconds (holds are drawn from 100 ms up to it).
    pub late_ms_max: u64,
}

impl NetworkFaults {
    /// A network that loses nothing and delivers after 50-200 us.
    pub fn reliable() -> Self {
        Self {
            drop_ppm: 0,
            duplicate_ppm: 0,
            delay_us_min: 50,
            delay_us_max: 200,
            late_ppm: 0,
            late_ms_max: 0,
        }
    }
}

/// Shortest hold of a late message, in milliseconds.
const LATE_MS_MIN: u64 = 100;

/// The network between the simulated nodes.
#[derive(Clone, Debug)]
pub struct Network {
    faults: NetworkFaults,
    /// While `false`, the network is reliable (after the faults heal).
    faulty: bool,
    /// Directed links that deliver nothing: `(from, to)`, with how many cuts hold each (fault
    /// windows overlap, and each removes only its own).
    cut: BTreeMap<(NodeId, NodeId), u32>,
    /// A node whose messages the network favours (a Byzantine replica colluding with it):
    /// never lost, never late, after the shortest delay.
    favoured: Option<NodeId>,
    rng: SplitMix64,
}

impl Network {
    /// A network with these faults, seeded.
    pub fn new(faults: NetworkFaults, seed: u64) -> Self {
        Self {
            faults,
            faulty: true,
            cut: BTreeMap::new(),
            favoured: None,
            rng: SplitMix64::new(seed),
        }
    }

    /// Favours `node`'s messages from now on (see [`Network::deliveries`]).
    pub fn favour(&mut self, node: NodeId) {
        self.favoured = Some(node);
    }

    /// Whether `node`'s messages are favoured.
    pub fn favours(&self, node: NodeId) -> bool {
        self.favoured == Some(node)
    }

    /// When a message sent now from `from` to `to` arrives: none (lost), one or two times; a
    /// favoured sender's, once after the shortest delay unless its link is cut.
    pub fn deliveries(&mut self, now: Time, from: NodeId, to: NodeId) -> Vec<Time> {
        if from == to {
            return vec![now];
        }
        if self.cut.contains_key(&(from, to)) {
            return Vec::new();
        }
        if self.favoured == Some(from) {
            return vec![now.plus_us(self.faults.delay_us_min)];
        }
        let reliable = NetworkFaults::reliable();
        let faults = if self.faulty { &self.faults } else { &reliable };
        if self.rng.chance_ppm(faults.drop_ppm) {
            return Vec::new();
        }
        let copies = if self.rng.chance_ppm(faults.duplicate_ppm) {
            2
        } else {
            1
        };
        let span = faults.delay_us_max.saturating_sub(faults.delay_us_min) + 1;
        (0..copies)
            .map(|_| {
                if faults.late_ppm > 0 && self.rng.chance_ppm(faults.late_ppm) {
                    let span_ms = faults.late_ms_max.saturating_sub(LATE_MS_MIN) + 1;
                    now.plus_ms(LATE_MS_MIN + self.rng.below(span_ms))
                } else {
                    now.plus_us(faults.delay_us_min + self.rng.below(span))
                }
            })
            .collect()
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Cuts the links from `from` to `to` only.
    pub fn cut_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        for &x in from {
            for &y in to {
                *self.cut.entry((x, y)).or_default() += 1;
            }
        }
    }

    /// Removes one cut of the links from `from` to `to` (a link stays cut while another cut
    /// holds it).
    pub fn restore_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        for &x in from {
            for &y in to {
                if let Some(n) = self.cut.get_mut(&(x, y)) {
                    *n -= 1;
                    if *n == 0 {
                        self.cut.remove(&(x, y));
                    }
                }
            }
        }
    }

    /// Restores every link.
    pub fn heal_partitions(&mut self) {
        self.cut.clear();
    }

    /// Stops losing, duplicating and slowing messages.
    pub fn heal(&mut self) {
        self.faulty = false;
        self.cut.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_types::ReplicaId;

    fn r(i: u32) -> NodeId {
        NodeId::Replica(ReplicaId(i))
    }

    #[test]
    fn a_partition_cuts_both_ways_and_heals() {
        let mut net = Network::new(NetworkFaults::reliable(), 1);
        net.partition(&[r(0)], &[r(1)]);
        assert!(net.deliveries(Time(0), r(0), r(1)).is_empty());
        assert!(net.deliveries(Time(0), r(1), r(0)).is_empty());
        assert_eq!(net.deliveries(Time(0), r(0), r(2)).len(), 1);
        net.heal_partitions();
        assert_eq!(net.deliveries(Time(0), r(0), r(1)).len(), 1);
    }

    #[test]
    fn overlapping_cuts_are_removed_one_at_a_time() {
        let mut net = Network::new(NetworkFaults::reliable(), 1);
        net.partition(&[r(0)], &[r(1)]);
        net.cut_one_way(&[r(0)], &[r(1)]);
        net.restore_one_way(&[r(0)], &[r(1)]);
        assert!(
            net.deliveries(Time(0), r(0), r(1)).is_empty(),
            "one cut still holds"
        );
        assert_eq!(net.deliveries(Time(0), r(1), r(0)).len(), 0);
        net.restore_one_way(&[r(0)], &[r(1)]);
        net.restore_one_way(&[r(1)], &[r(0)]);
        assert_eq!(net.deliveries(Time(0), r(0), r(1)).len(), 1);
        assert_eq!(net.deliveries(Time(0), r(1), r(0)).len(), 1);
    }

    #[test]
    fn a_one_way_cut_delivers_the_other_way() {
        let mut net = Network::new(NetworkFaults::reliable(), 1);
        net.cut_one_way(&[r(0)], &[r(1)]);
        assert!(net.deliveries(Time(0), r(0), r(1)).is_empty());
        assert_eq!(net.deliveries(Time(0), r(1), r(0)).len(), 1);
    }

    #[test]
    fn loss_and_duplication_follow_their_rates() {
        let faults = NetworkFaults {
            drop_ppm: 500_000,
            duplicate_ppm: 500_000,
            delay_us_min: 10,
            delay_us_max: 20,
            late_ppm: 100_000,
            late_ms_max: 200,
        };
        let mut net = Network::new(faults, 9);
        let deliveries: Vec<Vec<Time>> = (0..1000)
            .map(|_| net.deliveries(Time(0), r(0), r(1)))
            .collect();
        let counts: Vec<usize> = deliveries.iter().map(Vec::len).collect();
        let late = deliveries
            .iter()
            .flatten()
            .filter(|t| **t >= Time(100_000))
            .count();
        assert!(late > 0 && late < 200, "about 10% held past 100 ms: {late}");
        assert!(counts.contains(&0) && counts.contains(&1) && counts.contains(&2));
        assert!(
            net.deliveries(Time(5), r(0), r(0)) == vec![Time(5)],
            "to itself: at once"
        );
        net.heal();
        assert!((0..100).all(|_| net.deliveries(Time(0), r(0), r(1)).len() == 1));
    }
}
