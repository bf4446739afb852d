//! Properties every schedule must have, and the greedy mixer checked against a direct
//! round-by-round implementation of its rule (TESTING.md, "What each layer must show", 1).

use eve_mixer::{
    ConflictKey, ConflictKeys, FAULT_PPM_MAX, FaultyMixer, GreedyMixer, Mixer, ParallelMixer,
    Schedule, SequentialMixer,
};
use proptest::prelude::*;

/// Few distinct keys, so that conflicts are common; sometimes a request conflicts with
/// everything, often it names no key at all.
fn request() -> impl Strategy<Value = ConflictKeys> {
    let keys = || proptest::collection::vec(0u64..6, 0..3);
    (keys(), keys(), 0u8..12).prop_map(|(reads, writes, everything)| {
        let mut keys = ConflictKeys::new();
        for key in reads {
            keys.read_key(ConflictKey(key));
        }
        for key in writes {
            keys.write_key(ConflictKey(key));
        }
        if everything == 0 {
            keys.conflict_with_everything();
        }
        keys
    })
}

fn batch() -> impl Strategy<Value = Vec<ConflictKeys>> {
    proptest::collection::vec(request(), 0..48)
}

fn rate() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(FAULT_PPM_MAX), 0..=FAULT_PPM_MAX]
}

/// The greedy rule taken directly from its definition: each round walks the requests left, in
/// batch order; a request joins the round's parallel batch unless it conflicts with a request
/// that joined or with an earlier request skipped in this round.
fn naive_rounds(keys: &[ConflictKeys]) -> Vec<Vec<u32>> {
    let mut left: Vec<usize> = (0..keys.len()).collect();
    let mut rounds = Vec::new();
    while !left.is_empty() {
        let mut joined: Vec<usize> = Vec::new();
        let mut skipped: Vec<usize> = Vec::new();
        for &i in &left {
            let blocked = joined
                .iter()
                .chain(&skipped)
                .any(|&j| keys[j].conflicts(&keys[i]));
            if blocked {
                skipped.push(i);
            } else {
                joined.push(i);
            }
        }
        rounds.push(joined.iter().map(|&i| i as u32).collect());
        left = skipped;
    }
    rounds
}

fn parallel_batches(schedule: &Schedule) -> Vec<Vec<u32>> {
    schedule.parallel_batches().map(<[u32]>::to_vec).collect()
}

/// `parallel_batch_of[i]` = the index of the parallel batch holding position `i`.
fn parallel_batch_of(schedule: &Schedule) -> Vec<usize> {
    let mut of = vec![usize::MAX; schedule.requests()];
    for (index, batch) in schedule.parallel_batches().enumerate() {
        for &position in batch {
            of[position as usize] = index;
        }
    }
    of
}

fn assert_every_position_once(schedule: &Schedule, n: usize, mixer: &str) {
    assert_eq!(schedule.requests(), n, "{mixer}: one slot per request");
    let mut positions: Vec<u32> = schedule.parallel_batches().flatten().copied().collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        (0..n as u32).collect::<Vec<_>>(),
        "{mixer}: each position once"
    );
    assert!(
        schedule.parallel_batches().all(|batch| !batch.is_empty()),
        "{mixer}: no empty parallel batch"
    );
}

fn mixers(missed_ppm: u32, false_ppm: u32, seed: u64) -> Vec<Box<dyn Mixer>> {
    vec![
        Box::new(GreedyMixer),
        Box::new(SequentialMixer),
        Box::new(ParallelMixer),
        Box::new(FaultyMixer::new(GreedyMixer, missed_ppm, false_ppm, seed).unwrap()),
    ]
}

