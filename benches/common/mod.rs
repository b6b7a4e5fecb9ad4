//! What the benches share: medians, running a case in a child process, memory and CPU readings.
//! (A folder without `main.rs`, so cargo does not take it for a bench of its own.)

#![allow(dead_code)] // each bench uses its own part

/// The environment variable that makes a bench binary run one case and exit.
pub const CASE_ENV: &str = "APLEX_BENCH_CASE";

/// The median of `runs` results of `f`.
pub fn median_of<F: FnMut() -> f64>(runs: usize, mut f: F) -> f64 {
    median((0..runs).map(|_| f()).collect())
}

/// The median of some figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// In a child started by [`in_child`], runs the case it names (from `cases`) and returns true;
/// returns false in the parent.
pub fn run_child_case(cases: &[(&str, fn())]) -> bool {
    let Ok(name) = std::env::var(CASE_ENV) else {
        return false;
    };
    match cases.iter().find(|(n, _)| *n == name) {
        Some((_, run)) => run(),
        None => panic!("unknown bench case {name}"),
    }
    true
}

/// Runs one case of this bench in a child process (so its peak memory is its own) and passes
/// its lines through.
pub fn in_child(case: &str) {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let out = std::process::Command::new(exe)
        .env(CASE_ENV, case)
        .output()
        .expect("the bench can run itself");
    assert!(out.status.success(), "bench case {case} failed: {out:?}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// VmHWM of this process, from /proc/self/status.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// VmRSS of this process now, from /proc/self/status.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User + system CPU time of this process, from /proc/self/stat.
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}
