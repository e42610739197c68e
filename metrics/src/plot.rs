//! Plots (cargo feature `plot`): confusion-matrix heatmap, ROC curve,
//! precision–recall curve, feature-importance bars, a line chart for a
//! metric over time or over trials, per-machine alarm timelines, the
//! lead-time histogram and the SHAP summary beeswarm.
//!
//! Each plot is a plain struct: build it, then call `save(path)` (the format
//! follows the extension, `.png` or `.svg`), `to_png()` for PNG bytes, or
//! `to_svg()` for an SVG document. Text is drawn with an embedded DejaVu Sans
//! font (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`), so
//! PNGs render the same on machines without any system fonts.
//!
//! ```
//! use vigil_metrics::plot::{LineChart, Series};
//!
//! let trial_values = [0.71, 0.74, 0.69, 0.78, 0.77, 0.81];
//! let chart = LineChart::new("Optimisation history", "trial", "F1")
//!     .series(Series::markers("value", Series::index_x(trial_values.len()), trial_values.to_vec()))
//!     .series(Series::step("best so far", Series::index_x(trial_values.len()),
//!         Series::best_so_far(&trial_values, true)));
//! let png = chart.to_png()?;
//! assert_eq!(&png[1..4], b"PNG");
//! # Ok::<(), vigil_metrics::MetricsError>(())
//! ```

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::confusion::ConfusionMatrix;
use crate::error::{MetricsError, Result};
use crate::labels::Label;
use crate::ranking::{PrCurve, RocCurve, ThresholdChoice};

/// The embedded font, registered with plotters as `"sans-serif"`.
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FONT: &str = "sans-serif";

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(MetricsError::Plot(
            "the embedded DejaVu Sans font was rejected".into(),
        ))
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> MetricsError {
    MetricsError::Plot(e.to_string())
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    /// 8-bit RGB PNG.
    Png,
    /// SVG document.
    Svg,
}

impl ImageFormat {
    /// The format a path's extension names (`png` or `svg`, any case).
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "svg" => Some(Self::Svg),
            _ => None,
        }
    }
}

/// The tab10 palette: distinct series colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn check_size(size: (u32, u32)) -> Result<()> {
    if size.0 < 200 || size.1 < 150 || size.0 > 10_000 || size.1 > 10_000 {
        return Err(MetricsError::InvalidParameter {
            name: "size",
            reason: format!("{}x{} pixels; use 200x150 to 10000x10000", size.0, size.1),
        });
    }
    Ok(())
}

/// Adds `save`, `to_png`, `to_svg` and `render` to a plot type with a
/// `draw<DB>(&self, &DrawingArea<DB, Shift>)` method and a `size` field.
macro_rules! outputs {
    ($t:ty $(, $g:ident)?) => {
        impl<$($g: Label)?> $t {
            /// Renders to PNG bytes.
            ///
            /// # Errors
            /// [`MetricsError::Plot`] if drawing or encoding fails, or an
            /// invalid size or data.
            pub fn to_png(&self) -> Result<Vec<u8>> {
                ensure_font()?;
                check_size(self.size)?;
                let (w, h) = self.size;
                let mut rgb = vec![0u8; w as usize * h as usize * 3];
                {
                    let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                    self.draw(&root)?;
                    root.present().map_err(plot_err)?;
                }
                encode_png(&rgb, w, h)
            }

            /// Renders to an SVG document.
            ///
            /// # Errors
            /// As [`Self::to_png`].
            pub fn to_svg(&self) -> Result<String> {
                ensure_font()?;
                check_size(self.size)?;
                let mut svg = String::new();
                {
                    let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
                    self.draw(&root)?;
                    root.present().map_err(plot_err)?;
                }
                Ok(svg)
            }

            /// Renders in `format` to bytes.
            ///
            /// # Errors
            /// As [`Self::to_png`].
            pub fn render(&self, format: ImageFormat) -> Result<Vec<u8>> {
                match format {
                    ImageFormat::Png => self.to_png(),
                    ImageFormat::Svg => self.to_svg().map(String::into_bytes),
                }
            }

            /// Writes the plot to `path`, as PNG or SVG by its extension.
            ///
            /// # Errors
            /// [`MetricsError::InvalidParameter`] for another extension,
            /// [`MetricsError::Io`] if the file cannot be written, and as
            /// [`Self::to_png`].
            pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
                let path = path.as_ref();
                let format = ImageFormat::from_path(path).ok_or_else(|| MetricsError::InvalidParameter {
                    name: "path",
                    reason: format!("{} does not end in .png or .svg", path.display()),
                })?;
                let bytes = self.render(format)?;
                std::fs::write(path, bytes).map_err(|e| MetricsError::Io {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }

            /// Sets the image size in pixels (default 800 × 600).
            #[must_use]
            pub fn size(mut self, width: u32, height: u32) -> Self {
                self.size = (width, height);
                self
            }

            /// Sets the title.
            #[must_use]
            pub fn title(mut self, title: impl Into<String>) -> Self {
                self.title = title.into();
                self
            }
        }
    };
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(plot_err)?;
    writer.write_image_data(rgb).map_err(plot_err)?;
    writer.finish().map_err(plot_err)?;
    Ok(out)
}

const DEFAULT_SIZE: (u32, u32) = (800, 600);

fn title_style() -> TextStyle<'static> {
    (FONT, 24).into_font().color(&BLACK)
}

