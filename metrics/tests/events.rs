//! Event-level evaluation on hand-made timelines, golden lead-time
//! statistics (tests/golden/events_stats.py, NumPy) and invariants (proptest).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test file

use std::time::Duration;

use proptest::prelude::*;
use vigil_metrics::*;

const MIN: i64 = 60_000_000;
/// A failure time well inside the grids below.
const F: i64 = 1_000 * MIN;

/// Samples of one machine every minute over `[from, to]` (minutes relative to
/// `F`), flagged on the minutes in `alarms`.
struct Grid {
    machine: Vec<u32>,
    time: Vec<i64>,
    flags: Vec<bool>,
}

impl Grid {
    fn new() -> Self {
        Self {
            machine: Vec::new(),
            time: Vec::new(),
            flags: Vec::new(),
        }
    }

    fn add(
        mut self,
        id: u32,
        from: i64,
        to: i64,
        alarms: &[std::ops::RangeInclusive<i64>],
    ) -> Self {
        for m in from..=to {
            self.machine.push(id);
            self.time.push(F + m * MIN);
            self.flags.push(alarms.iter().any(|r| r.contains(&m)));
        }
        self
    }

    fn eval(&self, failures: &[Failure], params: &EventParams) -> EventMetrics {
        evaluate_alarms(&self.machine, &self.time, &self.flags, failures, params).unwrap()
    }
}

fn failure(machine: u32, minutes: i64) -> Failure {
    Failure {
        machine,
        time: F + minutes * MIN,
        mode: None,
    }
}

fn with_mode(machine: u32, minutes: i64, mode: &str) -> Failure {
    Failure {
        mode: Some(mode.to_owned()),
        ..failure(machine, minutes)
    }
}

fn p() -> EventParams {
    EventParams::default()
}

#[test]
fn a_failure_with_no_alarm_is_missed() {
    let m = Grid::new()
        .add(0, -120, 0, &[])
        .eval(&[failure(0, 0)], &p());
    assert_eq!((m.failures_caught, m.failures_total), (0, 1));
    assert_eq!(m.recall, 0.0);
    assert!(m.lead_time_minutes.median.is_nan());
    assert_eq!((m.episodes, m.false_alarms), (0, 0));
    assert!(m.precision.is_nan());
    assert_eq!(m.false_alarms_per_machine_day, 0.0);
    assert_eq!(m.lead_time_histogram.counts, vec![0; 6]);
}

#[test]
fn an_alarm_31_minutes_before_is_not_caught_at_30() {
    let g = Grid::new().add(0, -120, 0, &[-31..=-31]);
    let m = g.eval(&[failure(0, 0)], &p());
    assert_eq!((m.failures_caught, m.episodes, m.false_alarms), (0, 1, 1));
    assert_eq!(m.precision, 0.0);
    // Exactly 30 minutes before is inside [f - horizon, f).
    let m = Grid::new()
        .add(0, -120, 0, &[-30..=-30])
        .eval(&[failure(0, 0)], &p());
    assert_eq!((m.failures_caught, m.true_alarms), (1, 1));
    assert_eq!(m.lead_time_minutes.median, 30.0);
    assert_eq!(m.lead_time_histogram.counts, vec![0, 0, 0, 0, 0, 1]);
    // A longer horizon catches the 31-minute alarm.
    let long = EventParams {
        horizon: Duration::from_secs(31 * 60),
        ..p()
    };
    let m = g.eval(&[failure(0, 0)], &long);
    assert_eq!(m.failures_caught, 1);
    assert_eq!(m.lead_time_minutes.median, 31.0);
}

#[test]
fn two_episodes_before_one_failure_are_both_true_and_the_first_sets_the_lead() {
    let m = Grid::new()
        .add(0, -120, 0, &[-25..=-23, -10..=-8])
        .eval(&[failure(0, 0)], &p());
    assert_eq!((m.failures_caught, m.failures_total), (1, 1));
    assert_eq!(m.lead_time_minutes.median, 25.0);
    assert_eq!((m.episodes, m.true_alarms, m.false_alarms), (2, 2, 0));
    assert_eq!(m.precision, 1.0);
}

