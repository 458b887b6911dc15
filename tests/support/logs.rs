//! The functions' log lines, captured in a test: the JSON format they write in production.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log lines written in this thread while the guard [`Captured::start`] gave lives.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's log lines, in the functions' JSON format, while the guard lives.
    /// A line is never captured that was not written, but one may be missing: tracing caches
    /// per call site whether anyone listens, and another test's thread without a subscriber
    /// can cache "no" meanwhile.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let guard = tracing::subscriber::set_default(sandbox::telemetry::subscriber(move || {
            writer.clone()
        }));
        // Other tests' threads log without a subscriber: interest they cached is computed again.
        tracing::callsite::rebuild_interest_cache();
        (logs, guard)
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}