fn label_style() -> TextStyle<'static> {
    (FONT, 15).into_font().color(&BLACK)
}

fn axis_style() -> TextStyle<'static> {
    (FONT, 17).into_font().color(&BLACK)
}

/// Rough width in pixels of `text` at `size` points (DejaVu Sans averages
/// about 0.6 em per character), used to size label areas.
fn text_width(text: &str, size: u32) -> u32 {
    (text.chars().count() as f64 * size as f64 * 0.62).ceil() as u32
}

// ------------------------------------------------------------ confusion matrix

/// A confusion-matrix heatmap: true classes down, predicted classes across,
/// each cell showing its count and its share of the true class (the shading
/// follows that share, like scikit-learn's `normalize="true"` display, so a
/// rare failure class reads as clearly as the majority class).
#[derive(Debug, Clone)]
pub struct ConfusionMatrixPlot<L> {
    matrix: ConfusionMatrix<L>,
    class_names: Vec<String>,
    title: String,
    size: (u32, u32),
    show_row_share: bool,
}

impl<L: Label> ConfusionMatrixPlot<L> {
    /// A heatmap of `matrix`, classes named by their labels.
    pub fn new(matrix: &ConfusionMatrix<L>) -> Self {
        Self {
            class_names: matrix
                .labels()
                .iter()
                .map(|l| format!("{}", l.to_i128()))
                .collect(),
            matrix: matrix.clone(),
            title: "Confusion matrix".into(),
            size: (700, 620),
            show_row_share: true,
        }
    }

    /// Names the classes (one per label, in label order).
    ///
    /// # Errors
    /// [`MetricsError::InvalidLabels`] when the count differs from the classes.
    pub fn class_names(mut self, names: &[&str]) -> Result<Self> {
        if names.len() != self.matrix.n_classes() {
            return Err(MetricsError::InvalidLabels {
                reason: format!(
                    "{} class names for {} classes",
                    names.len(),
                    self.matrix.n_classes()
                ),
            });
        }
        self.class_names = names.iter().map(|s| (*s).to_string()).collect();
        Ok(self)
    }

    /// Whether cells also show the share of their true class (default true).
    #[must_use]
    pub fn show_row_share(mut self, show: bool) -> Self {
        self.show_row_share = show;
        self
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let k = self.matrix.n_classes();
        let kf = k as f64;
        let shares = self.matrix.normalized_by_true();
        root.fill(&WHITE).map_err(plot_err)?;
        let name_w = self
            .class_names
            .iter()
            .map(|n| text_width(n, 15))
            .max()
            .unwrap_or(0);
        // Cell (i, j) spans x in [j, j+1] and y in [k-1-i, k-i]: row 0 on top.
        // Tick labels are drawn by hand at the cell centres.
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_style())
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(name_w + 45)
            .build_cartesian_2d(0.0..kf, 0.0..kf)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("Predicted label")
            .y_desc("True label")
            .axis_desc_style(axis_style())
            .draw()
            .map_err(plot_err)?;
        let cell_px = (self.size.0.min(self.size.1) as f64 / kf / 5.0).clamp(9.0, 26.0);
        for (idx, name) in self.class_names.iter().enumerate() {
            let c = idx as f64 + 0.5;
            let below = chart.backend_coord(&(c, 0.0));
            let x_style = label_style().pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(name.clone(), (below.0, below.1 + 8), x_style))
                .map_err(plot_err)?;
            let left = chart.backend_coord(&(0.0, kf - c));
            let y_style = label_style().pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(name.clone(), (left.0 - 8, left.1), y_style))
                .map_err(plot_err)?;
        }
        for (i, row) in shares.iter().enumerate() {
            for (j, &t) in row.iter().enumerate() {
                let count = self.matrix.count(i, j);
                // Shade by the share of the true class (t), so rare classes
                // (the failures) are as readable as the majority class.
                let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
                let fill = RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0));
                let y = (k - 1 - i) as f64;
                let (x0, x1) = (j as f64, j as f64 + 1.0);
                let mut cell = Rectangle::new([(x0, y), (x1, y + 1.0)], fill.filled());
                cell.set_margin(1, 1, 1, 1);
                chart.draw_series(std::iter::once(cell)).map_err(plot_err)?;
                let ink = if t > 0.5 { WHITE } else { BLACK };
                let px = chart.backend_coord(&(x0 + 0.5, y + 0.5));
                let big = (FONT, cell_px)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let small = (FONT, cell_px * 0.6)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Top));
                root.draw(&Text::new(format!("{count}"), px, big))
                    .map_err(plot_err)?;
                if self.show_row_share {
                    let below = (px.0, px.1 + (cell_px * 0.75) as i32);
                    root.draw(&Text::new(format!("{:.1}%", t * 100.0), below, small))
                        .map_err(plot_err)?;
                }
            }
        }
        Ok(())
    }
}
outputs!(ConfusionMatrixPlot<L>, L);

