//! The report's charts, drawn from what a run measured:
//! - throughput against executor threads, per workload (a `--threads` sweep);
//! - p99 latency against the offered load, per workload (an open-loop `--rate` sweep);
//! - throughput relative to eve-seq against the work per request (several `--work-us`);
//! - eve's throughput against the share of batches forced to diverge (`--diverge`).

use super::load::Load;
use super::plot::{self, Scale, Series};
use super::systems::System;
use super::{At, Results, Workload};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What was measured, and where.
pub struct Sweep<'a> {
    /// Executor threads per replica, each measured.
    pub threads: &'a [usize],
    /// The workloads measured.
    pub workloads: &'a [Workload],
    /// The loads offered.
    pub loads: &'a [Load],
    /// The systems measured.
    pub systems: &'a [System],
    /// Forced divergence rates (percent) eve was measured at again.
    pub diverge: &'a [f64],
    /// The measurements.
    pub results: &'a Results,
}

impl Sweep<'_> {
    /// Draws every chart the sweep has the points for next to `out` (`out`'s stem, a dash and
    /// the chart's name, `.svg`), and returns the files written.
    pub fn draw(&self, out: &Path) -> Result<Vec<PathBuf>> {
        let stem = out.with_extension("");
        let named = |suffix: &str| PathBuf::from(format!("{}-{suffix}.svg", stem.display()));
        let mut written = Vec::new();
        for chart in self.charts() {
            let path = named(&chart.name);
            plot::chart(
                &path,
                &chart.title,
                chart.labels,
                chart.scales,
                &chart.series,
            )?;
            written.push(path);
        }
        Ok(written)
    }

    /// The charts the sweep has points for.
    fn charts(&self) -> Vec<Chart> {
        let mut charts = Vec::new();
        if self.threads.len() > 1 {
            charts.extend((0..self.workloads.len()).map(|w| self.against_threads(w)));
        }
        if self.loads.len() > 1 {
            charts.extend((0..self.workloads.len()).map(|w| self.against_load(w)));
        }
        let micro: Vec<(usize, u64)> = self
            .workloads
            .iter()
            .enumerate()
            .filter_map(|(w, workload)| match workload {
                Workload::Micro { work_us, .. } => Some((w, *work_us)),
                _ => None,
            })
            .collect();
        if micro.len() > 1 {
            charts.push(self.against_cost(&micro));
        }
        if !self.diverge.is_empty() {
            charts.push(self.against_divergence());
        }
        charts
    }

    fn at(&self, threads: usize, workload: usize, load: usize) -> At {
        At {
            threads,
            workload,
            load,
        }
    }

    fn throughput(&self, at: At, system: System) -> Option<f64> {
        Some(self.results.plain.get(&(at, system))?.throughput())
    }

    fn against_threads(&self, w: usize) -> Chart {
        let series = self
            .systems
            .iter()
            .map(|&system| Series {
                name: system.name().to_owned(),
                points: (0..self.threads.len())
                    .filter_map(|t| {
                        let ops = self.throughput(self.at(t, w, 0), system)?;
                        Some((self.threads[t] as f64, ops))
                    })
                    .collect(),
            })
            .collect();
        Chart {
            name: format!("threads-{}", self.workloads[w].label()),
            title: format!(
                "{}: throughput against executor threads",
                self.workloads[w].label()
            ),
            labels: ("threads per replica", "ops/s"),
            scales: (Scale::Linear, Scale::Linear),
            series,
        }
    }

    fn against_load(&self, w: usize) -> Chart {
        let series = self
            .systems
            .iter()
            .map(|&system| Series {
                name: system.name().to_owned(),
                points: self
                    .loads
                    .iter()
                    .enumerate()
                    .filter_map(|(l, load)| {
                        let Load::Open { per_second } = *load else {
                            return None;
                        };
                        let report = self.results.plain.get(&(self.at(0, w, l), system))?;
                        Some((per_second, report.latency_ms(0.99)))
                    })
                    .collect(),
            })
            .collect();
        Chart {
            name: format!("latency-{}", self.workloads[w].label()),
            title: format!(
                "{}: p99 latency (from when due) against offered load, {} threads",
                self.workloads[w].label(),
                self.threads[0]
            ),
            labels: ("calls offered per second", "p99 latency (ms)"),
            scales: (Scale::Linear, Scale::Log),
            series,
        }
    }

    fn against_cost(&self, micro: &[(usize, u64)]) -> Chart {
        let baseline = self.systems.contains(&System::EveSequential);
        let series = self
            .systems
            .iter()
            .filter(|&&s| !baseline || s != System::EveSequential)
            .map(|&system| Series {
                name: system.name().to_owned(),
                points: micro
                    .iter()
                    .filter_map(|&(w, work_us)| {
                        let at = self.at(0, w, 0);
                        let ops = self.throughput(at, system)?;
                        let y = if baseline {
                            ops / self.throughput(at, System::EveSequential)?
                        } else {
                            ops
                        };
                        Some((work_us as f64, y))
                    })
                    .collect(),
            })
            .collect();
        let (y_label, y_scale) = if baseline {
            ("throughput / eve-seq's", Scale::Linear)
        } else {
            ("ops/s", Scale::Log)
        };
        Chart {
            name: "request-cost".to_owned(),
            title: format!(
                "micro: throughput against work per request, {} threads",
                self.threads[0]
            ),
            labels: ("busy work per request (µs)", y_label),
            scales: (Scale::Log, y_scale),
            series,
        }
    }

    fn against_divergence(&self) -> Chart {
        let series = (0..self.workloads.len())
            .map(|w| {
                let at = self.at(0, w, 0);
                let clean = self.throughput(at, System::Eve).map(|ops| (0.0, ops));
                let forced = self.diverge.iter().enumerate().filter_map(|(d, &pct)| {
                    Some((pct, self.results.diverged.get(&(at, d))?.throughput()))
                });
                Series {
                    name: self.workloads[w].label(),
                    points: clean.into_iter().chain(forced).collect(),
                }
            })
            .collect();
        Chart {
            name: "divergence".to_owned(),
            title: format!("eve: the cost of divergence ({} threads)", self.threads[0]),
            labels: ("parallel batches forced to diverge (%)", "ops/s"),
            scales: (Scale::Linear, Scale::Linear),
            series,
        }
    }
}

