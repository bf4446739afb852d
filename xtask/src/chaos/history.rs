//! What a chaos run's clients saw, and the figures judged from it: every call with when it was
//! invoked and, if it returned, when and what; acknowledged writes lost; how long the cluster
//! took to serve again after each fault healed; latency during and outside the faults.
//!
//! Times are microseconds from the start of the run. Every write puts a value no other write
//! puts, so a read tells which write it saw.

use super::schedule::Window;
use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use eve_sim::kv_history::KvEvent;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Counts of calls by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Calls that returned the application's answer.
    pub ok: u64,
    /// Calls that returned an error from the application (`KvReply::Error`).
    pub failed: u64,
    /// Calls that never returned (timed out): they may or may not have taken effect.
    pub unknown: u64,
}

/// Counts `history`'s calls by outcome.
pub fn outcomes(history: &[KvEvent]) -> Outcomes {
    let mut out = Outcomes::default();
    for event in history {
        match &event.reply {
            None => out.unknown += 1,
            Some(KvReply::Error(_)) => out.failed += 1,
            Some(_) => out.ok += 1,
        }
    }
    out
}

/// Acknowledged writes that a later read does not reflect: for each key, every acknowledged
/// write (a `Put`, or a `CompareAndSwap` that swapped) that returned before the key's last completed read was invoked must be that read's
/// value or be overwritten by a write that could have come after it. Counts the writes that
/// are neither: writes the cluster acknowledged and then lost.
///
/// A read that returned a value no write put (or nothing, after a write was acknowledged and
/// no delete exists in the workload) counts every acknowledged write before it as lost.
pub fn lost_writes(history: &[KvEvent]) -> Vec<usize> {
    // The last completed read of each key (by invocation).
    let mut final_read: BTreeMap<&Bytes, usize> = BTreeMap::new();
    // The write of each value, and each key's acknowledged writes.
    let mut writer: HashMap<(&Bytes, &Bytes), usize> = HashMap::new();
    let mut acknowledged: BTreeMap<&Bytes, Vec<usize>> = BTreeMap::new();
    for (i, event) in history.iter().enumerate() {
        match &event.op {
            KvOp::Get { key } if event.complete.is_some() => {
                let later = final_read
                    .get(key)
                    .is_none_or(|&j| history[j].invoke < event.invoke);
                if later {
                    final_read.insert(key, i);
                }
            }
            _ => {
                if let Some((key, value)) = written(event) {
                    writer.insert((key, value), i);
                    let acked = matches!(
                        (&event.op, &event.reply),
                        (KvOp::Put { .. }, Some(KvReply::Value(_)))
                            | (KvOp::CompareAndSwap { .. }, Some(KvReply::Swapped))
                    );
                    if acked {
                        acknowledged.entry(key).or_default().push(i);
                    }
                }
            }
        }
    }
    let mut lost = Vec::new();
    for (key, &read) in &final_read {
        let seen = match &history[read].reply {
            Some(KvReply::Value(Some(value))) => writer.get(&(*key, value)).copied(),
            _ => None,
        };
        let read_invoke = history[read].invoke;
        for &i in acknowledged.get(key).into_iter().flatten() {
            let event = &history[i];
            let done = event.complete.expect("an acknowledged write completed");
            if done >= read_invoke || Some(i) == seen {
                continue;
            }
            // Acknowledged before the read began: the read must see it or a write that may
            // follow it (one not over before this one was invoked).
            let superseded = seen.is_some_and(|s| {
                let s = &history[s];
                s.complete.is_none_or(|c| c > event.invoke)
            });
            if !superseded {
                lost.push(i);
            }
        }
    }
    lost
}

/// The key and value `event` writes, if it writes one: a put, or a compare-and-swap to a value.
fn written(event: &KvEvent) -> Option<(&Bytes, &Bytes)> {
    match &event.op {
        KvOp::Put { key, value } => Some((key, value)),
        KvOp::CompareAndSwap {
            key,
            new: Some(value),
            ..
        } => Some((key, value)),
        _ => None,
    }
}

/// How long the cluster took to serve again after a fault healed: from the heal to the first
/// reply to a call invoked at or after it (`None`: no such call returned).
pub fn recovery(history: &[KvEvent], heal: Duration) -> Option<Duration> {
    let heal_us = heal.as_micros() as u64;
    history
        .iter()
        .filter(|e| e.invoke >= heal_us && e.reply.is_some())
        .filter_map(|e| e.complete)
        .min()
        .map(|done| Duration::from_micros(done - heal_us))
}

