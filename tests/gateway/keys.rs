//! Keys that cannot split a cluster: the first start records the keys' fingerprints
//! in the database, and a node with other keys (or published example keys) stops
//! with exit status 2 before it serves; a CLI command run away from its database
//! creates nothing.

use std::process::{Command, Stdio};

use crate::harness::{bin, Gateway, Reaped};
use crate::wait::{wait_until, WITHIN};

/// `otpgw serve` on `gw`'s config with `env` added: its exit status and stderr.
/// Bounded: a node that does start is killed at the deadline and the test fails.
pub(crate) fn serve_beside(gw: &Gateway, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let child = Command::new(bin())
        .arg("--config")
        .arg(gw.dir.path().join("otpgw.toml"))
        .arg("serve")
        .envs(env.iter().copied())
        .env_remove("OTPGW_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run otpgw");
    let mut child = Reaped(child);
    let status = wait_until("the refused node to exit", WITHIN, || {
        child.0.try_wait().unwrap().ok_or("still serving")
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

fn random_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[test]
fn a_node_with_other_keys_is_refused_and_names_the_database() {
    let gw = Gateway::start();
    let (pan, code) = (random_key(), random_key());
    let (status, stderr) = serve_beside(
        &gw,
        &[
            ("OTPGW_SECRETS__PAN_KEY", &pan),
            ("OTPGW_SECRETS__CODE_KEY", &code),
        ],
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("pan_key and code_key differ"), "{stderr}");
    let database = gw.db_url.split('?').next().unwrap();
    let shown = database.rsplit('/').next().unwrap();
    assert!(stderr.contains(shown), "the database is named: {stderr}");
    assert!(
        !stderr.contains(&pan) && !stderr.contains(&code),
        "no key in the message"
    );
    // The running node is untouched: its keys still find its database.
    let (ok, _, err) = gw.cli(&["apikey", "list"]);
    assert!(ok, "{err}");
}

#[test]
fn published_example_keys_are_refused() {
    let gw = Gateway::start();
    let published = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let code = random_key();
    let (status, stderr) = serve_beside(
        &gw,
        &[
            ("OTPGW_SECRETS__PAN_KEY", published),
            ("OTPGW_SECRETS__CODE_KEY", &code),
        ],
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("secrets.pan_key is a published example key"),
        "{stderr}"
    );
}

#[test]
fn a_card_command_in_an_empty_directory_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args([
            "card",
            "enroll",
            "--pan",
            "6037990000004321",
            "--msisdn",
            "09121234567",
        ])
        .current_dir(dir.path())
        .env_remove("OTPGW_CONFIG")
        .env_remove("OTPGW_DATABASE__URL")
        .stdin(Stdio::null())
        .output()
        .expect("run otpgw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
}

/// `otpgw keys init PATH` makes a 0600 key file of new keys once and keeps it on
/// every later run (the compose example's one-shot step before the nodes), and
/// refuses a key file others may read.
#[test]
fn keys_init_makes_one_key_file_and_keeps_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/otpgw.key");
    let init = || {
        let out = Command::new(bin())
            .args(["keys", "init", path.to_str().unwrap()])
            .env_remove("OTPGW_CONFIG")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = init();
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["created"], true, "{out}");
    let first = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(first.contains("pan_key = \"") && first.contains("code_key = \""));
    // Nothing else was made: no configuration or database was read or created.
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(made.len(), 1, "{made:?}");

    let (ok, out, err) = init();
    assert!(ok, "{err}");
    assert!(out.contains("\"created\":false"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "the keys were kept"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = init();
    assert!(!ok && err.contains("chmod 600"), "{err}");
}
