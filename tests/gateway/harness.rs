//! Starts the real `otpgw` binary on fresh ports and a fresh database, and talks to
//! it the way its users do: the CLI, HTTP, and a third-party SMPP client (PyPI
//! `smpplib`, driven by `tests/peers/smpp_peer.py`).
//!
//! Each gateway gets its own temporary directory holding the config, the SQLite
//! database (or, when `OTPGW_TEST_POSTGRES_URL` is set, its own fresh PostgreSQL
//! database) and the captured log, which tests grep for leaked secrets.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::wait::{wait_until, Seen, WITHIN};

pub const SHORT_CODE: &str = "30003303";

/// Tests of other features send many messages from one number quickly.
const GENEROUS_LIMITS: &str = "[limits]
msisdn = [{ count = 1000, per_secs = 60 }]
card = { count = 1000, per_secs = 1 }
unknown_sender = { count = 1000, per_secs = 1 }
peer_tps = 0
global_per_second = 0
verify_per_key_per_second = 0
guard_max_failures = 100000
card_failures_per_key = 100000
";

/// The tests' generous limits with one of them set to `value`, for a test about that
/// one limit (a test's `[limits]` table replaces the generous one whole).
pub fn generous_limits_but(key: &str, value: &str) -> String {
    let line = |l: &str| match l.split_once(" = ") {
        Some((k, _)) if k == key => format!("{key} = {value}\n"),
        _ => format!("{l}\n"),
    };
    GENEROUS_LIMITS.lines().map(line).collect()
}

pub struct Gateway {
    child: Mutex<Option<Child>>,
    pub http: SocketAddr,
    pub smpp: SocketAddr,
    /// The operations listener, when `http.admin_listen` is set.
    pub admin: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db_url: String,
    /// This gateway created its PostgreSQL database and drops it when done.
    owns_db: bool,
    log: Arc<Mutex<String>>,
    pub(crate) client: reqwest::blocking::Client,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_otpgw")
}

