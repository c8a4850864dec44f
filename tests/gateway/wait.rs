//! Bounded waits: a test polls for what it waits for (a log line, an HTTP state, a
//! row, an event, a child's line) and fails with a clear message at the deadline,
//! never later.

use std::fmt::{self, Display, Formatter};
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver};
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

/// What a probe saw, written out only if the wait fails (a probe runs every 20 ms;
/// a whole log or event list is formatted once, at the deadline).
pub struct Seen<F: Fn(&mut Formatter) -> fmt::Result>(pub F);

impl<F: Fn(&mut Formatter) -> fmt::Result> Display for Seen<F> {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        (self.0)(f)
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

/// The lines a child process writes, each waited for with a deadline (a read of a
/// pipe has none of its own).
pub struct Lines(Receiver<String>);

impl Lines {
    /// Reads `from` line by line on a thread of its own.
    pub fn of(from: impl Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, which must come within `within`.
    pub fn next_within(&self, what: &str, within: Duration) -> String {
        self.0
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("waited {within:?} for {what}: {e}"))
    }
}
