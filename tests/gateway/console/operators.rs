//! Local console operators through the real binary (issue 24): the CLI adds,
//! lists, disables, enables and resets them with clear refusals (password rules,
//! the last admin); an operator signs in over plain HTTP with password and TOTP
//! (enrolment at the first sign-in from the `otpauth://` URI on the page), under a
//! new session id; a code verifies once; an unknown name and a wrong password get
//! the same answer after similar work; five failures lock; the audit names the
//! operator. The browser test of the same is `operators_in_a_browser`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use crate::harness::Gateway;
use otpgw_rules::tokens::{hotp, parse_secret, Hash};

pub const SARA_PASSWORD: &str = "Her long passphrase 1";
pub const REZA_PASSWORD: &str = "at the help desk since 2019";

/// Adds an operator with the CLI; returns (success, stdout, stderr).
pub fn add(gw: &Gateway, name: &str, role: &str, password: &str) -> (bool, String, String) {
    let line = format!("{password}\n");
    gw.cli_with(
        &["operator", "add", name, "--role", role, "--password-stdin"],
        &[],
        Some(line.as_bytes()),
    )
}

fn list(gw: &Gateway) -> Vec<Value> {
    let (ok, out, err) = gw.cli(&["operator", "list"]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn operator(gw: &Gateway, name: &str) -> Value {
    list(gw).into_iter().find(|o| o["name"] == name).unwrap()
}

/// The TOTP code of `secret` (from an `otpauth://` URI) at `offset` steps from now.
pub fn totp(uri: &str, offset: i64) -> String {
    let secret = uri
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap();
    let key = parse_secret(secret).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    hotp(Hash::Sha1, &key, (now / 30 + offset) as u64, 6)
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the cookie `name` a response sets.
fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

struct SignIn<'a> {
    gw: &'a Gateway,
    client: Client,
}

impl<'a> SignIn<'a> {
    fn new(gw: &'a Gateway) -> Self {
        Self {
            gw,
            client: client(),
        }
    }

    /// The password step: the status, the body, and the step cookie if any.
    fn password(&self, name: &str, password: &str) -> (u16, String, Option<String>) {
        let resp = self
            .client
            .post(self.gw.url("/console/signin/operator?lang=en"))
            .form(&[("name", name), ("password", password)])
            .send()
            .unwrap();
        let (status, step) = (resp.status().as_u16(), set_cookie(&resp, "otpgw_signin"));
        (status, resp.text().unwrap(), step)
    }

    fn code_page(&self, step: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.gw.url("/console/signin/code?lang=en"))
            .header("cookie", format!("otpgw_signin={step}"))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    /// The code step: the status, the body and the session cookie if any.
    fn code(&self, step: &str, code: &str) -> (u16, String, Option<String>) {
        let resp = self
            .client
            .post(self.gw.url("/console/signin/code?lang=en"))
            .header("cookie", format!("otpgw_signin={step}"))
            .form(&[("code", code)])
            .send()
            .unwrap();
        let (status, session) = (resp.status().as_u16(), set_cookie(&resp, "otpgw_console"));
        (
            status,
            resp.text().unwrap(),
            session.filter(|s| !s.is_empty()),
        )
    }

    fn get(&self, session: &str, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.gw.url(path))
            .header("cookie", format!("otpgw_console={session}"))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    fn post(&self, session: &str, path: &str, form: &[(&str, &str)]) -> u16 {
        let resp = self
            .client
            .post(self.gw.url(path))
            .header("cookie", format!("otpgw_console={session}"))
            .form(form)
            .send()
            .unwrap();
        resp.status().as_u16()
    }
}

/// The `otpauth://` URI shown as text on the enrolment page.
pub fn uri_on(page: &str) -> String {
    let start = page.find("otpauth://").expect("the URI on the page");
    page[start..]
        .split('<')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

fn csrf_on(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[at..at + 64].to_owned()
}

#[test]
fn operators_from_the_cli_with_clear_refusals() {
    let gw = Gateway::start();
    // Each password rule says what is wrong.
    for (password, says) in [
        ("Short 1", "at least 12 characters"),
        ("alllowercaseletters", "two kinds of character"),
        ("Sara-at-the-bank-1", "must not contain the operator's name"),
    ] {
        let (ok, _, err) = add(&gw, "sara", "admin", password);
        assert!(!ok && err.contains(says), "{password}: {err}");
    }
    let (ok, _, err) = add(&gw, "Sara", "admin", SARA_PASSWORD);
    assert!(!ok && err.contains("lower-case"), "{err}");
    let (ok, _, err) = gw.cli_with(&["operator", "add", "sara", "--role", "admin"], &[], None);
    assert!(!ok && err.contains("--password-stdin"), "{err}");
    let (ok, out, err) = add(&gw, "sara", "admin", SARA_PASSWORD);
    assert!(ok, "{err}");
    let sara: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sara["role"], "admin");
    assert_eq!(sara["totp_enrolled"], false);
    assert!(!out.contains("argon2"), "no hash printed: {out}");
    let (ok, _, err) = add(&gw, "sara", "helpdesk", SARA_PASSWORD);
    assert!(!ok && err.contains("exists"), "{err}");
    assert!(add(&gw, "reza", "helpdesk", REZA_PASSWORD).0);

    // The last enabled admin is not disabled; a help-desk operator is.
    let (ok, _, err) = gw.cli(&["operator", "disable", "sara"]);
    assert!(!ok && err.contains("last enabled administrator"), "{err}");
    assert!(gw.cli(&["operator", "disable", "reza"]).0);
    assert!(operator(&gw, "reza")["disabled_at"].is_i64());
    assert!(gw.cli(&["operator", "enable", "reza"]).0);
    assert!(operator(&gw, "reza")["disabled_at"].is_null());

    // A reset takes none of the last five passwords.
    let reset = |password: &str| {
        let line = format!("{password}\n");
        gw.cli_with(
            &["operator", "reset", "reza", "--password-stdin"],
            &[],
            Some(line.as_bytes()),
        )
    };
    let (ok, _, err) = reset(REZA_PASSWORD);
    assert!(!ok && err.contains("last 5"), "{err}");
    for n in 1..=5 {
        let (ok, _, err) = reset(&format!("another passphrase {n}"));
        assert!(ok, "{err}");
    }
    // Five resets later the first password is the sixth last: allowed again; the
    // new ones (the last five) are not.
    let (ok, _, err) = reset("another passphrase 1");
    assert!(!ok && err.contains("last 5"), "{err}");
    assert!(reset(REZA_PASSWORD).0);

    let (_, _, err) = gw.cli(&["operator", "list"]);
    let log = gw.log();
    for secret in [SARA_PASSWORD, REZA_PASSWORD, "$argon2"] {
        assert!(
            !log.contains(secret) && !err.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn an_operator_signs_in_with_password_and_totp_and_is_locked_after_five_failures() {
    let gw = Gateway::start();
    assert!(add(&gw, "sara", "admin", SARA_PASSWORD).0);
    assert!(add(&gw, "reza", "helpdesk", REZA_PASSWORD).0);
    let s = SignIn::new(&gw);

    // An unknown name and a wrong password: the same page and status, after
    // similar work (the unknown name's dummy Argon2 hash).
    let timed = |name: &str| {
        let t = Instant::now();
        let answer = s.password(name, "Not the password 9");
        (answer, t.elapsed())
    };
    let mut times = [Duration::ZERO; 2];
    for _ in 0..3 {
        let ((st_unknown, body_unknown, c1), t_unknown) = timed("nobody");
        let ((st_known, body_known, c2), t_known) = timed("sara");
        assert_eq!((st_unknown, c1), (401, None));
        assert_eq!((st_known, c2), (401, None));
        assert_eq!(body_unknown, body_known);
        times[0] += t_unknown;
        times[1] += t_known;
    }
    eprintln!(
        "sign-in refusal: unknown name {:?}, wrong password {:?} (3 each)",
        times[0], times[1]
    );
    assert!(
        times[0] * 4 > times[1],
        "the unknown name answered much faster: {times:?}"
    );
    // Those three failures count for sara; a success clears them.
    assert_eq!(operator(&gw, "sara")["failed_signins"], 3);

    // The first sign-in enrols: the URI as text and its QR code.
    let (status, _, step) = s.password("sara", SARA_PASSWORD);
    assert_eq!(status, 303);
    let step = step.unwrap();
    let (status, page) = s.code_page(&step);
    assert_eq!(status, 200);
    let uri = uri_on(&page);
    assert!(
        uri.starts_with("otpauth://totp/otpgw:sara?secret="),
        "{uri}"
    );
    assert!(page.contains("<svg"), "the QR code inline");
    // The step's id is no session.
    assert_eq!(s.get(&step, "/console").0, 303);
    let (status, _, none) = s.code(&step, "000000");
    assert_eq!((status, none), (401, None));
    let (status, _, session) = s.code(&step, &totp(&uri, 0));
    assert_eq!(status, 303);
    let session = session.expect("a session cookie");
    assert_ne!(session, step, "a new id at sign-in");
    let (status, home) = s.get(&session, "/console?lang=en");
    assert_eq!(status, 200);
    assert!(
        home.contains("sara") && home.contains("(administrator)"),
        "{home}"
    );
    let sara = operator(&gw, "sara");
    assert_eq!(
        (
            sara["totp_enrolled"].clone(),
            sara["failed_signins"].clone()
        ),
        (true.into(), 0.into())
    );

    // The next sign-in asks for a code; the one just used does not verify again.
    let (_, _, step2) = s.password("sara", SARA_PASSWORD);
    let step2 = step2.unwrap();
    assert!(!s.code_page(&step2).1.contains("otpauth://"));
    assert_eq!(
        s.code(&step2, &totp(&uri, 0)).0,
        401,
        "a code verifies once"
    );
    let (status, _, second) = s.code(&step2, &totp(&uri, 1));
    assert_eq!(status, 303);
    let second = second.unwrap();

    // The audit names the operator; she cannot disable herself nor revoke her own
    // session, and disables reza.
    let (_, audit) = s.get(&second, "/console/audit?lang=en&actor=operator:sara");
    assert!(audit.contains("console_signed_in"), "{audit}");
    let (_, ops_page) = s.get(&second, "/console/operators?lang=en");
    let csrf = csrf_on(&ops_page);
    assert_eq!(
        s.post(
            &second,
            "/console/operators/sara/disable",
            &[("csrf", &csrf)]
        ),
        403
    );
    let own = otpgw_rules::codes::api_key_hash(&second);
    assert_eq!(
        s.post(
            &second,
            "/console/sessions/revoke",
            &[("csrf", &csrf), ("session", &own)]
        ),
        403
    );
    // Her first session is another: it may be revoked, and then is gone.
    let first = otpgw_rules::codes::api_key_hash(&session);
    assert_eq!(
        s.post(
            &second,
            "/console/sessions/revoke",
            &[("csrf", &csrf), ("session", &first)]
        ),
        303
    );
    assert_eq!(s.get(&session, "/console").0, 303);
    assert_eq!(
        s.post(
            &second,
            "/console/operators/reza/disable",
            &[("csrf", &csrf)]
        ),
        303
    );
    let (_, audit) = s.get(&second, "/console/audit?lang=en&kind=operator_disabled");
    assert!(audit.contains("operator:sara"), "{audit}");
    assert_eq!(
        s.post(
            &second,
            "/console/operators/reza/enable",
            &[("csrf", &csrf)]
        ),
        303
    );

    // Five failures in a row lock reza: then even the right password is refused,
    // with the same answer, until an admin enables him.
    for _ in 0..5 {
        assert_eq!(s.password("reza", "Wrong password 12").0, 401);
    }
    let (status, body, step) = s.password("reza", REZA_PASSWORD);
    assert_eq!((status, step), (401, None));
    assert!(body.contains("Wrong name or password"), "{body}");
    assert!(operator(&gw, "reza")["locked_at"].is_i64());
    let (_, audit) = s.get(&second, "/console/audit?lang=en&kind=operator_locked");
    assert!(audit.contains("operator:reza"), "{audit}");
    assert!(gw.cli(&["operator", "enable", "reza"]).0);
    let (status, _, step) = s.password("reza", REZA_PASSWORD);
    assert_eq!(status, 303);
    // Wrong codes count too: four now, and the fifth ends the step.
    let step = step.unwrap();
    for _ in 0..4 {
        assert_eq!(s.code(&step, "000000").0, 401);
    }
    let (status, body, _) = s.code(&step, "000000");
    assert_eq!(status, 401);
    assert!(body.contains("This sign-in has ended"), "{body}");
    assert!(operator(&gw, "reza")["locked_at"].is_i64());

    let log = gw.log();
    for secret in [
        SARA_PASSWORD,
        REZA_PASSWORD,
        &uri[uri.find("secret=").unwrap() + 7..][..32],
    ] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[test]
fn operators_in_a_browser() {
    let gw = Gateway::start();
    assert!(add(&gw, "sara", "admin", SARA_PASSWORD).0);
    assert!(add(&gw, "reza", "helpdesk", REZA_PASSWORD).0);
    let key = gw.api_key("admin");
    let shots = std::env::var("OTPGW_CONSOLE_SHOTS").ok();
    let tmp = tempfile::tempdir().unwrap();
    let shots_dir = match &shots {
        Some(dir) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&shots_dir).unwrap();
    let out = std::process::Command::new("node")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/operators_e2e.js"))
        .args(["--url", &gw.url("")])
        .args(["--admin", "sara", "--admin-password", SARA_PASSWORD])
        .args(["--helpdesk", "reza", "--helpdesk-password", REZA_PASSWORD])
        .args(["--key", &key])
        .args(["--shots", shots_dir.to_str().unwrap()])
        .output()
        .expect("node operators_e2e.js (see .ci/run: npm ci --prefix tests/peers, chromium)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let says = |field: &str, part: &str| {
        let text = seen[field].as_str().unwrap_or_default();
        assert!(text.contains(part), "{field}: {text}");
    };

    // The first sign-in: password, then the URI as text beside its QR code, then a
    // code computed from it; a session cookie like the API key's.
    assert_eq!(seen["enrol_path"], "/console/signin/code");
    assert_eq!(seen["uri_prefix"], "otpauth://totp/otpgw:sara");
    assert_eq!(seen["qr_svg"], 1);
    assert_eq!(seen["admin_home"], "/console");
    says("admin_who", "sara (administrator)");
    assert_eq!(seen["session_cookie"]["httpOnly"], true);
    assert_eq!(seen["session_cookie"]["sameSite"], "Strict");
    // Not oneself: no disabling, and one's own session has no revoke button.
    assert_eq!(seen["disable_self_status"], 403);
    says("disable_self_says", "cannot do this to yourself");
    assert_eq!(seen["own_session_row"], 1);
    // Five wrong passwords lock; then the right one gets the same answer, until the
    // admin enables; the help desk then enrols and has no operators page.
    says("wrong_says", "Wrong name or password");
    assert_eq!(
        seen["locked_right_password_path"],
        "/console/signin/operator"
    );
    assert_eq!(seen["locked_says"], seen["wrong_says"]);
    says("desk_state_locked", "locked");
    assert_eq!(seen["desk_state_enabled"], "enabled");
    assert_eq!(seen["desk_home"], "/console");
    assert_eq!(seen["desk_operators_link"], 0);
    assert_eq!(seen["desk_operators_status"], 403);
    // The last enabled admin is not disabled, by an API-key admin either.
    assert_eq!(seen["last_admin_status"], 409);
    says("last_admin_says", "last enabled administrator");
    // The audit names each person.
    let audit: Vec<&str> = seen["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let has = |kind: &str, actor: &str| audit.iter().any(|r| r.contains(kind) && r.contains(actor));
    assert!(has("console_signed_in", "operator:sara"), "{audit:?}");
    assert!(has("console_signed_in", "operator:reza"), "{audit:?}");
    assert!(has("operator_locked", "operator:reza"), "{audit:?}");
    assert!(has("operator_enabled", "operator:sara"), "{audit:?}");
    assert!(has("operator_added", "cli"), "{audit:?}");
    assert_eq!(seen["leaks"], serde_json::json!([]), "secrets on a page");
}
