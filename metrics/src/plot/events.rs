//! Alarm timelines (one panel per machine) and the lead-time histogram.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    FONT, ImageFormat, axis_style, check_size, encode_png, ensure_font, format_value, label_style,
    plot_err, title_style,
};
use crate::error::{MetricsError, Result};
use crate::events::{EventMetrics, EventParams, Failure, Histogram, alarm_episodes, check_scores};
use std::path::Path;

const SCORE: RGBColor = RGBColor(31, 119, 180);
const THRESHOLD: RGBColor = RGBColor(214, 39, 40);
const ALARM: RGBColor = RGBColor(255, 190, 120);
const HORIZON: RGBColor = RGBColor(225, 225, 225);
const CAUGHT: RGBColor = RGBColor(44, 160, 44);
const MISSED: RGBColor = RGBColor(200, 0, 0);
/// Points kept per machine: the lowest and highest score of each of this
/// many time buckets, so a million samples draw as fast as a thousand and
/// no spike disappears.
const BUCKETS: i64 = 1500;

/// One machine's panel.
#[derive(Debug, Clone)]
struct Panel {
    machine: u32,
    name: String,
    /// Runs of `(time, score)` between telemetry gaps, decimated.
    runs: Vec<Vec<(i64, f64)>>,
    /// Alarm episodes, `(start, end)`.
    episodes: Vec<(i64, i64)>,
    /// Failures and whether an episode started in the horizon before them.
    failures: Vec<(i64, bool)>,
}

/// The failure probability of each machine over time, one panel per
/// machine sharing the time axis: the threshold as a dashed line, alarm
/// episodes shaded, failures as vertical lines (a green marker when an alarm
/// started within the horizon before, red when missed) and the horizon
/// before each failure in grey. Readable for up to about 20 machines; choose
/// them with [`machines`](Self::machines).
#[derive(Debug, Clone)]
pub struct AlarmTimelinePlot {
    panels: Vec<Panel>,
    threshold: f64,
    horizon: i64,
    title: String,
    size: (u32, u32),
}

impl AlarmTimelinePlot {
    /// The timeline of scores alarming at `score >= threshold`, with
    /// episodes formed as in [`evaluate_scores`](crate::evaluate_scores)
    /// (same inputs, same checks; a threshold of +∞, which raises no alarm,
    /// draws no threshold line). Machines are named `machine <id>`.
    pub fn new(
        machine: &[u32],
        time: &[i64],
        score: &[f64],
        threshold: f64,
        failures: &[Failure],
        params: &EventParams,
    ) -> Result<Self> {
        check_scores(time, score, threshold)?;
        let flags: Vec<bool> = score.iter().map(|&s| s >= threshold).collect();
        let episodes = alarm_episodes(machine, time, &flags, params)?;
        let gap = i64::try_from(params.max_monitoring_gap.as_micros()).unwrap_or(i64::MAX);
        let horizon = i64::try_from(params.horizon.as_micros()).unwrap_or(i64::MAX);
        let mut order: Vec<usize> = (0..time.len()).collect();
        order.sort_by_key(|&i| (machine[i], time[i]));
        let (t0, t1) = (
            time.iter().copied().min().unwrap_or(0),
            time.iter().copied().max().unwrap_or(0),
        );
        let bucket = ((i128::from(t1) - i128::from(t0)) / i128::from(BUCKETS)).max(1);
        let mut panels: Vec<Panel> = Vec::new();
        for &i in &order {
            if panels.last().is_none_or(|p| p.machine != machine[i]) {
                panels.push(Panel {
                    machine: machine[i],
                    name: format!("machine {}", machine[i]),
                    runs: Vec::new(),
                    episodes: Vec::new(),
                    failures: Vec::new(),
                });
            }
            if let Some(p) = panels.last_mut() {
                push_point(&mut p.runs, (time[i], score[i]), gap, t0, bucket);
            }
        }
        for p in &mut panels {
            p.episodes = episodes
                .iter()
                .filter(|e| e.machine == p.machine)
                .map(|e| (e.start, e.end))
                .collect();
            p.failures = failures
                .iter()
                .filter(|f| f.machine == p.machine)
                .map(|f| {
                    let from = f.time.saturating_sub(horizon);
                    let caught = p.episodes.iter().any(|e| e.0 >= from && e.0 < f.time);
                    (f.time, caught)
                })
                .collect();
        }
        let size = default_size(panels.len());
        Ok(Self {
            panels,
            threshold,
            horizon,
            title: "Failure probability and alarms".into(),
            size,
        })
    }

