//! The drift verdict rates on 10 simulator seeds (the bench runs 100): the
//! served rule raises no dataset drift on the same fleet's next day in at
//! least 9 of 10, and catches a +5 °C temperature probe and a vibration
//! baseline shift, naming the shifted features, in at least 9 of 10.
#![allow(clippy::unwrap_used)] // test code

use vigil_benches::drift_verdicts::{SCENARIOS, Shift, rules, run_seed};

#[test]
fn the_served_rule_is_quiet_on_the_same_fleet_and_names_shifted_sensors() {
    let shifts: Vec<Shift> = SCENARIOS.iter().map(|s| s.1).collect();
    let served = &rules()[..1];
    let mut alarms = [0usize; 3];
    let mut named = [0usize; 3];
    for seed in 1000..1010 {
        for (k, v) in run_seed(seed, &shifts, served).unwrap().iter().enumerate() {
            alarms[k] += usize::from(v[0].drift.dataset_drift);
            named[k] += usize::from(v[0].drift.dataset_drift && v[0].named);
        }
    }
    assert!(alarms[0] <= 1, "false alarms on the same fleet: {alarms:?}");
    assert!(
        named[1] >= 9,
        "temperature +5 °C detected and named: {named:?}"
    );
    assert!(
        named[2] >= 9,
        "vibration baseline detected and named: {named:?}"
    );
}
