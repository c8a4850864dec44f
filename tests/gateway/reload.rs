//! Reload (issue 22): SIGHUP, `otpgw reload` and `POST /v1/admin/reload` read the
//! file again and apply peers, limits, policy, texts and the log level live. A
//! bound peer the change does not concern keeps its session and its codes; a
//! removed peer's session is unbound; operator connections are added, removed or
//! rebound alone; an invalid file changes nothing.

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use crate::cards;
use crate::harness::{code_in, Gateway, SHORT_CODE};
use crate::smsc::Smsc;

/// A peer that stays bound while the test works: its steps run up to
/// `wait-stdin`, then wait for `go_on`.
struct BoundPeer {
    child: Child,
    out: Lines<BufReader<ChildStdout>>,
}

impl BoundPeer {
    fn start(gw: &Gateway, system_id: &str, password: &str, steps: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smpp_peer.py"))
            .args(["--host", "127.0.0.1", "--port", &gw.smpp.port().to_string()])
            .args(["--system-id", system_id, "--password", password])
            .args(["--timeout", "30"])
            .args(steps)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 smpp_peer.py");
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, out }
    }

    /// The next event named `event` (the peer's own timeouts bound the wait).
    fn next(&mut self, event: &str) -> Value {
        for line in self.out.by_ref() {
            let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
            assert_ne!(v["event"], "error", "peer failed: {v}");
            if v["event"] == event {
                return v;
            }
        }
        panic!("the peer ended before {event}");
    }

    fn go_on(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "peer exited with {status}");
    }
}

fn ask(from: &str, text: &str) -> Vec<String> {
    [
        "send", "--from", from, "--to", SHORT_CODE, "--text", text, "--coding", "ascii",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn edit_config(gw: &Gateway, edit: impl FnOnce(String) -> String) {
    let before = std::fs::read_to_string(&gw.config).unwrap();
    let after = edit(before.clone());
    assert_ne!(before, after, "the edit changed nothing");
    std::fs::write(&gw.config, after).unwrap();
}

/// `otpgw reload` against this gateway: (success, stdout, stderr).
fn reload_cli(gw: &Gateway, admin: &str) -> (bool, String, String) {
    let url = format!("http://{}", gw.http);
    gw.cli_with(
        &["reload", "--url", &url],
        &[("OTPGW_API_KEY", admin)],
        None,
    )
}

fn sighup(gw: &Gateway) {
    let ok = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP");
}

#[test]
fn sighup_adds_a_peer_and_changes_a_limit_while_another_peers_bind_keeps_getting_codes() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "09121110001");
    let unknown = "989121119999";

    // kannel binds, gets a code, and stays bound across the reload.
    let mut steps = ask("989121110001", "4321");
    steps.extend(["wait-stdin".into()]);
    steps.extend(ask("989121110001", "4321"));
    steps.push("unbind".into());
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let mut kannel = BoundPeer::start(&gw, "kannel", "secret", &steps);
    let first = code_in(kannel.next("deliver_sm")["text"].as_str().unwrap());
    gw.approves(&verifier, cards::A, &first, "before-reload");

    // Before: no such peer, and unknown senders are answered freely.
    let refused = gw.peer_as("telco2", "pass-2", &[], &["bind-only"]);
    assert_ne!(refused.event("bind")["status"], 0, "{refused:?}");
    let limited = r#"otpgw_limited_total{rule="unknown_sender"}"#;
    assert_eq!(gw.counter(limited), 0.0);

    edit_config(&gw, |c| {
        c.replace(
            "unknown_sender = { count = 1000, per_secs = 1 }",
            "unknown_sender = { count = 1, per_secs = 3600 }",
        ) + "\n[[smpp.peers]]\nsystem_id = \"telco2\"\npassword = \"pass-2\"\n"
            + "[messages.code]\nen = \"Reloaded bank code {code}, valid {ttl} s.\"\n"
    });
    sighup(&gw);
    gw.wait_for_log("configuration reloaded");

    // The new peer binds; the new limit holds an unknown sender to one notice.
    // Its messages' replies come back to its own bind, never to kannel's waiting one.
    let mut steps = ask(unknown, "4321");
    steps.push("--expect-reply".into());
    steps.extend(ask(unknown, "4321"));
    steps.push("--no-reply".into());
    steps.extend(ask("989121110001", "OTP 4321"));
    steps.extend(["--expect-reply".into(), "unbind".into()]);
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let telco2 = gw.peer_as("telco2", "pass-2", &[], &steps);
    telco2.ok();
    assert_eq!(gw.counter(limited), 1.0);

    // The bank's new wording is in force.
    let replies = telco2.all("deliver_sm");
    let reply = replies.last().unwrap()["text"].as_str().unwrap();
    assert!(reply.starts_with("Reloaded bank code "), "{reply}");

    // kannel was never unbound: the same session asks again and gets a code.
    kannel.go_on();
    let second = code_in(kannel.next("deliver_sm")["text"].as_str().unwrap());
    assert_ne!(first, second);
    kannel.next("unbind_resp");
    kannel.finish();
    gw.approves(&verifier, cards::A, &second, "after-reload");
    let line = gw
        .log()
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .map(str::to_owned)
        .unwrap();
    assert!(
        line.contains("limits.unknown_sender")
            && line.contains("smpp.peers")
            && line.contains("messages.code"),
        "{line}"
    );
}