    /// Shows only these machines, in this order (unknown ids are skipped),
    /// and resizes to fit them: call [`size`](Self::size) after this.
    #[must_use]
    pub fn machines(mut self, ids: &[u32]) -> Self {
        let mut kept = Vec::new();
        for id in ids {
            kept.extend(self.panels.iter().find(|p| p.machine == *id).cloned());
        }
        self.panels = kept;
        self.size = default_size(self.panels.len());
        self
    }

    /// Names machines by id: `names[id]` (e.g. a feature matrix's
    /// `machine_ids`); ids beyond the list keep `machine <id>`.
    #[must_use]
    pub fn machine_names<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        for p in &mut self.panels {
            if let Some(n) = names.get(p.machine as usize) {
                p.name = n.as_ref().to_owned();
            }
        }
        self
    }

    /// The machines shown, in panel order.
    pub fn shown_machines(&self) -> Vec<u32> {
        self.panels.iter().map(|p| p.machine).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        if self.panels.is_empty() {
            return Err(MetricsError::EmptyInput { name: "machines" });
        }
        root.fill(&WHITE).map_err(plot_err)?;
        let (header, body) = root.split_vertically(78);
        self.draw_header(&header)?;
        let axis = TimeAxis::of(&self.panels);
        let (lo, hi) = self.score_range();
        let (panels, footer) = body.split_vertically(body.dim_in_pixel().1.saturating_sub(50));
        let areas = panels.split_evenly((self.panels.len(), 1));
        for (p, area) in self.panels.iter().zip(&areas) {
            self.draw_panel(p, area, &axis, (lo, hi))?;
        }
        let style = axis_style().pos(Pos::new(HPos::Center, VPos::Center));
        let (w, _) = footer.dim_in_pixel();
        footer
            .draw(&Text::new(axis.desc.clone(), (w as i32 / 2, 30), style))
            .map_err(plot_err)
    }

    /// Scores share one y range: `[0, 1]` for probabilities, else the data's.
    fn score_range(&self) -> (f64, f64) {
        let pts = self.panels.iter().flat_map(|p| p.runs.iter().flatten());
        let (lo, hi) = pts.fold((0.0f64, 1.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
        // +∞ (a policy that raises no alarm) draws no threshold line.
        let (lo, hi) = match self.threshold {
            t if t.is_finite() => (lo.min(t), hi.max(t)),
            _ => (lo, hi),
        };
        let pad = 0.06 * (hi - lo).max(1e-9);
        (lo - pad, hi + pad)
    }

    fn draw_header<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let (w, _) = area.dim_in_pixel();
        let centre = Pos::new(HPos::Center, VPos::Top);
        area.draw(&Text::new(
            self.title.clone(),
            (w as i32 / 2, 10),
            title_style().pos(centre),
        ))
        .map_err(plot_err)?;
        let minutes = self.horizon as f64 / 60e6;
        let entries: [(&str, RGBColor, u8); 6] = [
            ("score", SCORE, 0),
            ("threshold", THRESHOLD, 1),
            ("alarm episode", ALARM, 2),
            ("", HORIZON, 2),
            ("failure caught", CAUGHT, 3),
            ("failure missed", MISSED, 3),
        ];
        let horizon_label = format!("{} min before failure", format_value(minutes));
        let mut x = 60i32;
        let y = 55i32;
        for (label, c, kind) in entries {
            let label = if label.is_empty() {
                horizon_label.as_str()
            } else {
                label
            };
            match kind {
                0 => area.draw(&PathElement::new([(x, y), (x + 26, y)], c.stroke_width(2))),
                1 => area.draw(&PathElement::new([(x, y), (x + 26, y)], c.stroke_width(2))),
                2 => area.draw(&Rectangle::new([(x, y - 7), (x + 26, y + 7)], c.filled())),
                _ => area.draw(&TriangleMarker::new((x + 13, y), 7, c.filled())),
            }
            .map_err(plot_err)?;
            let style = label_style().pos(Pos::new(HPos::Left, VPos::Center));
            area.draw(&Text::new(label.to_owned(), (x + 32, y), style))
                .map_err(plot_err)?;
            x += 32 + super::text_width(label, 15) as i32 + 26;
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        p: &Panel,
        area: &DrawingArea<DB, Shift>,
        axis: &TimeAxis,
        (lo, hi): (f64, f64),
    ) -> Result<()> {
        let mut chart = ChartBuilder::on(area)
            .margin_left(12)
            .margin_right(24)
            .margin_top(4)
            .margin_bottom(2)
            .x_label_area_size(24)
            .y_label_area_size(88)
            .build_cartesian_2d(axis.x0..axis.x1, lo..hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_labels(12)
            .y_labels(3)
            .x_label_formatter(&|v| format_value(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .y_desc(p.name.as_str())
            .label_style((FONT, 13).into_font().color(&BLACK))
            .axis_desc_style((FONT, 15).into_font().color(&BLACK))
            .light_line_style(RGBColor(245, 245, 245))
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(plot_err)?;
        let band = |a: f64, b: f64, c: RGBColor| Rectangle::new([(a, lo), (b, hi)], c.filled());
        chart
            .draw_series(
                p.failures.iter().map(|&(f, _)| {
                    band(axis.x(f.saturating_sub(self.horizon)), axis.x(f), HORIZON)
                }),
            )
            .map_err(plot_err)?;
        // A one-sample episode still gets a visible sliver (about 3 px).
        let min_w = (axis.x1 - axis.x0) / 400.0;
        chart
            .draw_series(p.episodes.iter().map(|&(s, e)| {
                let (a, b) = (axis.x(s), axis.x(e));
                band(a, b.max(a + min_w), ALARM)
            }))
            .map_err(plot_err)?;
        let th = if self.threshold.is_finite() {
            vec![(axis.x0, self.threshold), (axis.x1, self.threshold)]
        } else {
            Vec::new()
        };
        chart
            .draw_series(DashedLineSeries::new(th, 8, 5, THRESHOLD.stroke_width(2)))
            .map_err(plot_err)?;
        for run in &p.runs {
            let line = run.iter().map(|&(t, s)| (axis.x(t), s));
            chart
                .draw_series(LineSeries::new(line, SCORE.stroke_width(1)))
                .map_err(plot_err)?;
        }
        for &(f, caught) in &p.failures {
            let x = axis.x(f);
            let c = if caught { CAUGHT } else { MISSED };
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(x, lo), (x, hi)],
                    BLACK.stroke_width(2),
                )))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (x, hi - 0.08 * (hi - lo)),
                    7,
                    c.filled(),
                )))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}
