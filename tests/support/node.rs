//! Scripts the tests run (`@zernio/node` driven unchanged, the CI example, the console's browser
//! test, the README's shell lines): one runner that reads both pipes while the script runs and
//! kills it after a limit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root (where `node_modules` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Runs `node` with `args` from the repository's root with `vars` set, killed after `limit`:
/// whether it passed, and what it printed.
pub fn run(args: &[&str], vars: &[(&str, &str)], limit: Duration) -> (bool, String) {
    run_program("node", "Node.js 20 is needed", args, vars, limit)
}

/// Runs `program` (`needs`: what to install when it is missing) as [`run`] runs `node`.
pub fn run_program(
    program: &str,
    needs: &str,
    args: &[&str],
    vars: &[(&str, &str)],
    limit: Duration,
) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run `{program}` ({e}): {needs}"));
    // Read both pipes while the script runs, so a full pipe never blocks it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) => (status.success(), output),
        None => (
            false,
            format!("{output}\n(killed after {} s)", limit.as_secs()),
        ),
    }
}
