//! Samples sorted once by (machine, time), failures attached to their
//! machines, and the evaluation of one set of flags against them.

use std::collections::BTreeMap;
use std::ops::Range;

use super::params::{EventParams, Micros};
use super::result::{EventMetrics, Tally};
use super::{AlarmEpisode, Failure};
use crate::error::Result;
use crate::validate::{check_nonempty, check_same_len};

/// One machine's samples (a range of the sorted order) and its observed failures.
#[derive(Debug)]
struct Machine {
    id: u32,
    rows: Range<usize>,
    /// Observed failures (indices into the failure list), by time.
    failures: Vec<usize>,
}

/// Samples in (machine, time) order, ready to evaluate many flag sets.
#[derive(Debug)]
pub(crate) struct Timeline<'a> {
    /// Input positions in (machine, time) order; ties keep input order.
    pub(crate) order: Vec<usize>,
    /// Times in that order.
    time: Vec<i64>,
    machines: Vec<Machine>,
    failures: &'a [Failure],
    /// Failures with no sample of their machine in `[time - horizon, time)`.
    unobserved: Vec<usize>,
    monitored_us: i128,
    us: Micros,
}

impl<'a> Timeline<'a> {
    pub(crate) fn new(
        machine: &[u32],
        time: &[i64],
        failures: &'a [Failure],
        params: &EventParams,
    ) -> Result<Self> {
        let us = params.micros()?;
        check_same_len("machine", machine.len(), "time", time.len())?;
        check_nonempty("time", time.len())?;
        let mut order: Vec<usize> = (0..time.len()).collect();
        order.sort_by_key(|&i| (machine[i], time[i]));
        let sorted_time: Vec<i64> = order.iter().map(|&i| time[i]).collect();
        let mut machines = Vec::new();
        let mut start = 0;
        for i in 1..=order.len() {
            if i == order.len() || machine[order[i]] != machine[order[start]] {
                let id = machine[order[start]];
                machines.push(Machine {
                    id,
                    rows: start..i,
                    failures: Vec::new(),
                });
                start = i;
            }
        }
        let mut t = Self {
            order,
            time: sorted_time,
            machines,
            failures,
            unobserved: Vec::new(),
            monitored_us: 0,
            us,
        };
        t.attach_failures();
        t.monitored_us = t.monitored_time();
        Ok(t)
    }

    fn attach_failures(&mut self) {
        let mut by_time: Vec<usize> = (0..self.failures.len()).collect();
        by_time.sort_by_key(|&i| (self.failures[i].time, i));
        for i in by_time {
            let f = &self.failures[i];
            let found = self.machines.binary_search_by_key(&f.machine, |m| m.id);
            match found {
                Ok(m) if self.observed(&self.machines[m], f.time) => {
                    self.machines[m].failures.push(i);
                }
                _ => self.unobserved.push(i),
            }
        }
    }

    /// Is there a sample of `m` in `[f - horizon, f)`?
    fn observed(&self, m: &Machine, f: i64) -> bool {
        let t = &self.time[m.rows.clone()];
        let lo = t.partition_point(|&x| x < f.saturating_sub(self.us.horizon));
        lo < t.len() && t[lo] < f
    }

    /// Sum of the intervals between consecutive samples of a machine that are
    /// at most `max_monitoring_gap` long.
    fn monitored_time(&self) -> i128 {
        let max = i128::from(self.us.max_monitoring_gap);
        let mut sum = 0i128;
        for m in &self.machines {
            for w in self.time[m.rows.clone()].windows(2) {
                let d = i128::from(w[1]) - i128::from(w[0]);
                if d <= max {
                    sum += d;
                }
            }
        }
        sum
    }

    /// The alarm episodes of flags given in sorted order, machine by machine.
    pub(crate) fn episodes(&self, flags: &[bool], params: &EventParams) -> Vec<Vec<AlarmEpisode>> {
        self.machines
            .iter()
            .map(|m| {
                let own = &flags[m.rows.clone()];
                let smoothed;
                let own = match params.smoothing {
                    Some(s) => {
                        smoothed = s.apply_unchecked(own);
                        &smoothed[..]
                    }
                    None => own,
                };
                merge(m.id, &self.time[m.rows.clone()], own, self.us.merge_gap)
            })
            .collect()
    }