outputs!(AlarmTimelinePlot);

/// 1100 px wide, 135 px per machine plus room for the title, legend and axis.
fn default_size(panels: usize) -> (u32, u32) {
    let h = 78 + 50 + 135 * panels.max(1);
    (1100, u32::try_from(h).unwrap_or(u32::MAX).max(300))
}

/// Appends a sample to the last run, starting a new run after a telemetry
/// gap; within a run keeps the first, lowest, highest and last of each bucket.
fn push_point(runs: &mut Vec<Vec<(i64, f64)>>, pt: (i64, f64), gap: i64, t0: i64, bucket: i128) {
    let new_run = runs
        .last()
        .and_then(|r| r.last())
        .is_none_or(|last| i128::from(pt.0) - i128::from(last.0) > i128::from(gap));
    if new_run {
        runs.push(Vec::new());
    }
    let Some(run) = runs.last_mut() else {
        return;
    };
    let b = |t: i64| (i128::from(t) - i128::from(t0)) / bucket;
    // The bucket's points sit after `start`: [first, min, max, last] at most.
    let start = run
        .iter()
        .rposition(|q| b(q.0) != b(pt.0))
        .map_or(0, |i| i + 1);
    let tail = &mut run[start..];
    if tail.len() < 4 {
        run.push(pt);
        return;
    }
    // Of the middle two and the old last, keep the lowest and the highest
    // (in time order); `pt` becomes the last.
    let mut mid = [tail[1], tail[2], tail[3]];
    mid.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (lo, hi) = (mid[0], mid[2]);
    let (a, b) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
    tail[1] = a;
    tail[2] = b;
    tail[3] = pt;
}

/// Times as hours (or days, beyond 3 days) since the first sample shown.
#[derive(Debug)]
struct TimeAxis {
    t0: i64,
    unit: f64,
    x0: f64,
    x1: f64,
    desc: String,
}

