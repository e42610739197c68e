//! The SHAP summary ("beeswarm") plot: one row per feature, one dot per
//! explained sample at its SHAP value, coloured by the feature's value.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    FONT, ImageFormat, axis_style, check_size, encode_png, ensure_font, format_value, plot_err,
    text_width, title_style,
};
use crate::error::{MetricsError, Result};
use std::path::Path;

/// `shap`'s colour map ends: low feature values blue, high ones red.
const LOW: (f64, f64, f64) = (0.0, 138.0, 255.0);
const HIGH: (f64, f64, f64) = (255.0, 0.0, 82.0);
const MISSING: RGBColor = RGBColor(160, 160, 160);
/// Horizontal cells per row in which dots pile up (the "swarm").
const CELLS: usize = 120;
/// The most a pile reaches above or below its row's centre line, in rows.
const PILE_HALF_HEIGHT: f64 = 0.42;

/// One feature's row: its name, mean |SHAP| and dots `(shap, colour)`, the
/// colour the rank of the feature value in `[0, 1]` (`None`: missing value).
#[derive(Debug, Clone)]
struct BeeRow {
    name: String,
    mean_abs: f64,
    dots: Vec<(f64, Option<f64>)>,
}

/// The `top_k` features by mean |SHAP| (the largest at the top), each a row
/// of dots, one per explained sample, at its SHAP value; a dot is blue for a
/// low value of the feature and red for a high one (by rank within the
/// feature, so outliers do not wash the colours out), grey when missing —
/// the plot `shap.summary_plot` draws.
#[derive(Debug, Clone)]
pub struct ShapBeeswarmPlot {
    rows: Vec<BeeRow>,
    top_k: usize,
    title: String,
    size: (u32, u32),
    x_desc: String,
}

impl ShapBeeswarmPlot {
    /// Dots for `shap` and `values`, both row-major `samples × names.len()`
    /// (`shap[i * names.len() + j]`: sample `i`, feature `j`). Values may be
    /// NaN (missing); SHAP values must be finite.
    ///
    /// # Errors
    /// [`MetricsError::InvalidParameter`] for no feature, lengths that do not
    /// match, or a non-finite SHAP value.
    pub fn new<S: AsRef<str>>(names: &[S], shap: &[f64], values: &[f64]) -> Result<Self> {
        crate::validate::check_nonempty("names", names.len())?;
        crate::validate::check_same_len("shap", shap.len(), "values", values.len())?;
        crate::validate::check_nonempty("shap", shap.len())?;
        crate::validate::check_finite("shap", shap)?;
        let n = names.len();
        if !shap.len().is_multiple_of(n) {
            return Err(MetricsError::InvalidParameter {
                name: "shap",
                reason: format!(
                    "{} values are not a whole number of rows of {n} features",
                    shap.len()
                ),
            });
        }
        let rows = (0..n)
            .map(|j| bee_row(names[j].as_ref(), shap, values, j, n))
            .collect();
        Ok(Self {
            rows,
            top_k: 15,
            title: "SHAP values".into(),
            size: (900, 700),
            x_desc: "SHAP value (impact on the model output)".into(),
        })
    }

