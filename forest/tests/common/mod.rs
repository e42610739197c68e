//! Data shared by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use ndarray::Array2;

/// Deterministic pseudo-random numbers in [0, 1) (SplitMix64), so tests need no RNG crate.
#[derive(Debug)]
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Two noisy classes separated along the first two of `features` columns
/// (label = x0 + x1 > 1, with 5% of labels flipped).
pub(crate) fn two_class(rows: usize, features: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = Lcg(seed);
    let x = Array2::from_shape_fn((rows, features), |_| rng.next_f64());
    let y = (0..rows)
        .map(|r| {
            let clean = usize::from(x[[r, 0]] + x[[r, 1]] > 1.0);
            if rng.next_f64() < 0.05 {
                1 - clean
            } else {
                clean
            }
        })
        .collect();
    (x, y)
}

/// Three classes by which third of [0, 1) the first column falls in.
pub(crate) fn three_class(rows: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = Lcg(seed);
    let x = Array2::from_shape_fn((rows, 4), |_| rng.next_f64());
    let y = (0..rows)
        .map(|r| ((x[[r, 0]] * 3.0) as usize).min(2) * 10)
        .collect();
    (x, y)
}

/// The value of environment variable `var` (a service the test needs, e.g. the
/// Python venv with onnxruntime), or `None` to skip the test; with
/// `VIGIL_REQUIRE_SERVICES=1` an unset variable fails the test instead.
pub(crate) fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            if std::env::var("VIGIL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but VIGIL_REQUIRE_SERVICES=1: run scripts/test.sh");
            }
            eprintln!("skipped: {var} not set (run scripts/test.sh to start the services)");
            None
        }
    }
}