/// The PostgreSQL server the gateways run on (`OTPGW_TEST_POSTGRES_URL`), or `None`
/// for SQLite.
pub fn postgres_url() -> Option<String> {
    std::env::var("OTPGW_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database URL for a new gateway: a file in `dir`, or a fresh PostgreSQL database.
fn fresh_database(dir: &Path) -> String {
    match postgres_url() {
        Some(base) => crate::pg::fresh_database(&base),
        None => format!("sqlite://{}/otpgw.db", dir.display()),
    }
}

impl Gateway {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a gateway whose config is the test default plus `service_extra`, TOML
    /// appended after its `[service]` table: `[service]` keys first, then may open
    /// a `[limits]` table of its own (which replaces the tests' generous limits).
    pub fn start_with(service_extra: &str) -> Self {
        Self::start_with_env(service_extra, &[])
    }

    /// The test default config with `OTPGW_*` environment overrides.
    pub fn start_with_overrides(env: &[(&str, &str)]) -> Self {
        Self::start_with_env("", env)
    }

    /// As `start_with`, plus `OTPGW_*` environment overrides for other sections.
    pub fn start_with_env(service_extra: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = fresh_database(dir.path());
        // On a shared database the gateway refuses to invent keys: give it some.
        let keys = db_url.starts_with("postgres").then(|| {
            format!(
                "pan_key = \"{}\"\ncode_key = \"{}\"\n",
                hex::encode(rand::random::<[u8; 32]>()),
                hex::encode(rand::random::<[u8; 32]>())
            )
        });
        let mut gw = Self::start_in(dir, db_url, service_extra, keys, env);
        gw.owns_db = gw.db_url.starts_with("postgres");
        gw
    }

    /// A gateway on a database the test made (e.g. behind a proxy it controls).
    pub fn start_on(db_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = format!(
            "pan_key = \"{}\"\ncode_key = \"{}\"\n",
            hex::encode(rand::random::<[u8; 32]>()),
            hex::encode(rand::random::<[u8; 32]>())
        );
        Self::start_in(dir, db_url.to_owned(), "", Some(keys), &[])
    }

    /// A node on a fresh PostgreSQL database whose key file holds `keys` (the text
    /// of a key file, as `otpgw keys init` writes it).
    pub fn start_on_postgres_with_keys(keys: &str) -> Self {
        let base = postgres_url().expect("a PostgreSQL test");
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = crate::pg::fresh_database(&base);
        let mut gw = Self::start_in(dir, db_url, "", Some(keys.to_owned()), &[]);
        gw.owns_db = true;
        gw
    }

    /// A second node on the same database and keys as `other`.
    pub fn start_beside(other: &Gateway) -> Self {
        Self::start_beside_with(other, "")
    }

    /// A node beside `other`, its config extended as `start_with` does.
    pub fn start_beside_with(other: &Gateway, service_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = std::fs::read_to_string(other.dir.path().join("keys.toml")).expect("keys");
        Self::start_in(dir, other.db_url.clone(), service_extra, Some(keys), &[])
    }

    fn start_in(
        dir: tempfile::TempDir,
        db_url: String,
        service_extra: &str,
        keys: Option<String>,
        env: &[(&str, &str)],
    ) -> Self {
        let config = dir.path().join("otpgw.toml");
        let key_file = dir.path().join("keys.toml");
        if let Some(keys) = keys {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&key_file, keys).unwrap();
            // The gateway refuses a key file others can read.
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(
            &config,
            format!(
                r#"
[database]
url = "{db_url}"
[smpp]
listen = "127.0.0.1:0"
enquire_link_secs = 30
[[smpp.peers]]
system_id = "kannel"
password = "secret"
[[smpp.peers]]
system_id = "rxpeer"
password = "rxpass"
[http]
listen = "127.0.0.1:0"
[secrets]
key_file = "{key_file}"
[log]
format = "json"
level = "debug,sqlx=warn,hyper=info,h2=info"
[service]
short_codes = ["{SHORT_CODE}"]
sender_id = "BankOTP"
{service_extra}
{limits}
"#,
                limits = if service_extra.contains("[limits]") {
                    ""
                } else {
                    GENEROUS_LIMITS
                },
                key_file = key_file.display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["--config", config.to_str().unwrap(), "serve"]);
        cmd.envs(env.iter().copied());
        Self::spawn(cmd, dir, config, db_url)
    }

    /// `otpgw serve` with no config file in a fresh working directory: the embedded
    /// default, with only the listen ports and log format overridden by environment.
    pub fn start_embedded() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .current_dir(dir.path())
            .env("OTPGW_SMPP__LISTEN", "127.0.0.1:0")
            .env("OTPGW_HTTP__LISTEN", "127.0.0.1:0")
            .env("OTPGW_LOG__FORMAT", "json");
        let config = dir.path().join("none.toml");
        let db_url = format!("sqlite://{}/otpgw.db", dir.path().display());
        Self::spawn(cmd, dir, config, db_url)
    }

    fn spawn(mut cmd: Command, dir: tempfile::TempDir, config: PathBuf, db_url: String) -> Self {
        let mut child = cmd
            .env_remove("OTPGW_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn otpgw");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<(String, SocketAddr)>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if let (Some(msg), Some(addr)) = (v["message"].as_str(), v["addr"].as_str())
                        {
                            if let Ok(addr) = addr.parse() {
                                let _ = tx.send((msg.to_owned(), addr));
                            }
                        }
                    }
                    if std::env::var_os("OTPGW_TEST_LOG").is_some() {
                        eprintln!("{line}");
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let (mut http, mut smpp, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.is_none() || smpp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((msg, addr)) if msg == "http listening" => http = Some(addr),
                Ok((msg, addr)) if msg == "smpp listening" => smpp = Some(addr),
                // Logged before the other two.
                Ok((msg, addr)) if msg == "admin listening" => admin = Some(addr),
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("otpgw did not start; log:\n{}", log.lock().unwrap());
                }
            }
        }
        Gateway {
            child: Mutex::new(Some(child)),
            http: http.unwrap(),
            smpp: smpp.unwrap(),
            admin,
            dir,
            config,
            db_url,
            owns_db: false,
            log,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The gateway's process id (for reading its /proc status).
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().as_ref().expect("running").id()
    }

    /// The gateway's resident memory in KiB, from /proc/<pid>/status.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Waits until a log line contains `needle` (the gateway reached some state).
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_count(needle, 1);
    }

    /// Waits until `n` log lines contain `needle`.
    pub fn wait_for_log_count(&self, needle: &str, n: usize) {
        wait_until(&format!("{n} log lines with {needle:?}"), WITHIN, || {
            let found = self.log.lock().unwrap().matches(needle).count();
            if found >= n {
                Ok(())
            } else {
                Err(Seen(move |f| {
                    write!(f, "{found}; the log:\n{}", self.log())
                }))
            }
        });
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs an `otpgw` subcommand on this gateway's config; returns (success, stdout).
    /// Its output is added to the log (which tests search for secrets).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let (ok, stdout, stderr) = self.cli_with(args, &[], None);
        self.log.lock().unwrap().push_str(&stdout);
        self.log.lock().unwrap().push_str(&stderr);
        (ok, stdout, stderr)
    }

    /// As `cli`, with `env` added and `stdin` written to its standard input, and its
    /// output not added to the log.
    pub fn cli_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&[u8]>,
    ) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("OTPGW_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run otpgw");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        let out = child.wait_with_output().expect("run otpgw");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    }

    pub fn api_key(&self, role: &str) -> String {
        let (ok, out, err) = self.cli(&["apikey", "create", "--role", role]);
        assert!(ok, "apikey create failed: {err}");
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .expect("json line");
        let v: Value = serde_json::from_str(line).unwrap();
        v["key"].as_str().unwrap().to_owned()
    }

    /// A new key for each of `roles`, made in that order (the order they are listed in).
    pub fn api_keys<const N: usize>(&self, roles: [&str; N]) -> [String; N] {
        roles.map(|role| self.api_key(role))
    }

    /// This gateway with a new admin key, then a new verifier key: where most tests
    /// start.
    pub fn with_keys(self) -> (Self, String, String) {
        let [admin, verifier] = self.api_keys(["admin", "verifier"]);
        (self, admin, verifier)
    }

    /// Runs the smpplib peer with `args` (its commands) as system_id `kannel`.
    pub fn peer(&self, args: &[&str]) -> Peer {
        self.peer_as("kannel", "secret", &[], args)
    }

    /// `peer`, answering every deliver_sm with ESME_RSYSERR (8): the replies are
    /// refused.
    pub fn peer_refusing_replies(&self, args: &[&str]) -> Peer {
        self.peer_as("kannel", "secret", &["--deliver-resp-status", "8"], args)
    }

    pub fn peer_as(&self, system_id: &str, password: &str, opts: &[&str], args: &[&str]) -> Peer {
        self.run_peer(("python3", "smpp_peer.py"), system_id, password, opts, args)
    }

    /// Runs the USSD peer (npm `smpp`, `tests/peers/ussd_peer.js`) as `kannel`.
    pub fn ussd_peer(&self, args: &[&str]) -> Peer {
        self.run_peer(("node", "ussd_peer.js"), "kannel", "secret", &[], args)
    }

    /// Runs a peer script from `tests/peers` against this gateway's SMPP port.
    fn run_peer(
        &self,
        (program, script): (&str, &str),
        system_id: &str,
        password: &str,
        opts: &[&str],
        args: &[&str],
    ) -> Peer {
        let port = self.smpp.port().to_string();
        let out = Command::new(program)
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/peers")
                    .join(script),
            )
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--system-id",
                system_id,
                "--password",
                password,
            ])
            .args(["--timeout", "20"])
            .args(opts)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("run {program} {script} (see .ci/run for its install): {e}")
            });
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let events = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Peer {
            code: out.status.code(),
            events,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Sends one SMS from `msisdn` and returns the text of the reply.
    pub fn sms(&self, msisdn: &str, text: &str, coding: &str) -> String {
        let p = self.peer(&send(msisdn, text, coding, &["unbind"]));
        p.ok();
        assert_eq!(p.event("submit_sm_resp")["status"], 0, "{p:?}");
        p.event("deliver_sm")["text"]
            .as_str()
            .expect("reply text")
            .to_owned()
    }

    /// A live code for `pan`, asked for by SMS from `msisdn` (the card's last 4
    /// digits), and a wrong code in its place: (code, wrong).
    pub fn code_and_wrong(&self, msisdn: &str, pan: &str) -> (String, String) {
        let code = code_in(&self.sms(msisdn, &pan[pan.len() - 4..], "ascii"));
        let wrong = wrong_code(&code);
        (code, wrong)
    }

    /// Sends one SMS from `msisdn` without waiting for a reply: the peer's events.
    pub fn sms_no_reply(&self, msisdn: &str, text: &str) -> Peer {
        self.peer(&send(msisdn, text, "ascii", &["--no-reply", "unbind"]))
    }

    /// Kills the process with SIGKILL, as a crash or an OOM kill would: nothing is
    /// flushed, unbound or handed back.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&self) -> std::process::ExitStatus {
        let child = self.child.lock().unwrap().take().expect("running");
        sigterm(child.id());
        let mut child = Reaped(child);
        wait_until(
            "otpgw to exit after SIGTERM",
            Duration::from_secs(30),
            || child.0.try_wait().unwrap().ok_or("still running"),
        )
    }
}

