//! Single sign-on through a real, certified OpenID provider (npm oidc-provider,
//! `tests/peers/oidc_idp.js`) at `http://localhost:P`, another site than the
//! console at `http://127.0.0.1:Q`, as in a bank: the help desk and an admin get
//! their role from the `groups` claim, someone outside the groups is refused,
//! tampered ID tokens (audience, expiry, signature) are refused, a key rotation is
//! followed, the audit names `oidc:SUBJECT` with the name, an administrator revokes
//! such a session, sign-out goes on to the provider; a callback without its sign-in (cookie, state) is refused and a
//! sign-in serves once; `[console.oidc]` is checked and its secret never shown.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::db::Db;
use crate::harness::Gateway;

const CLIENT_ID: &str = "otpgw-console";
const CLIENT_SECRET: &str = "console-client-secret-7f3a";

fn peers() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The identity provider's process, killed when dropped.
struct Idp {
    child: Child,
    issuer: String,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now, for the console whose URL the provider must know first.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_idp(console: &str) -> Idp {
    let mut child = Command::new("node")
        .arg(peers().join("oidc_idp.js"))
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
        .args(["--redirect", &format!("{console}/console/oidc/callback")])
        .args(["--post-logout", &format!("{console}/console/signin")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node oidc_idp.js (see .ci/run: npm ci --prefix tests/peers)");
    let mut line = String::new();
    // The script prints its issuer once it listens (or exits, closing stdout).
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = serde_json::from_str::<Value>(&line)
        .unwrap_or_else(|_| panic!("oidc_idp.js said {line:?}"))["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    Idp { child, issuer }
}

/// A gateway whose console signs in through a fresh provider (the client secret
/// from the environment, as a bank would give it).
fn start() -> (Gateway, Idp) {
    let port = free_port();
    let console = format!("http://127.0.0.1:{port}");
    let idp = start_idp(&console);
    let extra = format!(
        "[console]\npublic_url = \"{console}\"\n[console.oidc]\nissuer = \"{}\"\n\
         client_id = \"{CLIENT_ID}\"\nadmin = [\"otp-admins\"]\nhelpdesk = [\"otp-helpdesk\"]\n",
        idp.issuer
    );
    let listen = format!("127.0.0.1:{port}");
    let gw = Gateway::start_with_env(
        &extra,
        &[
            ("OTPGW_HTTP__LISTEN", listen.as_str()),
            ("OTPGW_CONSOLE__OIDC__CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    (gw, idp)
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn events(gw: &Gateway, kind: &str, actor: &str, detail: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM events WHERE kind = $1 AND actor = $2 AND detail LIKE $3";
    Db::of(gw).integer(sql, &[kind, actor, &format!("%{detail}%")])
}

#[test]
fn single_sign_on_in_a_browser() {
    let (gw, idp) = start();
    let shots = std::env::var("OTPGW_CONSOLE_SHOTS").ok();
    let tmp = tempfile::tempdir().unwrap();
    let shots_dir = match &shots {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&shots_dir).unwrap();
    let out = Command::new("node")
        .arg(peers().join("oidc_e2e.js"))
        .args(["--url", &gw.url(""), "--issuer", &idp.issuer])
        .args(["--shots", shots_dir.to_str().unwrap()])
        .output()
        .expect("node oidc_e2e.js (see .ci/run: npm ci --prefix tests/peers, chromium)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let says = |v: &Value, part: &str| {
        let text = v.as_str().unwrap_or_default();
        assert!(text.contains(part), "{part:?} not in {text:?}");
    };

    assert_eq!(seen["sso_link"], 1);
    // The help desk: its role from the groups claim, no administrators' pages. The
    // callback answers 200 (then the page moves on), under the Lax sign-in cookie;
    // the session's cookie is the Strict one.
    let hana = &seen["hana"];
    assert_eq!(hana["callback_status"], 200);
    says(&hana["who"], "Hana Karimi (help desk)");
    assert_eq!(hana["keys_link"], 0);
    assert_eq!(hana["operators_link"], 0);
    assert_eq!(hana["login_cookie"]["httpOnly"], true);
    assert_eq!(hana["login_cookie"]["sameSite"], "Lax");
    assert_eq!(hana["login_cookie"]["path"], "/console/oidc");
    assert_eq!(hana["session_cookie"]["sameSite"], "Strict");
    // The same callback again (with its cookie), or in another browser: refused.
    assert_eq!(seen["replay_status"], 400);
    assert_eq!(seen["stolen_status"], 400);
    says(&seen["stolen_says"], "sign-in has ended");
    // The admin.
    says(&seen["omid"]["who"], "Omid Rahimi (administrator)");
    assert_eq!(seen["omid"]["keys_link"], 1);
    assert_eq!(seen["omid"]["operators_link"], 1);
    // Outside the groups: refused, in both languages.
    assert_eq!(seen["nima"]["status"], 403);
    says(&seen["nima"]["says"], "no role in this console");
    assert_eq!(seen["nima_fa"]["status"], 403);
    says(&seen["nima_fa"]["says"], "نقشی ندارد");
    // Tampered ID tokens: each refused, no session.
    for mode in ["aud", "exp", "sig"] {
        let t = &seen[format!("tampered_{mode}")];
        assert_eq!(t["status"], 401, "{mode}: {t}");
        says(&t["says"], "answer was refused");
        assert_eq!(t["session"], 0, "{mode}");
    }
    // A token signed with a key the kept JWKS lacks: fetched again, accepted.
    says(&seen["rotated"]["who"], "Omid Rahimi (administrator)");
    // Another unknown key within the minute: the JWKS is not fetched again (a stream
    // of bad tokens cannot make us hammer the provider), and the token is refused.
    assert_eq!(seen["rotated_again"]["status"], 401);
    assert_eq!(seen["rotated_again"]["jwks_fetched"], 0);
    // The administrators' session list shows the people from the provider.
    let sessions = seen["sessions"].to_string();
    assert!(sessions.contains("oidc:hana"), "{sessions}");
    assert!(sessions.contains("oidc:omid"), "{sessions}");
    // The audit: the subject as the actor, the name beside it; each refusal.
    let audit = seen["audit"].to_string();
    assert!(audit.contains("oidc:hana"), "{audit}");
    assert_eq!(
        events(&gw, "console_signed_in", "oidc:hana", "Hana Karimi"),
        2
    );
    // An administrator revoked the newer of hana's sessions: it ended at once.
    assert_eq!(seen["revoked_home"], "/console/signin");
    // An action after the sign-in carries the person's name too, as does every
    // event a person from the provider caused.
    assert_eq!(
        events(
            &gw,
            "console_session_revoked",
            "oidc:omid",
            "\"name\":\"Omid Rahimi\""
        ),
        1
    );
    let unnamed =
        "SELECT COUNT(*) FROM events WHERE actor LIKE 'oidc:%' AND detail NOT LIKE '%\"name\":%'";
    assert_eq!(Db::of(&gw).integer(unnamed, &[]), 0);
    assert_eq!(
        events(&gw, "console_signed_in", "oidc:omid", "\"role\":\"admin\""),
        2
    );
    assert_eq!(
        events(&gw, "console_signin_refused", "oidc:nima", "no_role"),
        2
    );
    // (`signature`: the flipped byte, and the second unknown key.)
    for (reason, count) in [("audience", 1), ("expired", 1), ("signature", 2)] {
        let refusals = events(&gw, "console_signin_refused", "oidc", reason);
        assert_eq!(refusals, count, "{reason}");
    }
    // No token in the audit or the log.
    let details = Db::of(&gw).integer("SELECT COUNT(*) FROM events WHERE detail LIKE '%eyJ%'", &[]);
    assert_eq!(details, 0);
    let log = gw.log();
    assert!(!log.contains("eyJ"), "a token in the log");
    assert!(!log.contains(CLIENT_SECRET), "the client secret in the log");
    // Sign-out: ended here, then at the provider, back on the sign-in page.
    assert_eq!(seen["signout_status"], 200);
    says(&seen["signout_to"], &format!("{}/session/end", idp.issuer));
    says(&seen["signout_to"], "post_logout_redirect_uri=");
    assert_eq!(seen["after_signout"], "/console/signin");
    assert_eq!(seen["after_signout_home"], "/console/signin");
}

#[test]
fn a_callback_without_its_sign_in_is_refused_and_a_sign_in_serves_once() {
    let (gw, idp) = start();
    let http = client();
    // Off to the provider: code flow, PKCE S256, state and nonce, the redirect URI
    // on public_url; the sign-in's cookie is Lax, HttpOnly, under /console/oidc.
    let login = || {
        let resp = http.get(gw.url("/console/oidc/login")).send().unwrap();
        assert_eq!(resp.status(), 303);
        let to = resp.headers()["location"].to_str().unwrap().to_owned();
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        (to, cookie)
    };
    let (to, cookie) = login();
    assert!(to.starts_with(&format!("{}/auth?", idp.issuer)), "{to}");
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid+profile+groups",
    ] {
        assert!(to.contains(part), "{part} not in {to}");
    }
    let redirect = format!("{}/console/oidc/callback", gw.url(""));
    let encoded: String = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
    assert!(to.contains(&format!("redirect_uri={encoded}")), "{to}");
    for part in [
        "otpgw_oidc=",
        "Path=/console/oidc",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(part), "{part} not in {cookie}");
    }
    let state = url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let value = cookie.split(';').next().unwrap().to_owned();
    let callback = |query: &str, cookie: Option<&str>| {
        let mut req = http.get(gw.url(&format!("/console/oidc/callback?lang=en&{query}")));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().unwrap();
        let set = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        (resp.status().as_u16(), set, resp.text().unwrap())
    };
    // No cookie: refused, whatever the state.
    let right = format!("state={state}&code=whatever");
    let (status, set, page) = callback(&right, None);
    assert_eq!(status, 400);
    assert!(page.contains("sign-in has ended"), "{page}");
    assert!(!set
        .iter()
        .any(|c| c.starts_with("otpgw_console=") && !c.starts_with("otpgw_console=;")));
    // The cookie with another state: refused, and the sign-in is gone with it.
    let (status, set, _) = callback("state=not-the-state&code=whatever", Some(&value));
    assert_eq!(status, 400);
    assert!(set.iter().any(|c| c.starts_with("otpgw_oidc=;")), "{set:?}");
    let (status, _, _) = callback(&right, Some(&value));
    assert_eq!(status, 400, "a sign-in serves once");
    // No state at all.
    let (_, cookie) = login();
    let value = cookie.split(';').next().unwrap().to_owned();
    let (status, _, _) = callback("code=whatever", Some(&value));
    assert_eq!(status, 400);
    // A cookie that names no sign-in.
    let unknown = format!("otpgw_oidc={}", "ab".repeat(32));
    assert_eq!(callback(&right, Some(&unknown)).0, 400);
    // No session was made by any of these.
    let sessions = Db::of(&gw).integer("SELECT COUNT(*) FROM console_sessions", &[]);
    assert_eq!(sessions, 0);
}

#[test]
fn oidc_settings_are_checked_and_the_client_secret_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("otpgw.toml");
    let check = |toml: &str| {
        std::fs::write(&config, toml).unwrap();
        let out = Command::new(crate::harness::bin())
            .args(["--config", config.to_str().unwrap(), "check-config"])
            .env_remove("OTPGW_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let oidc = |issuer: &str| {
        format!(
            "[console.oidc]\nissuer = \"{issuer}\"\nclient_id = \"otpgw\"\n\
             client_secret = \"{CLIENT_SECRET}\"\nadmin = [\"otp-admins\"]\n"
        )
    };
    // Without public_url: refused, naming it.
    let (ok, _, err) = check(&oidc("https://idp.bank.example"));
    assert!(!ok && err.contains("public_url"), "{err}");
    // A bad issuer, a bad public_url: refused.
    let public = "[console]\npublic_url = \"https://otp.bank.example\"\n";
    for issuer in ["idp.bank.example", "http://idp.bank.example", "ftp://idp"] {
        let (ok, _, err) = check(&format!("{public}{}", oidc(issuer)));
        assert!(!ok && err.contains("oidc.issuer"), "{issuer}: {err}");
    }
    let (ok, _, err) = check("[console]\npublic_url = \"otp.bank.example/x?y\"\n");
    assert!(!ok && err.contains("public_url"), "{err}");
    // Good: shown with its defaults, the secret masked.
    let (ok, out, err) = check(&format!("{public}{}", oidc("https://idp.bank.example")));
    assert!(ok, "{err}");
    assert!(!out.contains(CLIENT_SECRET), "{out}");
    assert!(out.contains("client_secret = \"***\""), "{out}");
    assert!(out.contains("roles_claim = \"groups\""), "{out}");
    assert!(
        out.contains("scopes = [") && out.contains("\"profile\""),
        "{out}"
    );
}
