//! Bounded waits: a test polls for what it waits for (a log line, an HTTP state, a
//! row, an event) and fails with a clear message at the deadline, never later.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// The deadline of most waits: far above what any of them takes on a loaded machine.
pub const WITHIN: Duration = Duration::from_secs(20);

/// Calls `probe` every 20 ms until it returns `Ok`, and returns what it holds. At the
/// deadline the test fails with `what` and the last `Err`, which says what was seen
/// instead.
pub fn wait_until<T, E: Display>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe() {
            Ok(found) => return found,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; last seen: {seen}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wait_until` a condition holds.
pub fn wait_for(what: &str, within: Duration, mut holds: impl FnMut() -> bool) {
    wait_until(
        what,
        within,
        || if holds() { Ok(()) } else { Err("not yet") },
    )
}