/// A child process killed and reaped when the test is done with it, however the
/// test ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owns_db {
            crate::pg::drop_database(&self.db_url);
        }
    }
}

#[derive(Debug)]
pub struct Peer {
    pub code: Option<i32>,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl Peer {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "peer failed: {:?}\nstderr: {}",
            self.events,
            self.stderr
        );
        self
    }

    pub fn all(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }

    pub fn event(&self, event: &str) -> &Value {
        self.all(event)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {event} in {self:?}"))
    }
}

/// smpp_peer.py's words to send `text` from `from` to the short code in `coding`,
/// followed by `then` (options of the send, and the commands after it).
pub fn send<'a>(from: &'a str, text: &'a str, coding: &'a str, then: &[&'a str]) -> Vec<&'a str> {
    let mut words = vec![
        "send", "--from", from, "--to", SHORT_CODE, "--text", text, "--coding", coding,
    ];
    words.extend_from_slice(then);
    words
}

/// A code of the same length as `code` that is not `code` (all zeros, or 0…01).
pub fn wrong_code(code: &str) -> String {
    let zeros = "0".repeat(code.len());
    if code == zeros {
        format!("{}1", &zeros[1..])
    } else {
        zeros
    }
}

/// The 7-digit code in a reply text.
pub fn code_in(text: &str) -> String {
    let digits: Vec<String> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| s.len() == 7)
        .map(str::to_owned)
        .collect();
    assert_eq!(digits.len(), 1, "expected one code in {text:?}");
    digits[0].clone()
}