#[test]
fn flags_within_the_merge_gap_form_one_episode() {
    let g = Grid::new().add(0, -120, 0, &[-20..=-20, -18..=-18, -15..=-15]);
    let eps = alarm_episodes(&g.machine, &g.time, &g.flags, &p()).unwrap();
    // -20 and -18 are 2 minutes apart (merged); -15 is 3 after -18.
    let starts: Vec<i64> = eps.iter().map(|e| (e.start - F) / MIN).collect();
    assert_eq!(starts, vec![-20, -15]);
    assert_eq!((eps[0].end - F) / MIN, -18);
    assert_eq!(eps[0].n_flagged, 2);
}

#[test]
fn an_alarm_spanning_the_failure_catches_it_when_it_starts_in_the_horizon() {
    let m = Grid::new()
        .add(0, -120, 60, &[-5..=5])
        .eval(&[failure(0, 0)], &p());
    assert_eq!((m.failures_caught, m.episodes, m.true_alarms), (1, 1, 1));
    assert_eq!(m.lead_time_minutes.median, 5.0);
    // One that started 40 minutes before and still rings does not: it is a
    // stale alarm, and a false one.
    let m = Grid::new()
        .add(0, -120, 60, &[-40..=5])
        .eval(&[failure(0, 0)], &p());
    assert_eq!((m.failures_caught, m.episodes, m.false_alarms), (0, 1, 1));
}

#[test]
fn telemetry_gaps_are_left_out_of_the_monitored_time() {
    // 0..=60 and 240..=300 minutes: two 60-minute stretches and a 3-hour gap.
    let g = Grid::new().add(0, 0, 60, &[30..=30]).add(0, 240, 300, &[]);
    let m = g.eval(&[], &p());
    assert!((m.monitored_machine_days - 120.0 / 1440.0).abs() < 1e-12);
    assert!((m.false_alarms_per_machine_day - 1440.0 / 120.0).abs() < 1e-9);
    // A 3-hour max gap counts the gap too.
    let wide = EventParams {
        max_monitoring_gap: Duration::from_secs(3 * 3600),
        ..p()
    };
    assert!((g.eval(&[], &wide).monitored_machine_days - 300.0 / 1440.0).abs() < 1e-12);
}

#[test]
fn failures_at_the_edges_of_the_data() {
    let g = Grid::new().add(0, 0, 60, &[55..=60]).add(1, 0, 60, &[]);
    let failures = [
        failure(0, 0),   // at the first sample: nothing before it
        failure(0, -5),  // before the data
        failure(0, 61),  // one minute after the last sample: observed, caught
        failure(0, 200), // after the data (139 min after the last sample)
        failure(1, 90),  // in the horizon of machine 1's last sample, no alarm
        failure(7, 30),  // a machine with no samples
    ];
    let m = g.eval(&failures, &p());
    assert_eq!(m.failures_unobserved, 4);
    assert_eq!((m.failures_caught, m.failures_total), (1, 2));
    assert_eq!(m.lead_time_minutes.median, 6.0);
    assert_eq!((m.episodes, m.true_alarms), (1, 1));
}

#[test]
fn per_mode_results() {
    let g = Grid::new()
        .add(0, -120, 0, &[-10..=-10])
        .add(1, -120, 0, &[-50..=-50]);
    let m = g.eval(
        &[with_mode(0, 0, "wear"), with_mode(1, 0, "overheat")],
        &p(),
    );
    let modes: Vec<(&str, usize, usize, usize)> = m
        .per_mode
        .iter()
        .map(|r| {
            (
                r.mode.as_str(),
                r.failures_caught,
                r.failures_total,
                r.true_alarms,
            )
        })
        .collect();
    assert_eq!(modes, vec![("overheat", 0, 1, 0), ("wear", 1, 1, 1)]);
    assert_eq!(m.per_mode[1].lead_time_minutes.median, 10.0);
    assert_eq!(m.per_mode[1].precision, 0.5);
    assert!(g.eval(&[failure(0, 0)], &p()).per_mode.is_empty());
}