/// The longest stretch between `from` and `to` in which no call returned: how long the
/// cluster stalled after a fault healed (`from`: the heal, `to`: the next fault or the end).
pub fn longest_stall(history: &[KvEvent], from: Duration, to: Duration) -> Duration {
    let (from_us, to_us) = (from.as_micros() as u64, to.as_micros() as u64);
    let mut replies: Vec<u64> = history
        .iter()
        .filter(|e| e.reply.is_some())
        .filter_map(|e| e.complete)
        .filter(|&c| c >= from_us && c <= to_us)
        .collect();
    replies.sort_unstable();
    let mut longest = 0;
    let mut last = from_us;
    for reply in replies.into_iter().chain([to_us]) {
        longest = longest.max(reply - last);
        last = reply;
    }
    Duration::from_micros(longest)
}

/// Whether a call invoked at `invoke_us` started inside a fault window.
pub fn in_fault(windows: &[Window], invoke_us: u64) -> bool {
    let at = Duration::from_micros(invoke_us);
    windows.iter().any(|w| w.start <= at && at < w.end)
}

/// Latency figures of the calls invoked inside or outside the fault windows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Calls counted.
    pub calls: u64,
    /// Of them, calls that returned within the deadline.
    pub within: u64,
    /// The 99th percentile, in milliseconds, counting a call that never returned as lasting
    /// until the end of the run.
    pub p99_ms: f64,
}

impl Latency {
    /// The share of calls that returned within the deadline (1 when there were none).
    pub fn within_share(&self) -> f64 {
        if self.calls == 0 {
            1.0
        } else {
            self.within as f64 / self.calls as f64
        }
    }
}

/// Latency of the calls invoked inside (`during = true`) or outside the windows, with
/// `deadline` for [`Latency::within`]; `end_us` is when the run stopped.
pub fn latency(
    history: &[KvEvent],
    windows: &[Window],
    during: bool,
    deadline: Duration,
    end_us: u64,
) -> Latency {
    let deadline_us = deadline.as_micros() as u64;
    let mut lasted = Vec::new();
    let mut within = 0;
    for e in history
        .iter()
        .filter(|e| in_fault(windows, e.invoke) == during)
    {
        lasted.push(e.complete.unwrap_or(end_us.max(e.invoke)) - e.invoke);
        within += u64::from(e.complete.is_some_and(|c| c - e.invoke <= deadline_us));
    }
    lasted.sort_unstable();
    let p99_ms = if lasted.is_empty() {
        0.0
    } else {
        let rank = ((lasted.len() as f64 * 0.99).ceil() as usize).clamp(1, lasted.len());
        lasted[rank - 1] as f64 / 1000.0
    };
    Latency {
        calls: lasted.len() as u64,
        within,
        p99_ms,
    }
}