impl TimeAxis {
    fn of(panels: &[Panel]) -> Self {
        let times = panels.iter().flat_map(|p| {
            let samples = p.runs.iter().flatten().map(|q| q.0);
            samples.chain(p.failures.iter().map(|f| f.0))
        });
        let (t0, t1) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let span = (i128::from(t1) - i128::from(t0)).max(1) as f64;
        let (unit, name) = if span > 3.0 * 86_400e6 {
            (86_400e6, "days")
        } else {
            (3_600e6, "hours")
        };
        let x1 = (span / unit).max(1e-6);
        Self {
            t0,
            unit,
            x0: -0.01 * x1,
            x1: 1.01 * x1,
            desc: format!("{name} since {} UTC", utc_minute(t0)),
        }
    }

    fn x(&self, t: i64) -> f64 {
        (i128::from(t) - i128::from(self.t0)) as f64 / self.unit
    }
}

/// `YYYY-MM-DD HH:MM` of µs since the epoch (proleptic Gregorian).
fn utc_minute(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

// ------------------------------------------------------------ lead times

/// Bars of the lead-time histogram (minutes before failure), the count on
/// each bar, the median as a dashed line, and failures caught of total in
/// the title.
#[derive(Debug, Clone)]
pub struct LeadTimeHistogramPlot {
    histogram: Histogram,
    median: f64,
    title: String,
    size: (u32, u32),
}

impl LeadTimeHistogramPlot {
    /// The lead-time histogram of `metrics`.
    pub fn new(metrics: &EventMetrics) -> Self {
        Self {
            histogram: metrics.lead_time_histogram.clone(),
            median: metrics.lead_time_minutes.median,
            title: format!(
                "Lead time: {} of {} failures caught",
                metrics.failures_caught, metrics.failures_total
            ),
            size: (800, 500),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let h = &self.histogram;
        let ok = h.edges.len() == h.counts.len() + 1
            && h.edges.iter().all(|e| e.is_finite())
            && h.edges.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(MetricsError::InvalidParameter {
                name: "histogram",
                reason: "needs one more edge than counts, finite and increasing".into(),
            });
        }
        let (x0, x1) = (h.edges[0], h.edges[h.edges.len() - 1]);
        let top = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_style())
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(h.edges.len().min(13))
            .x_label_formatter(&|v| format_value(*v))
            .y_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format_value(*v)
                } else {
                    String::new()
                }
            })
            .x_desc("lead time (minutes before failure)")
            .y_desc("failures caught")
            .label_style(label_style())
            .axis_desc_style(axis_style())
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(plot_err)?;
        for (w, &c) in h.edges.windows(2).zip(&h.counts) {
            let mut bar = Rectangle::new([(w[0], 0.0), (w[1], c as f64)], SCORE.filled());
            bar.set_margin(0, 0, 2, 2);
            chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
            let px = chart.backend_coord(&((w[0] + w[1]) / 2.0, c as f64));
            let style = label_style().pos(Pos::new(HPos::Center, VPos::Bottom));
            root.draw(&Text::new(format!("{c}"), (px.0, px.1 - 4), style))
                .map_err(plot_err)?;
        }
        if self.median.is_finite() {
            let m = self.median;
            chart
                .draw_series(DashedLineSeries::new(
                    [(m, 0.0), (m, top)],
                    8,
                    5,
                    THRESHOLD.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("median {} min", format_value(m)))
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], THRESHOLD.stroke_width(2))
                });
            super::legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}
outputs!(LeadTimeHistogramPlot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        // 2024-02-29 13:45 UTC is 1709214300 s (date -d @1709214300 -u).
        assert_eq!(utc_minute(1_709_214_300_000_000), "2024-02-29 13:45");
        assert_eq!(utc_minute(-60_000_000), "1969-12-31 23:59");
    }

    #[test]
    fn decimation_keeps_extremes_and_splits_at_gaps() {
        let mut runs = Vec::new();
        let pts = [
            (0, 0.5),
            (1, 0.9),
            (2, 0.1),
            (3, 0.4),
            (4, 0.6),
            (5, 0.2),
            (100, 0.3),
        ];
        for p in pts {
            push_point(&mut runs, p, 10, 0, 50);
        }
        assert_eq!(runs.len(), 2);
        let first = &runs[0];
        assert_eq!(first.len(), 4);
        assert_eq!(first[0], (0, 0.5));
        assert!(first.contains(&(1, 0.9)) && first.contains(&(2, 0.1)));
        assert_eq!(first[3], (5, 0.2));
        assert_eq!(runs[1], vec![(100, 0.3)]);
    }
}