// ------------------------------------------------------------ ROC and PR

/// One or more ROC curves with their AUC in the legend and the chance diagonal.
#[derive(Debug, Clone)]
pub struct RocPlot {
    curves: Vec<(String, RocCurve, f64)>,
    title: String,
    size: (u32, u32),
}

impl Default for RocPlot {
    fn default() -> Self {
        Self::new()
    }
}

impl RocPlot {
    /// An empty ROC plot; add curves with [`RocPlot::curve`].
    pub fn new() -> Self {
        Self {
            curves: Vec::new(),
            title: "ROC curve".into(),
            size: DEFAULT_SIZE,
        }
    }

    /// Adds a curve; the legend reads `"{name} (AUC = 0.912)"`.
    #[must_use]
    pub fn curve(mut self, name: impl Into<String>, curve: &RocCurve) -> Self {
        let auc = curve.auc();
        self.curves.push((name.into(), curve.clone(), auc));
        self
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        if self.curves.is_empty() {
            return Err(MetricsError::EmptyInput { name: "curves" });
        }
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = unit_square(
            root,
            &self.title,
            "False positive rate",
            "True positive rate",
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                5,
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(plot_err)?
            .label("chance (AUC = 0.5)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], RGBColor(150, 150, 150)));
        for (i, (name, curve, auc)) in self.curves.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(
                    curve.fpr.iter().copied().zip(curve.tpr.iter().copied()),
                    c.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!("{name} (AUC = {auc:.3})"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}
outputs!(RocPlot);

/// One or more precision–recall curves (step-wise, as scikit-learn draws
/// them), with average precision in the legend and optionally a marked
/// operating point.
#[derive(Debug, Clone)]
pub struct PrPlot {
    curves: Vec<(String, PrCurve, Option<f64>)>,
    points: Vec<(String, ThresholdChoice)>,
    title: String,
    size: (u32, u32),
}

impl Default for PrPlot {
    fn default() -> Self {
        Self::new()
    }
}

impl PrPlot {
    /// An empty precision–recall plot.
    pub fn new() -> Self {
        Self {
            curves: Vec::new(),
            points: Vec::new(),
            title: "Precision–recall curve".into(),
            size: DEFAULT_SIZE,
        }
    }

    /// Adds a curve; with `average_precision` the legend reads
    /// `"{name} (AP = 0.812)"`.
    #[must_use]
    pub fn curve(
        mut self,
        name: impl Into<String>,
        curve: &PrCurve,
        average_precision: Option<f64>,
    ) -> Self {
        self.curves
            .push((name.into(), curve.clone(), average_precision));
        self
    }

    /// Marks an operating point, e.g. the F1-maximising threshold.
    #[must_use]
    pub fn point(mut self, name: impl Into<String>, choice: &ThresholdChoice) -> Self {
        self.points.push((name.into(), *choice));
        self
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        if self.curves.is_empty() {
            return Err(MetricsError::EmptyInput { name: "curves" });
        }
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = unit_square(root, &self.title, "Recall", "Precision")?;
        for (i, (name, curve, ap)) in self.curves.iter().enumerate() {
            let c = color(i);
            // Step plot with the step after each point, from recall 0 up.
            let pts: Vec<(f64, f64)> = curve
                .recall
                .iter()
                .copied()
                .zip(curve.precision.iter().copied())
                .rev()
                .collect();
            let mut steps = Vec::with_capacity(pts.len() * 2);
            for w in pts.windows(2) {
                steps.push(w[0]);
                steps.push((w[0].0, w[1].1));
            }
            if let Some(&last) = pts.last() {
                steps.push(last);
            }
            let label = match ap {
                Some(ap) => format!("{name} (AP = {ap:.3})"),
                None => name.clone(),
            };
            chart
                .draw_series(LineSeries::new(steps, c.stroke_width(2)))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(2)));
        }
        for (i, (name, p)) in self.points.iter().enumerate() {
            let c = color(self.curves.len() + i);
            chart
                .draw_series(std::iter::once(Circle::new(
                    (p.recall, p.precision),
                    6,
                    c.filled(),
                )))
                .map_err(plot_err)?
                .label(format!(
                    "{name}: threshold {:.3}, F = {:.3}",
                    p.threshold, p.f_score
                ))
                .legend(move |(x, y)| Circle::new((x + 12, y), 5, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft)
    }
}
outputs!(PrPlot);

type UnitChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn unit_square<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
) -> Result<UnitChart<'a, DB>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, title_style())
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(65)
        .build_cartesian_2d(-0.01f64..1.01f64, -0.01f64..1.01f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(label_style())
        .axis_desc_style(axis_style())
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .margin(12)
        .label_font(label_style())
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(plot_err)
}

// ------------------------------------------------------------ feature importance

/// Horizontal bars of the `top_k` most important features, the most
/// important at the top, names on the axis and values at the bar ends.
#[derive(Debug, Clone)]
pub struct FeatureImportancePlot {
    features: Vec<(String, f64)>,
    top_k: usize,
    title: String,
    size: (u32, u32),
    x_desc: String,
    marker: Option<f64>,
}

impl FeatureImportancePlot {
    /// Bars for `importances[i]` of feature `names[i]` (top 20 by default).
    ///
    /// # Errors
    /// Length mismatch, empty input or non-finite importances.
    pub fn new<S: AsRef<str>>(names: &[S], importances: &[f64]) -> Result<Self> {
        crate::validate::check_same_len("names", names.len(), "importances", importances.len())?;
        crate::validate::check_nonempty("importances", importances.len())?;
        crate::validate::check_finite("importances", importances)?;
        Ok(Self {
            features: names
                .iter()
                .map(|n| n.as_ref().to_string())
                .zip(importances.iter().copied())
                .collect(),
            top_k: 20,
            title: "Feature importance".into(),
            size: (900, 650),
            x_desc: "Importance".into(),
            marker: None,
        })
    }

    /// A vertical line at `x` (e.g. a threshold); bars reaching it are drawn
    /// in a second colour. Ignored unless finite.
    #[must_use]
    pub fn marker(mut self, x: f64) -> Self {
        self.marker = x.is_finite().then_some(x);
        self
    }

    /// How many features to show (default 20).
    #[must_use]
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k.max(1);
        self
    }

    /// The value axis description (default "Importance").
    #[must_use]
    pub fn x_desc(mut self, desc: impl Into<String>) -> Self {
        self.x_desc = desc.into();
        self
    }

    /// The shown features, most important first.
    pub fn top(&self) -> Vec<(String, f64)> {
        let mut sorted = self.features.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        sorted.truncate(self.top_k);
        sorted
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let top = self.top();
        let k = top.len() as u32;
        root.fill(&WHITE).map_err(plot_err)?;
        let marked = self.marker.into_iter();
        let lo = top
            .iter()
            .map(|f| f.1)
            .chain(marked.clone())
            .fold(0.0f64, f64::min);
        let hi = top.iter().map(|f| f.1).chain(marked).fold(0.0f64, f64::max);
        let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
        let name_w = top.iter().map(|f| text_width(&f.0, 14)).max().unwrap_or(0);
        let kf = f64::from(k);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_style())
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(name_w + 20)
            .build_cartesian_2d((lo - 0.02 * span)..(hi + 0.12 * span), 0.0..kf)
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
        let value_px = ((self.size.1 as f64 / kf) * 0.4).clamp(9.0, 14.0);
        let x_axis = lo - 0.02 * span;
        for (rank, (name, v)) in top.iter().enumerate() {
            // Rank 0 (the most important) in the top row.
            let y = kf - 1.0 - rank as f64;
            let reached = self.marker.is_some_and(|m| *v >= m);
            let fill = color(if reached { 3 } else { 0 }).filled();
            let mut bar = Rectangle::new([(0.0, y + 0.12), (*v, y + 0.88)], fill);
            bar.set_margin(0, 0, 0, 0);
            chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
            let end = chart.backend_coord(&(v.max(0.0), y + 0.5));
            let style = (FONT, value_px)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(format_value(*v), (end.0 + 4, end.1), style))
                .map_err(plot_err)?;
            let axis = chart.backend_coord(&(x_axis, y + 0.5));
            let name_style = (FONT, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(name.clone(), (axis.0 - 8, axis.1), name_style))
                .map_err(plot_err)?;
        }
        if let Some(m) = self.marker {
            let line = PathElement::new(vec![(m, 0.0), (m, kf)], BLACK.stroke_width(2));
            chart.draw_series(std::iter::once(line)).map_err(plot_err)?;
        }
        Ok(())
    }
}
outputs!(FeatureImportancePlot);

/// Compact number formatting for axes and bar labels: integers without
/// decimals, others with up to three, trailing zeros trimmed.
fn format_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.2e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

// ------------------------------------------------------------ line chart

/// How a [`Series`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesStyle {
    /// Straight segments between points.
    Line,
    /// Segments with a dot at each point.
    LineWithMarkers,
    /// Dots only (e.g. the value of each trial).
    Markers,
    /// A staircase holding each value until the next point (e.g. best so far).
    Step,
}

