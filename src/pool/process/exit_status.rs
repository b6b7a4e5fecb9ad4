//! How a launched process's end reads in a reason: "exited with status 3", "was killed by
//! signal 6 (SIGABRT: …)", and a shell's way of reporting its command's signal (status 128 + n)
//! said for what it is.
#![forbid(unsafe_code)]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The end of a launched process, for a reason. `behind` is true when that process is known
/// to be a launcher in front of the worker (a shell without `exec`): a status of 128 + n is
/// then how a shell reports that the worker died of signal n, and says so.
pub(crate) fn describe(status: Option<ExitStatus>, behind: bool) -> String {
    let Some(status) = status else {
        return "ended (its exit status is unknown)".to_string();
    };
    match (status.code(), status.signal()) {
        (Some(code), _) if behind && (129..=192).contains(&code) => format!(
            "exited with status {code}: its launcher's report (128 + {}) that the worker was \
             killed by {}",
            code - 128,
            signal(code - 128)
        ),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by {}", signal(sig)),
        (None, None) => format!("ended: {status}"),
    }
}

/// "signal 9 (SIGKILL)": the number, and the name where it is the same on every Unix.
fn signal(n: i32) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT: an abort, such as a panic where panic = \"abort\"",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return format!("signal {n}"),
    };
    format!("signal {n} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait status as the kernel gives it: an exit code in the second byte, a signal in
    /// the first.
    fn exited(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(code << 8))
    }

    fn killed(signal: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(signal))
    }

    #[test]
    fn codes_signals_and_a_shells_report_read_as_what_they_are() {
        assert_eq!(describe(exited(3), false), "exited with status 3");
        assert_eq!(
            describe(killed(9), false),
            "was killed by signal 9 (SIGKILL)"
        );
        assert!(describe(killed(6), false).contains("signal 6 (SIGABRT"));
        assert_eq!(describe(killed(42), true), "was killed by signal 42");
        // 137 from a worker of its own is its own code; from a shell in front, signal 9.
        assert_eq!(describe(exited(137), false), "exited with status 137");
        let behind = describe(exited(137), true);
        assert!(behind.contains("status 137") && behind.contains("signal 9 (SIGKILL)"));
        assert_eq!(describe(exited(255), true), "exited with status 255");
        assert!(describe(None, false).contains("unknown"));
    }
}
