//! README.md's five-minute tour, run as a newcomer runs it: its shell blocks, top to
//! bottom, by bash, in a fresh directory laid out as a checkout. `sh` blocks run
//! whole; a `console` block runs its `$ ` lines (a line ending in `\` goes on to the
//! next), and the lines after them are the output the README shows. Other blocks
//! (the Python snippet, which `tests/peers/tour_sms.py` repeats) are read, not run.
//!
//! The two steps the test harness has already done stand in for themselves:
//! `cargo build --release` (the stand-in links the binary under test where the
//! build leaves it) and `pip install -r tests/peers/requirements.txt` (`.ci/run`
//! installs the peers). Each stand-in refuses any other arguments, so the README's
//! text stays exactly what a newcomer types.
//!
//! The tour runs the embedded default, on its fixed ports 8080 and 2775: nextest
//! runs this test in a group of its own (`.config/nextest.toml`, `fixed-ports`),
//! the other tests bind port 0 (which the kernel never answers with a port below
//! its ephemeral range), and the test fails at once, saying so, if something else
//! holds either port.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::wait::wait_until;

const SECTION: &str = "## A five-minute tour";

/// The tour as one bash script: `set -euo pipefail`, then every command.
fn tour_script(readme: &str) -> String {
    let start = readme.find(SECTION).expect("README.md has the tour");
    let body = &readme[start + SECTION.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut script = String::from("set -euo pipefail\n");
    let mut block: Option<&str> = None;
    let mut continued = false;
    for line in body.lines() {
        if let Some(fence) = line.strip_prefix("```") {
            block = match block {
                None => Some(fence.trim()),
                Some(_) => None,
            };
            continued = false;
            continue;
        }
        let command = match block {
            Some("sh" | "bash") => Some(line),
            Some("console") if continued => Some(line),
            Some("console") => line.strip_prefix("$ "),
            _ => None,
        };
        if let Some(command) = command {
            script.push_str(command);
            script.push('\n');
            continued = block == Some("console") && command.ends_with('\\');
        }
    }
    script
}

/// A program named `name` that accepts exactly `args` and then runs `then`.
fn stand_in(dir: &Path, name: &str, args: &str, then: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n# Stands in for `{name} {args}`, which the test harness did.\n\
             [ \"$*\" = \"{args}\" ] || {{ echo \"the tour test knows no '{name} $*'\" >&2; exit 97; }}\n\
             {then}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_script_takes_sh_blocks_whole_and_console_commands_with_continuations() {
    let readme = "intro\n## A five-minute tour\n```sh\na && b\nc &\n```\ntext\n```console\n\
                  $ d \\\n    e\nout put\n$ f\n```\n```python\nprint(1)\n```\n## Next\n```sh\nz\n```\n";
    assert_eq!(
        tour_script(readme),
        "set -euo pipefail\na && b\nc &\nd \\\n    e\nf\n"
    );
}

#[test]
fn the_readme_tour_runs_as_shown() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = tour_script(&std::fs::read_to_string(repo.join("README.md")).unwrap());
    for port in [8080, 2775] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!("the tour needs 127.0.0.1:{port}, which something else holds: {e}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (checkout, bin, tmp) = (
        dir.path().join("otpgw"),
        dir.path().join("bin"),
        dir.path().join("tmp"),
    );
    for d in [&checkout, &bin, &tmp] {
        std::fs::create_dir(d).unwrap();
    }
    std::os::unix::fs::symlink(repo.join("tests"), checkout.join("tests")).unwrap();
    stand_in(
        &bin,
        "cargo",
        "build --release",
        &format!(
            "mkdir -p target/release && ln -sf {} target/release/otpgw",
            crate::harness::bin()
        ),
    );
    stand_in(&bin, "pip", "install -r tests/peers/requirements.txt", "");
    std::fs::write(dir.path().join("tour.sh"), &script).unwrap();

    let mut tour = Command::new("bash");
    tour.arg(dir.path().join("tour.sh"))
        .current_dir(&checkout)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        // `mktemp -d` makes the tour's directory in here, where the test finds it.
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that the gateway it starts in the background
        // goes with it however the tour ends.
        .process_group(0);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("OTPGW_")) {
        tour.env_remove(key);
    }
    let mut child = Group(tour.spawn().expect("bash"));
    let (mut out, mut err) = (
        child.0.stdout.take().unwrap(),
        child.0.stderr.take().unwrap(),
    );
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let status = wait_until("the tour to finish", Duration::from_secs(180), || {
        child.0.try_wait().unwrap().ok_or("still running")
    });
    let (stdout, stderr) = (reader.join().unwrap(), err_reader.join().unwrap());
    let serve_log = std::fs::read_dir(&tmp)
        .unwrap()
        .filter_map(|d| std::fs::read_to_string(d.ok()?.path().join("serve.log")).ok())
        .collect::<String>();
    let shown = format!(
        "the script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserve.log:\n{serve_log}"
    );
    assert!(status.success(), "the tour failed ({status}); {shown}");
    // Steps whose answers the tour is about, as the README shows them.
    for fact in [
        "Your dynamic password: ",
        r#""last4":"1234""#,
        r#""result":"approved""#,
        r#""reason":"used""#,
        r#""kind":"verified""#,
        r#""reason":"locked""#,
        r#""status":"active""#,
    ] {
        assert!(
            stdout.contains(fact),
            "no {fact} in the tour's output; {shown}"
        );
    }
    // It ended with the stop the README shows: SIGTERM, a clean exit.
    assert!(
        serve_log.contains("\"stopped\"") || serve_log.contains(" stopped"),
        "{shown}"
    );
}

/// A process group killed when the test is done with it, however the test ends.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        // (The group is usually gone already: the tour stops its gateway.)
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}
