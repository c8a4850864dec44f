//! Operators' own accounts and their administrators' changes through the real
//! binary over plain HTTP (issue 24): a signed-in operator changes their password
//! (the current one, the new one twice, the rules, none of the last five) and
//! their other sessions end; an administrator changes a role from the CLI and the
//! console, and the operator's sessions end; nobody demotes themselves or the last
//! administrator; a lock and a disabling end sessions; a key's session cannot
//! revoke its own key; sign-ins and their failures carry the source address.

use reqwest::blocking::Client;
use serde_json::Value;

use super::operators::{add, totp, uri_on, REZA_PASSWORD, SARA_PASSWORD};
use crate::harness::Gateway;

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie_of(resp: &reqwest::blocking::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// One console session of a local operator.
struct Session<'a> {
    gw: &'a Gateway,
    client: Client,
    cookie: String,
}

impl<'a> Session<'a> {
    /// Password, then TOTP: at enrolment (`uri` None) from the page's URI, else
    /// the code `offset` steps from now of `uri`. Returns the session and the URI.
    fn operator(
        gw: &'a Gateway,
        name: &str,
        password: &str,
        uri: Option<&str>,
        offset: i64,
    ) -> (Self, String) {
        let client = client();
        let resp = client
            .post(gw.url("/console/signin/operator"))
            .form(&[("name", name), ("password", password)])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 303, "{name}: password step");
        let step = cookie_of(&resp, "otpgw_signin").unwrap();
        let step_cookie = format!("otpgw_signin={step}");
        let uri = match uri {
            Some(uri) => uri.to_owned(),
            None => {
                let page = client
                    .get(gw.url("/console/signin/code"))
                    .header("cookie", &step_cookie)
                    .send()
                    .unwrap()
                    .text()
                    .unwrap();
                uri_on(&page)
            }
        };
        let resp = client
            .post(gw.url("/console/signin/code"))
            .header("cookie", &step_cookie)
            .form(&[("code", totp(&uri, offset))])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 303, "{name}: code step");
        let session = cookie_of(&resp, "otpgw_console").unwrap();
        let cookie = format!("otpgw_console={session}");
        (Self { gw, client, cookie }, uri)
    }

    fn key(gw: &'a Gateway, key: &str) -> Self {
        let (client, cookie) = gw.console_session(key);
        Self { gw, client, cookie }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.gw.url(path))
            .header("cookie", &self.cookie)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    fn alive(&self) -> bool {
        self.get("/console").0 == 200
    }

    /// Posts a form with the CSRF token of the home page.
    fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let (_, page) = self.get("/console?lang=en");
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF token") + 19;
        let csrf = page[at..at + 64].to_owned();
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        let resp = self
            .client
            .post(self.gw.url(&format!("{path}?lang=en")))
            .header("cookie", &self.cookie)
            .form(&fields)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }
}