/// Per second of the run: replies received, and the 99th percentile latency (ms) of the calls
/// that returned in that second.
pub fn timeline(history: &[KvEvent], end_us: u64) -> Vec<(u64, f64)> {
    let seconds = (end_us / 1_000_000 + 1) as usize;
    let mut per_second: Vec<Vec<u64>> = vec![Vec::new(); seconds];
    for event in history {
        if let (Some(done), Some(_)) = (event.complete, &event.reply) {
            let s = ((done / 1_000_000) as usize).min(seconds - 1);
            per_second[s].push(done - event.invoke);
        }
    }
    per_second
        .into_iter()
        .map(|mut lasted| {
            lasted.sort_unstable();
            let p99 = match lasted.len() {
                0 => 0.0,
                n => lasted[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0,
            };
            (lasted.len() as u64, p99)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::schedule::Fault;

    fn put(client: u64, invoke: u64, complete: Option<u64>, key: &str, value: &str) -> KvEvent {
        KvEvent {
            client,
            invoke,
            complete,
            op: KvOp::Put {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
            reply: complete.map(|_| KvReply::Value(None)),
        }
    }

    fn get(client: u64, invoke: u64, complete: u64, key: &str, seen: Option<&str>) -> KvEvent {
        KvEvent {
            client,
            invoke,
            complete: Some(complete),
            op: KvOp::Get {
                key: Bytes::copy_from_slice(key.as_bytes()),
            },
            reply: Some(KvReply::Value(
                seen.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            )),
        }
    }

    #[test]
    fn a_read_that_misses_an_acknowledged_write_counts_it_lost() {
        // a1 then a2 acknowledged; the last read sees a1: a2 is lost.
        let history = vec![
            put(1, 0, Some(10), "a", "a1"),
            put(1, 20, Some(30), "a", "a2"),
            get(2, 40, 50, "a", Some("a1")),
        ];
        assert_eq!(lost_writes(&history), [1]);
        // The read sees a2: nothing lost (a1 is superseded by a2, which followed it).
        let mut ok = history.clone();
        ok[2] = get(2, 40, 50, "a", Some("a2"));
        assert!(lost_writes(&ok).is_empty());
        // A read that sees nothing after an acknowledged write: lost.
        let nothing = vec![put(1, 0, Some(10), "b", "b1"), get(2, 40, 50, "b", None)];
        assert_eq!(lost_writes(&nothing), [0]);
    }

    #[test]
    fn a_swap_is_a_write_too() {
        let cas = |invoke, complete, expected: &str, new: &str, swapped| KvEvent {
            client: 3,
            invoke,
            complete: Some(complete),
            op: KvOp::CompareAndSwap {
                key: Bytes::from_static(b"a"),
                expected: Some(Bytes::copy_from_slice(expected.as_bytes())),
                new: Some(Bytes::copy_from_slice(new.as_bytes())),
            },
            reply: Some(if swapped {
                KvReply::Swapped
            } else {
                KvReply::CasFailed { current: None }
            }),
        };
        // The final read sees the swap's value: the put before it is superseded.
        let seen = vec![
            put(1, 0, Some(10), "a", "a1"),
            cas(20, 30, "a1", "a2", true),
            get(2, 40, 50, "a", Some("a2")),
        ];
        assert!(lost_writes(&seen).is_empty());
        // The read misses an acknowledged swap.
        let missed = vec![
            put(1, 0, Some(10), "a", "a1"),
            cas(20, 30, "a1", "a2", true),
            get(2, 40, 50, "a", Some("a1")),
        ];
        assert_eq!(lost_writes(&missed), [1]);
        // A swap that failed wrote nothing.
        let failed = vec![
            put(1, 0, Some(10), "a", "a1"),
            cas(20, 30, "zz", "a2", false),
            get(2, 40, 50, "a", Some("a1")),
        ];
        assert!(lost_writes(&failed).is_empty());
    }

    #[test]
    fn concurrent_and_unacknowledged_writes_are_not_lost() {
        let history = vec![
            // Two writes that overlap: either may be last.
            put(1, 0, Some(30), "a", "a1"),
            put(2, 10, Some(20), "a", "a2"),
            // A write that timed out may have taken effect after a2.
            put(3, 25, None, "a", "a3"),
            get(4, 40, 50, "a", Some("a1")),
            // Only the last read of a key counts.
            get(4, 60, 70, "a", Some("a3")),
        ];
        assert!(lost_writes(&history).is_empty());
        // A write acknowledged after the read began is not required of it.
        let late = vec![put(1, 0, Some(100), "c", "c1"), get(2, 40, 50, "c", None)];
        assert!(lost_writes(&late).is_empty());
    }

    fn window(start_s: u64, end_s: u64) -> Window {
        Window {
            start: Duration::from_secs(start_s),
            end: Duration::from_secs(end_s),
            fault: Fault::Pause { node: 0 },
        }
    }

    #[test]
    fn recovery_and_latency_are_split_by_the_fault_windows() {
        let s = 1_000_000;
        let history = vec![
            put(1, 0, Some(s / 100), "a", "1"),
            // Started in the fault, returned after it.
            put(1, 2 * s, Some(5 * s + 500_000), "a", "2"),
            // Started before the heal at 5 s and never returned.
            put(2, 3 * s, None, "a", "3"),
            // The first call after the heal returns 1.5 s after it.
            put(3, 5 * s + 100, Some(6 * s + 500_000), "a", "4"),
            put(1, 7 * s, Some(7 * s + 1000), "a", "5"),
        ];
        let windows = [window(1, 5)];
        assert_eq!(
            recovery(&history, Duration::from_secs(5)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(recovery(&history, Duration::from_secs(8)), None);
        // Replies at 5.5, 6.5 and 7.001 s: from the heal at 5 s to 8 s the longest stretch
        // without one is 5.5 to 6.5.
        assert_eq!(
            longest_stall(&history, Duration::from_secs(5), Duration::from_secs(8)),
            Duration::from_secs(1)
        );
        assert_eq!(
            longest_stall(&history, Duration::from_secs(2), Duration::from_secs(7)),
            Duration::from_millis(3500)
        );
        assert!(in_fault(&windows, 2 * s) && !in_fault(&windows, 5 * s));
        let outside = latency(&history, &windows, false, Duration::from_secs(2), 8 * s);
        assert_eq!((outside.calls, outside.within), (3, 3));
        let during = latency(&history, &windows, true, Duration::from_secs(2), 8 * s);
        // Both calls in the fault lasted past 2 s; the one that never returned counts until
        // the end.
        assert_eq!((during.calls, during.within), (2, 0));
        assert_eq!(during.p99_ms, 5000.0);
        assert_eq!(
            outcomes(&history),
            Outcomes {
                ok: 4,
                failed: 0,
                unknown: 1
            }
        );
        let per_second = timeline(&history, 8 * s);
        assert_eq!(per_second.len(), 9);
        assert_eq!(per_second[5].0, 1);
        assert_eq!(per_second[5].1, 3500.0);
    }
}
