//! A panic hook that keeps the panics a test provokes on purpose quiet.
//!
//! A panic in a pool worker is not captured by the test harness: the default hook prints its
//! message and a backtrace note to the terminal, where an expected panic reads like a failure.
//! The hook is process-wide and tests run side by side, so it does not simply mute everything:
//! it mutes a panic only when its message starts with a prefix some test registered, and hands
//! every other panic (a failed assertion, a real bug) to the default hook.

use std::panic::{self, PanicHookInfo};
use std::sync::{Mutex, Once, PoisonError};

/// Message prefixes of the panics the tests of this binary provoke.
static EXPECTED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Keeps panics whose message starts with one of `prefixes` quiet, for the rest of the process.
pub fn expect_panics(prefixes: &[&'static str]) {
    static INSTALL: Once = Once::new();
    EXPECTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend_from_slice(prefixes);
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !is_expected(info) {
                default(info);
            }
        }));
    });
}

fn is_expected(info: &PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let message = match payload.downcast_ref::<&str>() {
        Some(s) => *s,
        None => match payload.downcast_ref::<String>() {
            Some(s) => s.as_str(),
            None => return false,
        },
    };
    EXPECTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|prefix| message.starts_with(prefix))
}