#[test]
fn scores_and_a_threshold_give_the_flags_metrics() {
    let g = Grid::new().add(0, -120, 0, &[-25..=-23, -70..=-70]);
    let score: Vec<f64> = g.flags.iter().map(|&f| if f { 0.9 } else { 0.2 }).collect();
    let f = [failure(0, 0)];
    let by_score = evaluate_scores(&g.machine, &g.time, &score, 0.9, &f, &p()).unwrap();
    assert_eq!(by_score, g.eval(&f, &p()));
    assert_eq!(by_score.false_alarms, 1);
}

#[test]
fn unsorted_input_gives_the_sorted_result() {
    let g = Grid::new()
        .add(0, -120, 0, &[-25..=-23, -70..=-70])
        .add(1, -60, 30, &[-5..=0]);
    let f = [failure(0, 0), failure(1, 10)];
    let want = g.eval(&f, &p());
    let n = g.time.len();
    // A fixed permutation: stride 7 over n (n is not a multiple of 7).
    assert_ne!(n % 7, 0);
    let perm: Vec<usize> = (0..n).map(|i| (i * 7) % n).collect();
    let pick = |v: &[i64]| perm.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let machine: Vec<u32> = perm.iter().map(|&i| g.machine[i]).collect();
    let flags: Vec<bool> = perm.iter().map(|&i| g.flags[i]).collect();
    let got = evaluate_alarms(&machine, &pick(&g.time), &flags, &f, &p()).unwrap();
    assert_eq!(got, want);
}

#[test]
fn duplicate_timestamps_count_as_samples_without_monitored_time() {
    let machine = [0u32, 0, 0, 0];
    let time = [0, MIN, MIN, 2 * MIN];
    let m = evaluate_alarms(&machine, &time, &[false, true, false, false], &[], &p()).unwrap();
    assert!((m.monitored_machine_days - 2.0 / 1440.0).abs() < 1e-15);
    assert_eq!(m.episodes, 1);
}

#[test]
fn smoothing_delays_and_suppresses_alarms() {
    let params = EventParams {
        smoothing: Some(Smoothing { k: 3, n: 5 }),
        ..p()
    };
    // A lone flag never reaches 3 of 5; the run from -20 alarms at its third sample.
    let g = Grid::new().add(0, -120, 0, &[-60..=-60, -20..=-15]);
    let m = g.eval(&[failure(0, 0)], &params);
    assert_eq!((m.episodes, m.false_alarms), (1, 0));
    assert_eq!(m.lead_time_minutes.median, 18.0);
}

#[test]
fn mlflow_metric_names() {
    let m = Grid::new()
        .add(0, -120, 0, &[-10..=-10])
        .eval(&[failure(0, 0)], &p());
    let names: Vec<String> = m
        .mlflow_metrics("test_")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "test_failures_caught",
            "test_failures_total",
            "test_lead_time_median_minutes",
            "test_false_alarms_per_machine_day",
            "test_event_precision"
        ]
    );
}

#[test]
fn results_round_trip_through_json_with_nan() {
    let m = Grid::new()
        .add(0, -120, 0, &[])
        .eval(&[failure(0, 0)], &p());
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains(r#""median":"NaN""#), "{json}");
    let back: EventMetrics = serde_json::from_str(&json).unwrap();
    // NaN != NaN, so compare the serialised forms.
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let bad = r#"{"edges":[0.0,5.0],"counts":[1,2]}"#;
    assert!(serde_json::from_str::<Histogram>(bad).is_err());
    let bad = r#"{"edges":[5.0,0.0],"counts":[1]}"#;
    assert!(serde_json::from_str::<Histogram>(bad).is_err());
    let good = r#"{"edges":[0.0,5.0],"counts":[1]}"#;
    assert_eq!(
        serde_json::from_str::<Histogram>(good).unwrap().counts,
        vec![1]
    );
    let params_json = serde_json::to_string(&p()).unwrap();
    assert_eq!(
        serde_json::from_str::<EventParams>(&params_json).unwrap(),
        p()
    );
}

#[derive(serde::Deserialize)]
struct GoldenStats {
    minutes: Vec<f64>,
    p10: f64,
    median: f64,
    p90: f64,
    mean: f64,
    edges: Vec<f64>,
    counts: Vec<u64>,
}

#[test]
fn lead_time_statistics_match_numpy() {
    let cases: Vec<GoldenStats> =
        serde_json::from_str(include_str!("golden/events_stats.json")).unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let s = LeadTimeStats::of(&c.minutes);
        for (got, want) in [
            (s.p10, c.p10),
            (s.median, c.median),
            (s.p90, c.p90),
            (s.mean, c.mean),
        ] {
            assert!((got - want).abs() <= 1e-12, "{got} vs {want}");
        }
        let h = Histogram::new(&c.minutes, 6, 30.0).unwrap();
        assert_eq!(h.edges, c.edges);
        assert_eq!(h.counts, c.counts);
    }
}