#[test]
fn a_bad_file_on_reload_keeps_the_running_config_and_a_removed_peer_is_unbound() {
    let (gw, admin, _) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "09121110001");

    // rxpeer stays bound until the server unbinds it.
    let mut rx = BoundPeer::start(&gw, "rxpeer", "rxpass", &["bind-only", "wait-unbind"]);
    assert_eq!(rx.next("bind")["status"], 0);

    // An invalid file: refused whole, by the API and by the CLI, with the reason.
    edit_config(&gw, |c| {
        c.replace("[limits]\n", "[limits]\ncard = \"often\"\n")
    });
    let (status, body) = gw.post(&admin, "/v1/admin/reload", &Value::Null);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config", "{body}");
    // The reason names the line, never the file's text (it may hold a password).
    let why = body["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("line") && !why.contains("count = 1000"),
        "{why}"
    );
    // The CLI reads the same file first, and refuses it before asking the gateway.
    let (ok, _, err) = reload_cli(&gw, &admin);
    assert!(!ok && err.contains("duplicate key `card`"), "{err}");
    // The running configuration still serves: kannel gets a code.
    assert!(!code_in(&gw.sms("989121110001", "4321", "ascii")).is_empty());

    // A good file that removes rxpeer and changes what takes a restart.
    edit_config(&gw, |c| {
        c.replace("[limits]\ncard = \"often\"\n", "[limits]\n")
            .replace(
                "[[smpp.peers]]\nsystem_id = \"rxpeer\"\npassword = \"rxpass\"\n",
                "",
            )
            .replace("enquire_link_secs = 30", "enquire_link_secs = 31")
    });
    let (ok, out, err) = reload_cli(&gw, &admin);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        report["applied"],
        serde_json::json!(["smpp.peers"]),
        "{report}"
    );
    assert_eq!(
        report["kept"],
        serde_json::json!(["smpp.enquire_link_secs"]),
        "{report}"
    );
    assert_eq!(report["unbound"], 1, "{report}");
    rx.next("unbind_from_server");
    rx.finish();
    let refused = gw.peer_as("rxpeer", "rxpass", &[], &["bind-only"]);
    assert_ne!(refused.event("bind")["status"], 0, "{refused:?}");
    // kannel was not concerned.
    assert!(!code_in(&gw.sms("989121110001", "4321", "ascii")).is_empty());

    // The reloads the gateway saw are audited with the key that asked, the
    // refused one too.
    let (_, cookie) = gw.console_session(&admin);
    let audited = |kind: &str| {
        let csv = reqwest::blocking::Client::new()
            .get(gw.url(&format!("/console/audit.csv?kind={kind}")))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .text()
            .unwrap();
        csv.lines().skip(1).map(str::to_owned).collect::<Vec<_>>()
    };
    let reloaded = audited("config_reloaded");
    assert_eq!(reloaded.len(), 1, "{reloaded:?}");
    assert!(reloaded[0].contains("apikey:"), "{reloaded:?}");
    assert_eq!(audited("config_reload_refused").len(), 1);

    // A help-desk key may not reload.
    let helpdesk = gw.api_key("helpdesk");
    assert_eq!(gw.post(&helpdesk, "/v1/admin/reload", &Value::Null).0, 403);
}