    /// How many features to show (default 15).
    #[must_use]
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k.max(1);
        self
    }

    /// The value axis description.
    #[must_use]
    pub fn x_desc(mut self, desc: impl Into<String>) -> Self {
        self.x_desc = desc.into();
        self
    }

    /// The shown features and their mean |SHAP|, the largest first.
    pub fn top(&self) -> Vec<(String, f64)> {
        self.top_rows()
            .iter()
            .map(|r| (r.name.clone(), r.mean_abs))
            .collect()
    }

    fn top_rows(&self) -> Vec<&BeeRow> {
        let mut sorted: Vec<&BeeRow> = self.rows.iter().collect();
        sorted.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs));
        sorted.truncate(self.top_k);
        sorted
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let top = self.top_rows();
        let k = top.len() as f64;
        root.fill(&WHITE).map_err(plot_err)?;
        let all = top.iter().flat_map(|r| r.dots.iter().map(|d| d.0));
        let (lo, hi) = all.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        let pad = if hi - lo > 0.0 { 0.05 * (hi - lo) } else { 1.0 };
        let (x0, x1) = (lo - pad, hi + pad);
        let name_w = top
            .iter()
            .map(|r| text_width(&r.name, 14))
            .max()
            .unwrap_or(0);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_style())
            .margin(20)
            .x_label_area_size(95)
            .y_label_area_size(name_w + 20)
            .build_cartesian_2d(x0..x1, 0.0..k)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v| format_value(*v))
            .x_desc(self.x_desc.as_str())
            .label_style((FONT, 14).into_font().color(&BLACK))
            .axis_desc_style(axis_style())
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (0.0, k)],
                RGBColor(120, 120, 120),
            ))
            .map_err(plot_err)?;
        for (rank, row) in top.iter().enumerate() {
            let centre = k - 1.0 - rank as f64 + 0.5;
            let heights = pile_offsets(&row.dots, x0, x1);
            let dots = row.dots.iter().zip(heights).map(|(&(x, c), dy)| {
                Circle::new((x, centre + dy), 2, dot_colour(c).mix(0.85).filled())
            });
            chart.draw_series(dots).map_err(plot_err)?;
            let axis = chart.backend_coord(&(x0, centre));
            let style = (FONT, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(row.name.clone(), (axis.0 - 8, axis.1), style))
                .map_err(plot_err)?;
        }
        self.draw_legend(root)
    }

    /// "Feature value: low … high" with the colour ramp, bottom right.
    fn draw_legend<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let (x, y) = (w - 260, h - 16);
        let text = |s: &str, x: i32| {
            let style = (FONT, 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(s.to_string(), (x, y), style))
                .map_err(plot_err)
        };
        text("feature value: low", x)?;
        for i in 0..60 {
            let c = dot_colour(Some(f64::from(i) / 59.0));
            root.draw(&Rectangle::new(
                [(x + 122 + i, y - 6), (x + 123 + i, y + 6)],
                c.filled(),
            ))
            .map_err(plot_err)?;
        }
        text("high", x + 188)
    }
}
outputs!(ShapBeeswarmPlot);

/// Feature `j`'s row: mean |SHAP| and each sample's dot, coloured by the
/// rank of its value among the feature's non-missing values.
fn bee_row(name: &str, shap: &[f64], values: &[f64], j: usize, n: usize) -> BeeRow {
    let samples = shap.len() / n;
    let column: Vec<f64> = (0..samples).map(|i| values[i * n + j]).collect();
    let mut sorted: Vec<f64> = column.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let span = sorted.len().saturating_sub(1).max(1) as f64;
    let colour = |v: f64| -> Option<f64> {
        (!v.is_nan()).then(|| {
            // Mid-rank of ties, so a constant feature is all one colour.
            let below = sorted.partition_point(|&s| s < v);
            let upto = sorted.partition_point(|&s| s <= v);
            (below + upto.saturating_sub(1)) as f64 / 2.0 / span
        })
    };
    let dots: Vec<(f64, Option<f64>)> = (0..samples)
        .map(|i| (shap[i * n + j], colour(column[i])))
        .collect();
    let mean_abs = dots.iter().map(|d| d.0.abs()).sum::<f64>() / samples as f64;
    BeeRow {
        name: name.to_string(),
        mean_abs,
        dots,
    }
}