/// A named series of `(x, y)` points for a [`LineChart`].
///
/// In JSON a non-finite value is the string `"NaN"`, `"inf"` or `"-inf"`;
/// deserialising checks that `x` and `y` have the same length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SeriesRecord")]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// X values (trial numbers, days, timestamps...).
    #[serde(with = "crate::serde_f64::vec")]
    pub x: Vec<f64>,
    /// Y values; non-finite values (e.g. failed trials) are skipped.
    #[serde(with = "crate::serde_f64::vec")]
    pub y: Vec<f64>,
    /// Drawing style.
    pub style: SeriesStyle,
}

/// A [`Series`] as read, before its checks.
#[derive(Deserialize)]
struct SeriesRecord {
    name: String,
    #[serde(with = "crate::serde_f64::vec")]
    x: Vec<f64>,
    #[serde(with = "crate::serde_f64::vec")]
    y: Vec<f64>,
    style: SeriesStyle,
}

impl TryFrom<SeriesRecord> for Series {
    type Error = MetricsError;

    fn try_from(r: SeriesRecord) -> Result<Self> {
        crate::validate::check_same_len("series x", r.x.len(), "series y", r.y.len())?;
        Ok(Self::new(r.name, r.x, r.y, r.style))
    }
}

impl Series {
    /// A series drawn with `style`.
    pub fn new(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>, style: SeriesStyle) -> Self {
        Self {
            name: name.into(),
            x,
            y,
            style,
        }
    }