// ---- bad input ----

#[test]
fn bad_input_is_a_typed_error() {
    let f = [failure(0, 0)];
    let e = evaluate_alarms(&[0, 0], &[0], &[true], &f, &p()).unwrap_err();
    assert!(matches!(e, MetricsError::LengthMismatch { .. }), "{e}");
    let e = evaluate_alarms(&[0], &[0], &[true, false], &f, &p()).unwrap_err();
    assert!(matches!(e, MetricsError::LengthMismatch { .. }), "{e}");
    let e = evaluate_alarms(&[], &[], &[], &f, &p()).unwrap_err();
    assert!(matches!(e, MetricsError::EmptyInput { .. }), "{e}");
    let e = evaluate_scores(&[0, 0], &[0, 1], &[0.5, f64::NAN], 0.5, &f, &p()).unwrap_err();
    assert!(matches!(e, MetricsError::NonFinite { index: 1, .. }), "{e}");
    let e = evaluate_scores(&[0], &[0], &[0.5], f64::NAN, &f, &p()).unwrap_err();
    assert!(
        matches!(
            e,
            MetricsError::InvalidParameter {
                name: "threshold",
                ..
            }
        ),
        "{e}"
    );
    let e = choose_alarm_threshold(&[0], &[0], &[f64::INFINITY], &f, &p(), AlarmPolicy::F1)
        .unwrap_err();
    assert!(matches!(e, MetricsError::NonFinite { .. }), "{e}");
}

#[test]
fn bad_parameters_are_typed_errors() {
    let bad = [
        (
            "horizon",
            EventParams {
                horizon: Duration::ZERO,
                ..p()
            },
        ),
        (
            "max_monitoring_gap",
            EventParams {
                max_monitoring_gap: Duration::ZERO,
                ..p()
            },
        ),
        (
            "horizon",
            EventParams {
                horizon: Duration::MAX,
                ..p()
            },
        ),
        (
            "smoothing",
            EventParams {
                smoothing: Some(Smoothing { k: 4, n: 3 }),
                ..p()
            },
        ),
        (
            "histogram_bins",
            EventParams {
                histogram_bins: 0,
                ..p()
            },
        ),
        (
            "histogram_bins",
            EventParams {
                histogram_bins: usize::MAX,
                ..p()
            },
        ),
        (
            "max_candidates",
            EventParams {
                max_candidates: 1,
                ..p()
            },
        ),
    ];
    for (field, params) in bad {
        let e = params.validate().unwrap_err();
        assert!(
            matches!(&e, MetricsError::InvalidParameter { name, .. } if *name == field),
            "{e}"
        );
        assert!(evaluate_alarms(&[0], &[0], &[true], &[], &params).is_err());
    }
    assert!(p().validate().is_ok());
    // A zero merge gap is allowed: only equal timestamps merge.
    assert!(
        EventParams {
            merge_gap: Duration::ZERO,
            ..p()
        }
        .validate()
        .is_ok()
    );
}