fn operator(gw: &Gateway, name: &str) -> Value {
    let (ok, out, err) = gw.cli(&["operator", "list"]);
    assert!(ok, "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap()
        .clone()
}

/// The console's audit page for one kind (as an admin session sees it).
fn audit(admin: &Session, kind: &str) -> String {
    admin.get(&format!("/console/audit?lang=en&kind={kind}")).1
}

#[test]
fn an_operator_changes_their_password_and_their_other_sessions_end() {
    let gw = Gateway::start();
    assert!(add(&gw, "sara", "admin", SARA_PASSWORD).0);
    let (first, uri) = Session::operator(&gw, "sara", SARA_PASSWORD, None, 0);
    let (second, _) = Session::operator(&gw, "sara", SARA_PASSWORD, Some(&uri), 1);
    let (status, page) = second.get("/console/password?lang=en");
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"change-password\"") && page.contains("nav-password"),
        "{page}"
    );
    let new = "A brand new passphrase 2";
    let change = |current: &str, new: &str, again: &str| {
        second.post(
            "/console/password",
            &[("current", current), ("new", new), ("again", again)],
        )
    };
    let (status, page) = change("Not the password 1", new, new);
    assert_eq!(status, 400);
    assert!(page.contains("The current password is wrong."), "{page}");
    let (status, page) = change(SARA_PASSWORD, new, "A brand new passphrase 3");
    assert_eq!(status, 400);
    assert!(page.contains("The two new passwords differ."), "{page}");
    let (status, page) = change(SARA_PASSWORD, "short 1", "short 1");
    assert_eq!(status, 400);
    assert!(page.contains("at least 12 characters"), "{page}");
    let (status, page) = change(SARA_PASSWORD, SARA_PASSWORD, SARA_PASSWORD);
    assert_eq!(status, 400);
    assert!(page.contains("one of this operator's last 5"), "{page}");
    assert!(first.alive(), "refusals end nothing");
    let (status, page) = change(SARA_PASSWORD, new, new);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your password was changed."), "{page}");
    // This session stays; the other one has ended.
    assert!(second.alive());
    assert!(!first.alive(), "the other session ended");
    // The old password no longer signs in; the new one does.
    let resp = client()
        .post(gw.url("/console/signin/operator"))
        .form(&[("name", "sara"), ("password", SARA_PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client()
        .post(gw.url("/console/signin/operator"))
        .form(&[("name", "sara"), ("password", new)])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 303);
    // Audited; the failed sign-in and the sign-ins carry the source address.
    assert!(audit(&second, "operator_password_changed").contains("operator:sara"));
    let failed = audit(&second, "console_sign_in_failed");
    assert!(
        failed.contains("operator:sara") && failed.contains("127.0.0.1"),
        "{failed}"
    );
    let signed_in = audit(&second, "console_signed_in");
    assert!(signed_in.contains("127.0.0.1"), "{signed_in}");
    // An API key has no password here.
    let key = Session::key(&gw, &gw.api_key("admin"));
    assert_eq!(key.get("/console/password").0, 403);
    for secret in [SARA_PASSWORD, new] {
        assert!(!gw.log().contains(secret), "a password in the log");
    }
}

#[test]
fn role_changes_locks_and_disabling_end_sessions_and_the_last_admin_stays() {
    let gw = Gateway::start();
    assert!(add(&gw, "sara", "admin", SARA_PASSWORD).0);
    assert!(add(&gw, "reza", "helpdesk", REZA_PASSWORD).0);

    // The CLI: the last enabled admin is not demoted; another operator is promoted.
    let (ok, _, err) = gw.cli(&["operator", "role", "sara", "--role", "helpdesk"]);
    assert!(!ok && err.contains("last enabled administrator"), "{err}");
    let (ok, _, err) = gw.cli(&["operator", "role", "reza", "--role", "admin"]);
    assert!(ok, "{err}");
    assert_eq!(operator(&gw, "reza")["role"], "admin");

    let (sara, _) = Session::operator(&gw, "sara", SARA_PASSWORD, None, 0);
    let (reza, reza_uri) = Session::operator(&gw, "reza", REZA_PASSWORD, None, 0);
    assert!(reza
        .get("/console/operators?lang=en")
        .1
        .contains("role-sara"));
    // Not oneself; the console demotes reza and his session ends.
    let (status, _) = sara.post("/console/operators/sara/role", &[("role", "helpdesk")]);
    assert_eq!(status, 403);
    let (status, _) = sara.post("/console/operators/reza/role", &[("role", "helpdesk")]);
    assert_eq!(status, 303);
    assert_eq!(operator(&gw, "reza")["role"], "helpdesk");
    assert!(!reza.alive(), "a role change ends the sessions");
    assert!(sara.alive());
    // An API-key admin cannot demote the last operator admin.
    let key_admin = Session::key(&gw, &gw.api_key("admin"));
    let (status, page) = key_admin.post("/console/operators/sara/role", &[("role", "helpdesk")]);
    assert_eq!(status, 409);
    assert!(page.contains("cannot be disabled or demoted"), "{page}");
    let changed = audit(&sara, "operator_role_changed");
    assert!(
        changed.contains("operator:sara") && changed.contains("cli"),
        "{changed}"
    );

    // Five failures lock reza, and end the session he still had.
    let (reza, _) = Session::operator(&gw, "reza", REZA_PASSWORD, Some(&reza_uri), 1);
    assert!(reza.alive());
    for _ in 0..5 {
        let resp = client()
            .post(gw.url("/console/signin/operator"))
            .form(&[("name", "reza"), ("password", "Not his password 1")])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert!(operator(&gw, "reza")["locked_at"].is_i64());
    assert!(!reza.alive(), "a lock ends the sessions");

    // Reset (new password, TOTP again), sign in, then disabling ends the session.
    let line = "Another long passphrase 4\n";
    let (ok, _, err) = gw.cli_with(
        &["operator", "reset", "reza", "--password-stdin"],
        &[],
        Some(line.as_bytes()),
    );
    assert!(ok, "{err}");
    let (reza, _) = Session::operator(&gw, "reza", line.trim_end(), None, 0);
    assert!(reza.alive());
    let (status, _) = sara.post("/console/operators/reza/disable", &[]);
    assert_eq!(status, 303);
    assert!(!reza.alive(), "disabling ends the sessions");

    // A key's session cannot revoke its own key (the newest one).
    let newest = gw.api_key("admin");
    let (_, keys) = gw.get(&newest, "/v1/apikeys");
    let own = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["id"].as_i64())
        .max()
        .unwrap();
    let mine = Session::key(&gw, &newest);
    let (status, page) = mine.post(&format!("/console/keys/{own}/revoke"), &[]);
    assert_eq!(status, 403);
    assert!(page.contains("cannot do this to yourself"), "{page}");

    // A direct console action (no two-person rule here) carries the source too.
    let id = gw.enroll_id(&newest, crate::cards::D, "989121110720");
    let (status, _) = sara.post(
        &format!("/console/cards/{id}/close"),
        &[("reason", "asked")],
    );
    assert_eq!(status, 303);
    let events = gw.events(&newest, id);
    let closed = events.iter().find(|e| e["kind"] == "closed").unwrap();
    assert_eq!(closed["actor"], "operator:sara");
    assert_eq!(closed["detail"]["source"], "127.0.0.1");
}