/// Vertical offsets that pile dots of the same horizontal cell alternately
/// above and below the centre line, scaled so the tallest pile fits its row.
fn pile_offsets(dots: &[(f64, Option<f64>)], x0: f64, x1: f64) -> Vec<f64> {
    let width = (x1 - x0).max(f64::MIN_POSITIVE);
    let cell = |x: f64| (((x - x0) / width * CELLS as f64) as usize).min(CELLS - 1);
    let mut filled = vec![0usize; CELLS];
    let levels: Vec<usize> = dots
        .iter()
        .map(|d| {
            let c = cell(d.0);
            filled[c] += 1;
            filled[c] - 1
        })
        .collect();
    let tallest = filled.iter().copied().max().unwrap_or(1).max(1);
    let step = (PILE_HALF_HEIGHT / (tallest as f64 / 2.0).max(1.0)).min(0.08);
    levels
        .into_iter()
        .map(|l| {
            let side = if l % 2 == 0 { 1.0 } else { -1.0 };
            side * l.div_ceil(2) as f64 * step
        })
        .collect()
}

/// Blue to red by `t` in `[0, 1]`; grey for a missing value.
fn dot_colour(t: Option<f64>) -> RGBColor {
    match t {
        None => MISSING,
        Some(t) => {
            let mix = |a: f64, b: f64| (a + (b - a) * t.clamp(0.0, 1.0)).round() as u8;
            RGBColor(mix(LOW.0, HIGH.0), mix(LOW.1, HIGH.1), mix(LOW.2, HIGH.2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_ranked_by_mean_absolute_shap() {
        let names = ["a", "b", "c"];
        // Two samples: |a| mean 1.5, |b| mean 0.25, |c| mean 3.
        let shap = [1.0, -0.5, 3.0, -2.0, 0.0, -3.0];
        let values = [0.0, 1.0, f64::NAN, 1.0, 2.0, 5.0];
        let plot = ShapBeeswarmPlot::new(&names, &shap, &values)
            .unwrap()
            .top_k(2);
        let top = plot.top();
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].0.as_str(), top[0].1), ("c", 3.0));
        assert_eq!((top[1].0.as_str(), top[1].1), ("a", 1.5));
        let png = plot.to_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn colours_follow_the_rank_of_the_value_and_missing_is_grey() {
        let row = bee_row(
            "x",
            &[0.1, 0.2, 0.3, 0.4],
            &[10.0, -5.0, f64::NAN, 10.0],
            0,
            1,
        );
        let colours: Vec<Option<f64>> = row.dots.iter().map(|d| d.1).collect();
        // Sorted non-missing: [-5, 10, 10]; 10 has mid-rank 1.5 of span 2.
        assert_eq!(colours, vec![Some(0.75), Some(0.0), None, Some(0.75)]);
        assert_eq!(dot_colour(None), MISSING);
        assert_eq!(dot_colour(Some(0.0)), RGBColor(0, 138, 255));
        assert_eq!(dot_colour(Some(1.0)), RGBColor(255, 0, 82));
    }

    #[test]
    fn piles_stay_inside_their_row() {
        let dots: Vec<(f64, Option<f64>)> = (0..5000).map(|i| (f64::from(i % 3), None)).collect();
        let offsets = pile_offsets(&dots, 0.0, 2.0);
        assert!(offsets.iter().all(|o| o.abs() <= PILE_HALF_HEIGHT + 1e-12));
        // Dots of one cell spread out instead of overlapping.
        assert!(offsets.iter().any(|o| *o > 0.3) && offsets.iter().any(|o| *o < -0.3));
    }

    #[test]
    fn bad_shapes_and_values_are_errors() {
        let names = ["a", "b"];
        assert!(ShapBeeswarmPlot::new(&names, &[1.0, 2.0, 3.0], &[0.0; 3]).is_err());
        assert!(ShapBeeswarmPlot::new(&names, &[1.0, 2.0], &[0.0]).is_err());
        assert!(ShapBeeswarmPlot::new(&names, &[f64::NAN, 2.0], &[0.0; 2]).is_err());
        assert!(ShapBeeswarmPlot::new::<&str>(&[], &[], &[]).is_err());
    }
}
