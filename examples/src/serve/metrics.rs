//! What `GET /metrics` reports, in the OpenMetrics text format through the
//! Prometheus project's client: requests by route and status, latency, samples
//! scored, failures and anomalies flagged, the model being served, and how many
//! machines are tracked (warm and cold), and the latest drift check (each
//! feature's statistic, the dataset-drift flag, the window size).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vigil_metrics::DatasetDrift;

/// The content type of [`ServeMetrics::render`]'s output.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeatureLabels {
    feature: String,
    method: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    name: String,
    version: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s: one-sample requests and 10,000-sample batches alike.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The service's counters and gauges (cheap to update from any thread).
#[derive(Debug)]
pub struct ServeMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    samples_scored: Counter,
    failures_flagged: Counter,
    anomalies_flagged: Counter,
    alarms_rung: Counter,
    model: Family<ModelLabels, Gauge>,
    machines_tracked: Gauge,
    machines_warm: Gauge,
    machines_cold: Gauge,
    drift_statistic: Family<FeatureLabels, FloatGauge>,
    drift_feature_drifted: Family<FeatureLabels, Gauge>,
    dataset_drift: Gauge,
    drift_share: FloatGauge,
    drift_window: Gauge,
}

impl Default for ServeMetrics {
    fn default() -> Self {
        ServeMetrics::new()
    }
}