/// One chart to draw.
struct Chart {
    name: String,
    title: String,
    labels: (&'static str, &'static str),
    scales: (Scale, Scale),
    series: Vec<Series>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::e2e::load::LoadReport;
    use hdrhistogram::Histogram;
    use std::time::Duration;

    fn report(ops: u64, p99_ms: u64) -> LoadReport {
        let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        latency.record_n(p99_ms * 1000, 100).unwrap();
        LoadReport {
            completed: ops,
            failed: 0,
            missed: 0,
            elapsed: Duration::from_secs(1),
            latency_us: latency.clone(),
            service_us: latency,
        }
    }

    #[test]
    fn each_sweep_gets_its_chart_with_the_points_measured() {
        let micro = |work_us| Workload::Micro { work_us, rounds: 1 };
        let workloads = [micro(1), micro(100)];
        let loads = [
            Load::Open { per_second: 100.0 },
            Load::Open { per_second: 200.0 },
        ];
        let systems = [System::EveSequential, System::Eve];
        let mut results = Results::default();
        for t in 0..2 {
            for w in 0..2 {
                for l in 0..2 {
                    let at = At {
                        threads: t,
                        workload: w,
                        load: l,
                    };
                    let base = 1000 * (t as u64 + 1) * (l as u64 + 1);
                    results
                        .plain
                        .insert((at, System::EveSequential), report(base, 5));
                    results.plain.insert(
                        (at, System::Eve),
                        report(base * (w as u64 + 2), 2 + l as u64),
                    );
                }
            }
        }
        let at0 = At {
            threads: 0,
            workload: 0,
            load: 0,
        };
        results.diverged.insert((at0, 0), report(1500, 9));
        let sweep = Sweep {
            threads: &[1, 4],
            workloads: &workloads,
            loads: &loads,
            systems: &systems,
            diverge: &[10.0],
            results: &results,
        };
        let charts = sweep.charts();
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "threads-micro-1us",
                "threads-micro-100us",
                "latency-micro-1us",
                "latency-micro-100us",
                "request-cost",
                "divergence"
            ]
        );
        let series = |chart: &str, name: &str| {
            let chart = charts.iter().find(|c| c.name == chart).unwrap();
            let s = chart.series.iter().find(|s| s.name == name).unwrap();
            s.points.clone()
        };
        assert_eq!(
            series("threads-micro-1us", "eve"),
            [(1.0, 2000.0), (4.0, 4000.0)]
        );
        // p99 of eve's latency at each offered rate.
        let latency = series("latency-micro-100us", "eve");
        assert_eq!(latency.len(), 2);
        assert_eq!(latency[0].0, 100.0);
        assert!((latency[0].1 - 2.0).abs() < 0.01 && (latency[1].1 - 3.0).abs() < 0.01);
        // eve relative to eve-seq against the work per request; eve-seq itself is the baseline.
        assert_eq!(series("request-cost", "eve"), [(1.0, 2.0), (100.0, 3.0)]);
        let cost = charts.iter().find(|c| c.name == "request-cost").unwrap();
        assert_eq!(cost.series.len(), 1);
        assert_eq!(
            series("divergence", "micro-1us"),
            [(0.0, 2000.0), (10.0, 1500.0)]
        );
    }

    #[test]
    fn a_single_point_draws_no_sweep_chart() {
        let workloads = [Workload::Micro {
            work_us: 1,
            rounds: 1,
        }];
        let results = Results::default();
        let sweep = Sweep {
            threads: &[2],
            workloads: &workloads,
            loads: &[Load::Closed],
            systems: &[System::Eve],
            diverge: &[],
            results: &results,
        };
        assert!(sweep.charts().is_empty());
    }
}