#[test]
fn alarm_policies_parse_print_and_reject() {
    for s in [
        "f1",
        "false-alarm-budget=0.5",
        "recall=0.8",
        "recall=1",
        "false-alarm-budget=0",
    ] {
        let policy: AlarmPolicy = s.parse().unwrap();
        assert_eq!(policy.to_string().parse::<AlarmPolicy>().unwrap(), policy);
    }
    assert_eq!(
        "false-alarm-budget=0.5".parse::<AlarmPolicy>().unwrap(),
        AlarmPolicy::FalseAlarmBudget(0.5)
    );
    assert_eq!(AlarmPolicy::Recall(0.8).to_string(), "recall=0.8");
    for s in [
        "",
        "f2",
        "f1=3",
        "recall",
        "recall=",
        "recall=high",
        "recall=1.5",
        "recall=NaN",
        "false-alarm-budget=-0.1",
        "false-alarm-budget=inf",
    ] {
        let e = s.parse::<AlarmPolicy>().unwrap_err();
        assert!(
            matches!(e, MetricsError::InvalidAlarmPolicy { .. }),
            "{s}: {e}"
        );
    }
    assert!(AlarmPolicy::FalseAlarmBudget(-1.0).validate().is_err());
    let json = serde_json::to_string(&AlarmPolicy::Recall(0.8)).unwrap();
    assert_eq!(json, r#""recall=0.8""#);
    assert!(serde_json::from_str::<AlarmPolicy>(r#""recall=2""#).is_err());
}

#[test]
fn a_recall_target_without_observed_failures_is_an_error() {
    let g = Grid::new().add(0, 0, 60, &[]);
    let score = vec![0.5; g.time.len()];
    let e = choose_alarm_threshold(
        &g.machine,
        &g.time,
        &score,
        &[failure(3, 10)],
        &p(),
        AlarmPolicy::Recall(0.5),
    )
    .unwrap_err();
    assert_eq!(e, MetricsError::NoObservedFailures { unobserved: 1 });
}

#[test]
fn the_f1_policy_without_positive_labels_is_an_error() {
    let g = Grid::new().add(0, 0, 60, &[]);
    let score = vec![0.5; g.time.len()];
    let e = choose_alarm_threshold(&g.machine, &g.time, &score, &[], &p(), AlarmPolicy::F1)
        .unwrap_err();
    assert!(matches!(e, MetricsError::SingleClass { .. }), "{e}");
}

#[test]
fn a_huge_smoothing_window_is_fine() {
    let s = Smoothing {
        k: 1,
        n: usize::MAX,
    };
    let mut state = SmoothingState::new(s).unwrap();
    assert!(!state.push(false));
    assert!(state.push(true));
    assert_eq!(
        smooth_flags(&[0, 0], &[false, true], s).unwrap(),
        vec![false, true]
    );
}

#[test]
fn smoothing_parses_as_k_slash_n_and_round_trips() {
    let s: Smoothing = " 3/5 ".parse().unwrap();
    assert_eq!(s, Smoothing { k: 3, n: 5 });
    assert_eq!(s.to_string().parse::<Smoothing>().unwrap(), s);
    for bad in ["", "3", "3/", "/5", "a/5", "0/5", "6/5", "-1/5", "3/5/7"] {
        let e = bad.parse::<Smoothing>().unwrap_err();
        assert!(
            matches!(
                e,
                MetricsError::InvalidParameter {
                    name: "smoothing",
                    ..
                }
            ),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(AlarmPolicy::default(), AlarmPolicy::F1);
}

// ---- policies on a hand-made validation split ----

/// Machine 0 fails at 0 with rising scores before it; machine 1 never fails
/// and has one spike of 0.7 and one of 0.5.
fn validation() -> (Vec<u32>, Vec<i64>, Vec<f64>, Vec<Failure>) {
    let g = Grid::new().add(0, -1440, 0, &[]).add(1, -1440, 0, &[]);
    let score: Vec<f64> = g
        .machine
        .iter()
        .zip(&g.time)
        .map(|(&m, &t)| {
            let min = (t - F) / MIN;
            match (m, min) {
                (0, -20..=-1) => 0.8,
                (0, -30..=-21) => 0.6,
                (1, -300) => 0.7,
                (1, -600) => 0.5,
                _ => 0.1,
            }
        })
        .collect();
    (g.machine, g.time, score, vec![failure(0, 0)])
}

#[test]
fn policies_choose_the_documented_thresholds() {
    let (machine, time, score, f) = validation();
    let choose =
        |policy| choose_alarm_threshold(&machine, &time, &score, &f, &p(), policy).unwrap();
    // Monitored: 2 machines × 1440 minutes = 2 machine-days.
    let budget = choose(AlarmPolicy::FalseAlarmBudget(0.5));
    assert_eq!(budget.threshold, 0.6);
    assert_eq!(
        (budget.metrics.failures_caught, budget.metrics.false_alarms),
        (1, 1)
    );
    assert_eq!(budget.metrics.lead_time_minutes.median, 30.0);
    let none = choose(AlarmPolicy::FalseAlarmBudget(0.0));
    assert_eq!(none.threshold, 0.8);
    assert_eq!(none.metrics.false_alarms, 0);
    let recall = choose(AlarmPolicy::Recall(1.0));
    assert_eq!(recall.threshold, 0.8);
    assert!(recall.constraint_met);
    assert_eq!(recall.candidates, 6);
    let f1 = choose(AlarmPolicy::F1);
    assert_eq!(f1.metrics.failures_caught, 1);
    assert_eq!(f1.candidates, 1);
}

// ---- invariants ----

#[derive(Debug, Clone)]
struct Case {
    machine: Vec<u32>,
    time: Vec<i64>,
    score: Vec<f64>,
    failures: Vec<Failure>,
}

/// Up to 3 machines, samples 10 s to 15 min apart (some gaps beyond the
/// monitoring limit), coarse scores, and up to 4 failures near the data.
fn case() -> impl Strategy<Value = Case> {
    let machine_rows = prop::collection::vec((1i64..90, 0u8..10), 1..150);
    (
        prop::collection::vec(machine_rows, 1..4),
        prop::collection::vec((0u32..4, 0i64..3000, prop::option::of(0u8..2)), 0..5),
    )
        .prop_map(|(machines, failures)| {
            let mut c = Case {
                machine: vec![],
                time: vec![],
                score: vec![],
                failures: vec![],
            };
            for (id, rows) in machines.iter().enumerate() {
                let mut t = 0i64;
                for &(step, s) in rows {
                    t += step * 10_000_000;
                    c.machine.push(id as u32);
                    c.time.push(t);
                    c.score.push(f64::from(s) / 10.0);
                }
            }
            c.failures = failures
                .into_iter()
                .map(|(m, minutes, mode)| Failure {
                    machine: m,
                    time: minutes * MIN / 2,
                    mode: mode.map(|k| format!("mode{k}")),
                })
                .collect();
            c
        })
}

/// Equality with NaN equal to itself (NaN ratios are common here).
fn json(m: &EventMetrics) -> String {
    serde_json::to_string(m).unwrap()
}

fn eval(c: &Case, th: f64) -> EventMetrics {
    evaluate_scores(&c.machine, &c.time, &c.score, th, &c.failures, &p()).unwrap()
}

/// Distinct scores and +∞: every candidate when there are few of them.
fn all_thresholds(c: &Case) -> Vec<f64> {
    let mut v = c.score.clone();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.push(f64::INFINITY);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shifting_all_times_changes_nothing(c in case(), shift in -1_000_000i64..1_000_000) {
        let mut moved = c.clone();
        let d = shift * 1_000_003; // not a multiple of a minute
        moved.time.iter_mut().for_each(|t| *t += d);
        moved.failures.iter_mut().for_each(|f| f.time += d);
        prop_assert_eq!(json(&eval(&moved, 0.5)), json(&eval(&c, 0.5)));
    }

    #[test]
    fn a_far_away_alarm_adds_exactly_one_false_alarm(c in case(), id in 0u32..3) {
        let before = eval(&c, 0.5);
        let mut more = c.clone();
        let last = c.time.iter().chain(c.failures.iter().map(|f| &f.time)).max().copied().unwrap();
        more.machine.push(id);
        more.time.push(last + 1000 * MIN);
        more.score.push(1.0);
        let after = eval(&more, 0.5);
        prop_assert_eq!(after.false_alarms, before.false_alarms + 1);
        prop_assert_eq!(after.episodes, before.episodes + 1);
        prop_assert_eq!(after.true_alarms, before.true_alarms);
        prop_assert_eq!(after.failures_caught, before.failures_caught);
        prop_assert_eq!(after.monitored_machine_days, before.monitored_machine_days);
    }

    #[test]
    fn streaming_smoothing_equals_batch(
        rows in prop::collection::vec((0u32..4, any::<bool>()), 0..300),
        n in 1usize..8,
        k_share in 0.0f64..1.0,
    ) {
        let k = 1 + (k_share * n as f64) as usize % n;
        let s = Smoothing { k, n };
        let machine: Vec<u32> = rows.iter().map(|r| r.0).collect();
        let flags: Vec<bool> = rows.iter().map(|r| r.1).collect();
        let batch = smooth_flags(&machine, &flags, s).unwrap();
        let mut states: Vec<SmoothingState> = (0..4).map(|_| SmoothingState::new(s).unwrap()).collect();
        let stream: Vec<bool> = rows.iter().map(|&(m, f)| states[m as usize].push(f)).collect();
        prop_assert_eq!(batch, stream);
    }

    #[test]
    fn the_budget_policy_meets_its_budget_and_is_the_lowest_best(c in case(), budget in 0.0f64..40.0) {
        let policy = AlarmPolicy::FalseAlarmBudget(budget);
        let got = choose_alarm_threshold(&c.machine, &c.time, &c.score, &c.failures, &p(), policy).unwrap();
        prop_assert!(got.metrics.false_alarms_per_machine_day <= budget);
        prop_assert_eq!(json(&got.metrics), json(&eval(&c, got.threshold)));
        // Brute force over every distinct score (fewer than max_candidates here).
        let ok: Vec<(f64, usize)> = all_thresholds(&c)
            .into_iter()
            .map(|th| (th, eval(&c, th)))
            .filter(|(_, m)| m.false_alarms_per_machine_day <= budget)
            .map(|(th, m)| (th, m.failures_caught))
            .collect();
        let best = ok.iter().map(|x| x.1).max().unwrap();
        let want = ok.iter().find(|x| x.1 == best).unwrap().0;
        prop_assert_eq!(got.threshold, want);
    }

    #[test]
    fn the_recall_policy_meets_its_target_at_the_highest_threshold(c in case(), target in 0.0f64..=1.0) {
        let policy = AlarmPolicy::Recall(target);
        let Ok(got) = choose_alarm_threshold(&c.machine, &c.time, &c.score, &c.failures, &p(), policy) else {
            prop_assert_eq!(eval(&c, 0.5).failures_total, 0);
            return Ok(());
        };
        prop_assert_eq!(json(&got.metrics), json(&eval(&c, got.threshold)));
        let meeting: Vec<f64> = all_thresholds(&c)
            .into_iter()
            .filter(|&th| eval(&c, th).recall >= target)
            .collect();
        prop_assert_eq!(got.constraint_met, !meeting.is_empty());
        if got.constraint_met {
            prop_assert!(got.metrics.recall >= target);
            prop_assert_eq!(got.threshold, *meeting.last().unwrap());
        }
    }

    #[test]
    fn arbitrary_times_never_panic(
        rows in prop::collection::vec((0u32..3, any::<i64>(), any::<bool>()), 1..50),
        failures in prop::collection::vec((0u32..4, any::<i64>()), 0..5),
        horizon in 1u64..u64::MAX,
    ) {
        let machine: Vec<u32> = rows.iter().map(|r| r.0).collect();
        let time: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let flags: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let failures: Vec<Failure> = failures
            .into_iter()
            .map(|(machine, time)| Failure { machine, time, mode: None })
            .collect();
        let params = EventParams { horizon: Duration::from_micros(horizon), ..p() };
        let _ = evaluate_alarms(&machine, &time, &flags, &failures, &params);
        let score: Vec<f64> = flags.iter().map(|&f| f64::from(u8::from(f))).collect();
        for policy in [AlarmPolicy::F1, AlarmPolicy::FalseAlarmBudget(1.0), AlarmPolicy::Recall(0.5)] {
            let _ = choose_alarm_threshold(&machine, &time, &score, &failures, &params, policy);
        }
    }
}