impl ServeMetrics {
    /// Every metric registered, all at zero.
    pub fn new() -> ServeMetrics {
        let mut registry = Registry::with_prefix("vigil_serve");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let (samples_scored, failures_flagged, anomalies_flagged) =
            (Counter::default(), Counter::default(), Counter::default());
        let alarms_rung = Counter::default();
        let model = Family::<ModelLabels, Gauge>::default();
        let (machines_tracked, machines_warm, machines_cold) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let r = &mut registry;
        r.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from request to response, by route",
            latency.clone(),
        );
        r.register("samples_scored", "Samples scored", samples_scored.clone());
        r.register(
            "failures_flagged",
            "Samples whose failure probability reached the model's threshold",
            failures_flagged.clone(),
        );
        r.register(
            "anomalies_flagged",
            "Samples the Isolation Forest flagged as anomalies",
            anomalies_flagged.clone(),
        );
        r.register(
            "alarms_rung",
            "Alarm episodes started (models with alarm smoothing)",
            alarms_rung.clone(),
        );
        r.register(
            "model_info",
            "The model version being served (value 1)",
            model.clone(),
        );
        r.register(
            "machines_tracked",
            "Machines with online state",
            machines_tracked.clone(),
        );
        r.register(
            "machines_warm",
            "Tracked machines whose windows are full",
            machines_warm.clone(),
        );
        r.register(
            "machines_cold",
            "Tracked machines whose windows are not full yet",
            machines_cold.clone(),
        );
        let drift_statistic = Family::<FeatureLabels, FloatGauge>::default();
        let drift_feature_drifted = Family::<FeatureLabels, Gauge>::default();
        let (dataset_drift, drift_window) = (Gauge::default(), Gauge::default());
        let drift_share = FloatGauge::default();
        r.register(
            "drift_statistic",
            "Each feature's drift statistic in the latest check (method label: its statistic)",
            drift_statistic.clone(),
        );
        r.register(
            "drift_feature_drifted",
            "1 when the feature drifted in the latest check",
            drift_feature_drifted.clone(),
        );
        r.register(
            "dataset_drift",
            "1 when the latest drift check found dataset drift",
            dataset_drift.clone(),
        );
        r.register(
            "drift_share",
            "Share of features drifted in the latest check",
            drift_share.clone(),
        );
        r.register(
            "drift_window_samples",
            "Feature vectors the latest drift check compared",
            drift_window.clone(),
        );
        ServeMetrics {
            registry,
            requests,
            latency,
            samples_scored,
            failures_flagged,
            anomalies_flagged,
            alarms_rung,
            model,
            machines_tracked,
            machines_warm,
            machines_cold,
            drift_statistic,
            drift_feature_drifted,
            dataset_drift,
            drift_share,
            drift_window,
        }
    }

    /// The latest drift check (replaces the previous one).
    pub fn set_drift(&self, drift: &DatasetDrift) {
        self.clear_drift();
        for f in &drift.features {
            let labels = FeatureLabels {
                feature: f.name.clone(),
                method: serde_json::to_value(f.method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            self.drift_statistic.get_or_create(&labels).set(f.statistic);
            self.drift_feature_drifted
                .get_or_create(&labels)
                .set(i64::from(f.drifted));
        }
        self.dataset_drift.set(i64::from(drift.dataset_drift));
        self.drift_share.set(drift.share_drifted);
    }

    /// No drift verdict (no reference, too few samples, a model swap).
    pub fn clear_drift(&self) {
        self.drift_statistic.clear();
        self.drift_feature_drifted.clear();
        self.dataset_drift.set(0);
        self.drift_share.set(0.0);
    }

    /// Vectors compared by the latest drift check.
    pub fn set_drift_window(&self, samples: usize) {
        self.drift_window
            .set(i64::try_from(samples).unwrap_or(i64::MAX));
    }

    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        let route = route.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts the samples of one scored batch.
    pub fn observe_scored(&self, samples: u64, failures: u64, anomalies: u64) {
        self.samples_scored.inc_by(samples);
        self.failures_flagged.inc_by(failures);
        self.anomalies_flagged.inc_by(anomalies);
    }

    /// Counts alarm episodes that started in one scored batch.
    pub fn observe_alarms_rung(&self, episodes: u64) {
        self.alarms_rung.inc_by(episodes);
    }

    /// The version now served (replaces the previous one).
    pub fn set_model(&self, name: &str, version: &str) {
        self.model.clear();
        self.model
            .get_or_create(&ModelLabels {
                name: name.to_string(),
                version: version.to_string(),
            })
            .set(1);
    }

    /// Machines tracked, and how many of them are warm.
    pub fn set_machines(&self, tracked: usize, warm: usize) {
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.machines_tracked.set(as_gauge(tracked));
        self.machines_warm.set(as_gauge(warm));
        self.machines_cold
            .set(as_gauge(tracked.saturating_sub(warm)));
    }

    /// The exposition text ([`METRICS_CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a
        // metric, and an empty scrape is the honest answer to it.
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_its_labels() {
        let m = ServeMetrics::new();
        m.observe_request("/predict", 200, Duration::from_micros(300));
        m.observe_request("/predict", 422, Duration::from_micros(80));
        m.observe_scored(100, 3, 7);
        m.set_model("pm", "4");
        m.set_model("pm", "5");
        m.set_machines(10, 4);
        let text = m.render();
        for line in [
            "vigil_serve_requests_total{route=\"/predict\",status=\"200\"} 1",
            "vigil_serve_requests_total{route=\"/predict\",status=\"422\"} 1",
            "vigil_serve_samples_scored_total 100",
            "vigil_serve_failures_flagged_total 3",
            "vigil_serve_anomalies_flagged_total 7",
            "vigil_serve_model_info{name=\"pm\",version=\"5\"} 1",
            "vigil_serve_machines_tracked 10",
            "vigil_serve_machines_warm 4",
            "vigil_serve_machines_cold 6",
            "vigil_serve_request_duration_seconds_count{route=\"/predict\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("version=\"4\""), "{text}");
        let drift = vigil_metrics::DriftReference::new(vec![(
            "temperature",
            vigil_metrics::ColumnKind::Numerical,
            &[1.0, 2.0, 3.0][..],
        )])
        .unwrap()
        .compare(&[&[11.0, 12.0, 13.0]], &crate::drift::drift_params())
        .unwrap();
        m.set_drift(&drift);
        m.set_drift_window(3);
        let text = m.render();
        for line in [
            "vigil_serve_dataset_drift 1",
            "vigil_serve_drift_share 1.0",
            "vigil_serve_drift_window_samples 3",
            "vigil_serve_drift_feature_drifted{feature=\"temperature\",method=\"wasserstein\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        m.clear_drift();
        let text = m.render();
        assert!(!text.contains("feature=\"temperature\""), "{text}");
        assert!(text.lines().any(|l| l == "vigil_serve_dataset_drift 0"));
        assert!(text.ends_with("# EOF\n"));
    }
}