    /// A line series.
    pub fn line(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Self::new(name, x, y, SeriesStyle::Line)
    }

    /// A markers-only series.
    pub fn markers(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Self::new(name, x, y, SeriesStyle::Markers)
    }

    /// A step series.
    pub fn step(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Self::new(name, x, y, SeriesStyle::Step)
    }

    /// `0, 1, ..., n-1` as x values (trial numbers).
    pub fn index_x(n: usize) -> Vec<f64> {
        (0..n).map(|i| i as f64).collect()
    }

    /// Running best of `values` (maximum when `maximize`, else minimum);
    /// non-finite values are skipped (NaN until the first finite value).
    pub fn best_so_far(values: &[f64], maximize: bool) -> Vec<f64> {
        let mut best = f64::NAN;
        values
            .iter()
            .map(|&v| {
                if v.is_finite()
                    && (best.is_nan() || (maximize && v > best) || (!maximize && v < best))
                {
                    best = v;
                }
                best
            })
            .collect()
    }

    fn finite_points(&self) -> Vec<(f64, f64)> {
        self.x
            .iter()
            .zip(&self.y)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(&x, &y)| (x, y))
            .collect()
    }
}

/// A line chart of one or more series: a metric over time (F1 per day) or
/// over trials (each trial's value and the best so far).
#[derive(Debug, Clone)]
pub struct LineChart {
    series: Vec<Series>,
    x_desc: String,
    y_desc: String,
    y_range: Option<(f64, f64)>,
    title: String,
    size: (u32, u32),
}