/// Client mode: a reload binds a new operator connection (its route works at
/// once), unbinds a removed one (its route is gone), and leaves the others bound.
#[test]
fn a_reload_adds_and_removes_operator_connections_and_leaves_the_others_bound() {
    let (mci, mtn) = (Smsc::start(&["otpgw:pw"]), Smsc::start(&["otpgw:pw"]));
    let (gw, admin, verifier) =
        Gateway::start_with(&mci.connection("mci", "routes = [\"98912\"]")).with_keys();
    mci.wait_bound(1);
    gw.enroll(&admin, cards::A, "09351110301");
    gw.enroll(&admin, cards::C, "09121110302");
    let push = |pan: &str, id: &str| {
        gw.post(
            &verifier,
            "/v1/codes",
            &json!({"pan": pan, "request_id": id}),
        )
    };
    assert_eq!(
        push(cards::A, "no-route-yet").0,
        422,
        "no connection serves 98935 yet"
    );

    edit_config(&gw, |c| c + &mtn.connection("mtn", "routes = [\"98935\"]"));
    let (ok, out, err) = reload_cli(&gw, &admin);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["applied"], json!(["smpp.connections"]), "{report}");
    assert_eq!(report["connections"]["added"], json!(["mtn"]), "{report}");
    mtn.wait_bound(1);

    // The new route carries codes; the old connection was not touched.
    let (status, pushed) = push(cards::A, "via-mtn");
    assert_eq!(status, 202, "{pushed}");
    let submit = mtn.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989351110301");
    gw.approves(
        &verifier,
        cards::A,
        &code_in(submit["text"].as_str().unwrap()),
        "v-mtn",
    );
    assert_eq!(push(cards::C, "via-mci").0, 202);
    mci.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110302");
    assert_eq!(
        mci.all(|e| e["event"] == "bind").len(),
        1,
        "mci was bound again"
    );
    assert!(mci.all(|e| e["event"] == "unbind").is_empty());

    // Removing mci unbinds it; its route is gone, mtn's stays.
    edit_config(&gw, |c| {
        c.replace(&mci.connection("mci", "routes = [\"98912\"]"), "")
    });
    let (ok, out, err) = reload_cli(&gw, &admin);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["connections"]["removed"], json!(["mci"]), "{report}");
    mci.wait(|e| e["event"] == "unbind");
    assert_eq!(push(cards::C, "mci-gone").0, 422);
    assert_eq!(push(cards::A, "mtn-stays").0, 202);
    assert_eq!(
        mtn.all(|e| e["event"] == "bind").len(),
        1,
        "mtn was bound again"
    );
    let (_, conns) = gw.get(&admin, "/v1/connections");
    let names: Vec<&str> = conns["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mtn"], "{conns}");

    // A changed connection is bound again, with its new settings.
    edit_config(&gw, |c| {
        c.replace("routes = [\"98935\"]", "routes = [\"98935\", \"98912\"]")
    });
    let (ok, out, err) = reload_cli(&gw, &admin);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["connections"]["rebound"], json!(["mtn"]), "{report}");
    mtn.wait(|e| e["event"] == "unbind");
    mtn.wait_bound(2);
    assert_eq!(push(cards::C, "mtn-serves-98912").0, 202);
    mtn.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110302");
}