    /// Flags in sorted order from scores in input order.
    pub(crate) fn flags_at(&self, score: &[f64], threshold: f64) -> Vec<bool> {
        self.order.iter().map(|&i| score[i] >= threshold).collect()
    }

    /// Per sample in sorted order: does its machine fail within the horizon,
    /// `f - horizon <= t < f` (the labels of vigil-features' `horizon_labels`)?
    pub(crate) fn horizon_labels(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.time.len()];
        for m in &self.machines {
            let mut next = 0;
            for r in m.rows.clone() {
                let t = self.time[r];
                while next < m.failures.len() && self.failures[m.failures[next]].time <= t {
                    next += 1;
                }
                if let Some(&fi) = m.failures.get(next) {
                    let f = self.failures[fi].time;
                    out[r] = u8::from(i128::from(f) - i128::from(t) <= i128::from(self.us.horizon));
                }
            }
        }
        out
    }

    /// The event metrics of flags given in sorted order.
    pub(crate) fn evaluate(&self, flags: &[bool], params: &EventParams) -> EventMetrics {
        let mut all = Tally::default();
        let mut per_mode: BTreeMap<&str, Tally> = BTreeMap::new();
        for &i in &self.unobserved {
            all.unobserved += 1;
            if let Some(mode) = &self.failures[i].mode {
                per_mode.entry(mode).or_default().unobserved += 1;
            }
        }
        let episodes = self.episodes(flags, params);
        for (m, eps) in self.machines.iter().zip(&episodes) {
            self.match_failures(m, eps, &mut all, &mut per_mode);
            self.match_episodes(m, eps, &mut all, &mut per_mode);
        }
        EventMetrics::from_tallies(all, per_mode, self.monitored_us, params)
    }

    /// Catches each observed failure of `m` with the first episode starting in
    /// `[f - horizon, f)`.
    fn match_failures<'f>(
        &'f self,
        m: &Machine,
        eps: &[AlarmEpisode],
        all: &mut Tally,
        per_mode: &mut BTreeMap<&'f str, Tally>,
    ) {
        for &fi in &m.failures {
            let f = &self.failures[fi];
            let from = f.time.saturating_sub(self.us.horizon);
            let k = eps.partition_point(|e| e.start < from);
            let lead = eps
                .get(k)
                .filter(|e| e.start < f.time)
                .map(|e| (i128::from(f.time) - i128::from(e.start)) as f64 / 60e6);
            all.add_failure(lead);
            if let Some(mode) = &f.mode {
                per_mode.entry(mode).or_default().add_failure(lead);
            }
        }
    }

    /// An episode is a true alarm when a failure of its machine comes in
    /// `(start, start + horizon]`; per mode, when one of that mode does.
    fn match_episodes<'f>(
        &'f self,
        m: &Machine,
        eps: &[AlarmEpisode],
        all: &mut Tally,
        per_mode: &mut BTreeMap<&'f str, Tally>,
    ) {
        let times: Vec<i64> = m.failures.iter().map(|&i| self.failures[i].time).collect();
        for e in eps {
            all.episodes += 1;
            let until = e.start.saturating_add(self.us.horizon);
            let lo = times.partition_point(|&t| t <= e.start);
            let hi = times.partition_point(|&t| t <= until);
            if lo < hi {
                all.true_alarms += 1;
            }
            let mut modes: Vec<&str> = m.failures[lo..hi]
                .iter()
                .filter_map(|&i| self.failures[i].mode.as_deref())
                .collect();
            modes.sort_unstable();
            modes.dedup();
            for mode in modes {
                per_mode.entry(mode).or_default().true_alarms += 1;
            }
        }
    }
}

/// Merges one machine's flagged samples into episodes: a flagged sample at
/// most `gap` after the previous flagged one extends the current episode.
fn merge(id: u32, time: &[i64], flags: &[bool], gap: i64) -> Vec<AlarmEpisode> {
    let mut out: Vec<AlarmEpisode> = Vec::new();
    for (&t, _) in time.iter().zip(flags).filter(|(_, f)| **f) {
        match out.last_mut() {
            Some(e) if i128::from(t) - i128::from(e.end) <= i128::from(gap) => {
                e.end = t;
                e.n_flagged += 1;
            }
            _ => out.push(AlarmEpisode {
                machine: id,
                start: t,
                end: t,
                n_flagged: 1,
            }),
        }
    }
    out
}
