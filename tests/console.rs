//! The console in a real browser (README, "The console"): `make dev`'s stack on free ports
//! (with a customer-service window of [`WINDOW_SECONDS`], so a closed window shows within the
//! run), and `tests/browser/console.mjs` driving Debian's Chromium with Playwright through a
//! newcomer's loop on a virtual phone, every control found by its role and accessible name and
//! every view checked by axe-core. The script's failures fail this test, its report and the
//! stack's logs shown.
//!
//! `UPDATE_SCREENSHOTS=1 cargo test -p e2e --test console` also rewrites the README's
//! screenshots (`console/screenshots/`); without it the run leaves the tree as it was.

use std::path::Path;
use std::time::Duration;

use e2e::node::repo_root;
use e2e::stack::Stack;

/// The window of the stack's functions: long enough for a send after the tap on Activate
/// (every message of the phone opens it again), short enough that the run sees it close.
const WINDOW_SECONDS: &str = "60";
/// The whole walk, the wait for the window to close included, takes about two minutes.
const SCRIPT_LIMIT: Duration = Duration::from_secs(10 * 60);
/// Debian's Chromium (`make deps` installs it when it is missing).
const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn the_console_walks_a_newcomers_loop_in_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: `make deps` installs Debian's chromium (apt-get install chromium)"
    );
    for package in ["playwright-core", "axe-core"] {
        let manifest = repo_root()
            .join("node_modules")
            .join(package)
            .join("package.json");
        assert!(
            manifest.is_file(),
            "{package} is not installed: run `make deps` (npm ci at the repository root)"
        );
    }
    let stack = Stack::start_with(&[("DEV_WINDOW_SECONDS", WINDOW_SECONDS)]);
    let console = format!("{}/console", stack.api);
    let screenshots = repo_root().join("console/screenshots");
    let screenshots = screenshots.to_string_lossy();
    let env = [
        ("CONSOLE_URL", console.as_str()),
        ("CONSOLE_API_KEY", stack.key.as_str()),
        ("RECEIVER_URL", stack.receiver.0.as_str()),
        ("RECEIVER_SECRET", stack.receiver.1.as_str()),
        ("WINDOW_SECONDS", WINDOW_SECONDS),
        ("CHROMIUM", CHROMIUM),
        ("SCREENSHOTS_DIR", &screenshots),
    ];
    let (ok, output) = e2e::node::run(&["tests/browser/console.mjs"], &env, SCRIPT_LIMIT);
    // Shown with a failure (or with `--nocapture`): node:test's report of every step.
    println!("{output}");
    assert!(
        ok,
        "tests/browser/console.mjs failed: its report is above\n{}",
        stack.logs()
    );
}