proptest! {
    #[test]
    fn every_schedule_holds_every_position_exactly_once(
        keys in batch(), missed_ppm in rate(), false_ppm in rate(), seed: u64,
    ) {
        for mixer in mixers(missed_ppm, false_ppm, seed) {
            assert_every_position_once(&mixer.mix(&keys), keys.len(), mixer.name());
        }
    }

    #[test]
    fn positions_increase_within_each_parallel_batch(
        keys in batch(), missed_ppm in rate(), false_ppm in rate(), seed: u64,
    ) {
        for mixer in mixers(missed_ppm, false_ppm, seed) {
            for batch in mixer.mix(&keys).parallel_batches() {
                prop_assert!(
                    batch.windows(2).all(|pair| pair[0] < pair[1]),
                    "{}: parallel batch {:?} is not in batch order", mixer.name(), batch
                );
            }
        }
    }

    #[test]
    fn greedy_never_puts_two_conflicting_requests_in_one_parallel_batch(keys in batch()) {
        for batch in GreedyMixer.mix(&keys).parallel_batches() {
            for (a, &i) in batch.iter().enumerate() {
                for &j in &batch[a + 1..] {
                    prop_assert!(
                        !keys[i as usize].conflicts(&keys[j as usize]),
                        "{} and {} conflict but share parallel batch {:?}", i, j, batch
                    );
                }
            }
        }
    }

    #[test]
    fn greedy_keeps_batch_order_for_conflicting_requests(keys in batch()) {
        let of = parallel_batch_of(&GreedyMixer.mix(&keys));
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                if keys[i].conflicts(&keys[j]) {
                    prop_assert!(
                        of[i] < of[j],
                        "{} precedes {} and conflicts with it, yet runs in parallel batch {} \
                         and it in {}", i, j, of[i], of[j]
                    );
                }
            }
        }
    }

    #[test]
    fn greedy_places_each_request_right_after_its_latest_conflict(keys in batch()) {
        // No request could have run earlier: one in parallel batch k > 0 conflicts with an
        // earlier request in parallel batch k - 1.
        let schedule = GreedyMixer.mix(&keys);
        let of = parallel_batch_of(&schedule);
        for (j, &k) in of.iter().enumerate() {
            if k > 0 {
                prop_assert!(
                    schedule.parallel_batch(k - 1).iter().any(|&i| {
                        (i as usize) < j && keys[i as usize].conflicts(&keys[j])
                    }),
                    "{} waits in parallel batch {} with nothing to wait for", j, k
                );
            }
        }
    }

    #[test]
    fn greedy_equals_the_round_by_round_rule(keys in batch()) {
        prop_assert_eq!(parallel_batches(&GreedyMixer.mix(&keys)), naive_rounds(&keys));
    }

    #[test]
    fn schedules_survive_a_round_trip_through_from_parallel_batches(keys in batch()) {
        let schedule = GreedyMixer.mix(&keys);
        prop_assert_eq!(
            Schedule::from_parallel_batches(parallel_batches(&schedule)),
            Ok(schedule)
        );
    }

    #[test]
    fn faulty_mixer_without_faults_equals_its_inner_mixer(keys in batch(), seed: u64) {
        let faulty = FaultyMixer::new(GreedyMixer, 0, 0, seed).unwrap();
        prop_assert_eq!(faulty.mix(&keys), GreedyMixer.mix(&keys));
    }

    #[test]
    fn faulty_mixer_with_one_seed_always_gives_one_schedule(
        keys in batch(), missed_ppm in rate(), false_ppm in rate(), seed: u64,
    ) {
        let a = FaultyMixer::new(GreedyMixer, missed_ppm, false_ppm, seed).unwrap();
        let b = FaultyMixer::new(GreedyMixer, missed_ppm, false_ppm, seed).unwrap();
        prop_assert_eq!(a.mix(&keys), b.mix(&keys), "the draws depend on (seed, position) only");
    }

    #[test]
    fn faulty_mixer_missing_every_conflict_gives_one_parallel_batch(keys in batch(), seed: u64) {
        let faulty = FaultyMixer::new(GreedyMixer, FAULT_PPM_MAX, 0, seed).unwrap();
        prop_assert_eq!(faulty.mix(&keys), Schedule::parallel(keys.len()));
    }
}

#[test]
fn faulty_mixer_schedules_differ_across_seeds_at_intermediate_rates() {
    let mut writes_x = ConflictKeys::new();
    writes_x.write(b"x");
    let all_conflicting = vec![writes_x; 16];
    let keyless = vec![ConflictKeys::new(); 16];
    for (keys, missed_ppm, false_ppm) in [
        (&all_conflicting, FAULT_PPM_MAX / 2, 0),
        (&keyless, 0, FAULT_PPM_MAX / 2),
    ] {
        let schedule = |seed| {
            FaultyMixer::new(GreedyMixer, missed_ppm, false_ppm, seed)
                .unwrap()
                .mix(keys)
        };
        let first = schedule(0);
        assert!(
            (1..64).any(|seed| schedule(seed) != first),
            "at {missed_ppm} ppm missed and {false_ppm} ppm false conflicts, 64 seeds give \
             one schedule: the seed is not used"
        );
    }
}