impl LineChart {
    /// An empty chart with a title and axis descriptions.
    pub fn new(
        title: impl Into<String>,
        x_desc: impl Into<String>,
        y_desc: impl Into<String>,
    ) -> Self {
        Self {
            series: Vec::new(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            y_range: None,
            title: title.into(),
            size: DEFAULT_SIZE,
        }
    }

    /// Adds a series.
    #[must_use]
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Fixes the y axis (default: the data range plus 5 % padding).
    #[must_use]
    pub fn y_range(mut self, low: f64, high: f64) -> Self {
        self.y_range = Some((low, high));
        self
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        for s in &self.series {
            crate::validate::check_same_len("series x", s.x.len(), "series y", s.y.len())?;
        }
        let all: Vec<(f64, f64)> = self.series.iter().flat_map(Series::finite_points).collect();
        if all.is_empty() {
            return Err(MetricsError::EmptyInput { name: "series" });
        }
        let (mut x0, mut x1) = all
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (mut y0, mut y1) = match self.y_range {
            Some(r) if r.0 < r.1 && r.0.is_finite() && r.1.is_finite() => r,
            Some(r) => {
                return Err(MetricsError::InvalidParameter {
                    name: "y_range",
                    reason: format!("{r:?} is not a finite increasing range"),
                });
            }
            None => all
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1))),
        };
        if x1 - x0 <= 0.0 {
            x0 -= 0.5;
            x1 += 0.5;
        }
        if self.y_range.is_none() {
            let pad = if y1 - y0 > 0.0 {
                0.05 * (y1 - y0)
            } else {
                0.5 * y0.abs().max(1e-3)
            };
            y0 -= pad;
            y1 += pad;
        }
        // Trials, days and model versions are whole numbers: half a step of room at
        // each end keeps the first and last points off the frame (and the last one
        // out from under the legend), and ticks fall on whole numbers only.
        let whole_x = all.iter().all(|p| p.0.fract() == 0.0);
        let xpad = if whole_x {
            (0.02 * (x1 - x0)).max(0.5)
        } else {
            0.02 * (x1 - x0)
        };
        let x_ticks = if whole_x {
            ((x1 - x0) as usize + 1).clamp(2, 10)
        } else {
            10
        };
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_style())
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d((x0 - xpad)..(x1 + xpad), y0..y1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_labels(x_ticks)
            .x_label_formatter(&|v| {
                if whole_x && v.fract() != 0.0 {
                    String::new()
                } else {
                    format_value(*v)
                }
            })
            .y_label_formatter(&|v| format_value(*v))
            .label_style(label_style())
            .axis_desc_style(axis_style())
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(plot_err)?;
        for (i, s) in self.series.iter().enumerate() {
            let c = color(i);
            let pts = s.finite_points();
            let name = s.name.clone();
            match s.style {
                SeriesStyle::Line | SeriesStyle::LineWithMarkers | SeriesStyle::Step => {
                    let line: Vec<(f64, f64)> = if s.style == SeriesStyle::Step {
                        let mut st = Vec::with_capacity(pts.len() * 2);
                        for w in pts.windows(2) {
                            st.push(w[0]);
                            st.push((w[1].0, w[0].1));
                        }
                        st.extend(pts.last());
                        st
                    } else {
                        pts.clone()
                    };
                    let with_markers = s.style == SeriesStyle::LineWithMarkers;
                    chart
                        .draw_series(LineSeries::new(line, c.stroke_width(2)))
                        .map_err(plot_err)?
                        .label(name)
                        .legend(move |(x, y)| {
                            EmptyElement::at((x, y))
                                + PathElement::new([(0, 0), (24, 0)], c.stroke_width(2))
                                + Circle::new((12, 0), if with_markers { 4 } else { 0 }, c.filled())
                        });
                    if with_markers {
                        chart
                            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                            .map_err(plot_err)?;
                    }
                }
                SeriesStyle::Markers => {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.mix(0.8).filled())))
                        .map_err(plot_err)?
                        .label(name)
                        .legend(move |(x, y)| Circle::new((x + 12, y), 4, c.filled()));
                }
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}
outputs!(LineChart);

// ------------------------------------------------------------ alarms and lead times

mod beeswarm;
mod events;
pub use beeswarm::ShapBeeswarmPlot;
pub use events::{AlarmTimelinePlot, LeadTimeHistogramPlot};
