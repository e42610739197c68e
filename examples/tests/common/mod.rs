//! Helpers shared by the integration tests.

/// The value of a service variable, or `None` (printing why) when the harness
/// did not start that service. Panics when services are required
/// (`VIGIL_REQUIRE_SERVICES=1`, which `scripts/test.sh` sets), so CI can never
/// skip a service test silently.
#[allow(clippy::print_stderr)] // the one line saying a test was skipped
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
