//! A scriptable operator SMSC for client-mode tests: `tests/peers/smsc.js` on the
//! npm `smpp` package (node-smpp). The test sends it JSON commands and waits for
//! the JSON events it reports (binds, submit_sm, deliver_sm_resp, …).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::harness::Gateway;
use crate::wait::{wait_until, Seen, WITHIN};

pub struct Smsc {
    child: Child,
    stdin: Mutex<ChildStdin>,
    pub port: u16,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Smsc {
    /// An SMSC accepting `system_id:password` accounts (any bind when empty).
    pub fn start(accounts: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smsc.js");
        let mut cmd = Command::new("node");
        cmd.arg(script);
        for a in accounts {
            cmd.args(["--account", a]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node tests/peers/smsc.js");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("OTPGW_TEST_LOG").is_some() {
                    eprintln!("smsc: {line}");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let mut smsc = Smsc {
            child,
            stdin: Mutex::new(stdin),
            port: 0,
            events,
        };
        let listening = smsc.wait(|e| e["event"] == "listening");
        smsc.port = listening["port"].as_u64().unwrap() as u16;
        smsc
    }

    pub fn cmd(&self, command: Value) {
        let mut stdin = self.stdin.lock().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// The first event (in arrival order) for which `pred` holds, within 20 s.
    pub fn wait(&self, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_n(1, pred).remove(0)
    }

    /// The first `n` matching events, within 20 s.
    pub fn wait_n(&self, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        wait_until(&format!("{n} such events at the SMSC"), WITHIN, || {
            let events = self.events.lock().unwrap();
            let found: Vec<Value> = events.iter().filter(|e| pred(e)).take(n).cloned().collect();
            drop(events);
            if found.len() >= n {
                return Ok(found);
            }
            let k = found.len();
            Err(Seen(move |f| {
                let all = self.events.lock().unwrap();
                write!(f, "{k} of {n}; all events:\n{all:#?}")
            }))
        })
    }

    pub fn all(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .cloned()
            .collect()
    }

    /// Sends a customer's message (MO) and returns its deliver_sm_resp event.
    pub fn mo(&self, from: &str, text: &str, tag: &str) -> Value {
        self.cmd(json!({"cmd": "mo", "from": from, "to": crate::harness::SHORT_CODE, "text": text, "tag": tag}));
        self.wait(|e| e["tag"] == tag && (e["event"] == "deliver_sm_resp" || e["event"] == "error"))
    }

    /// Waits until a session of the gateway is bound (the `n`th successful bind).
    pub fn wait_bound(&self, n: usize) {
        self.wait_n(n, |e| e["event"] == "bind" && e["status"] == 0);
    }

    /// A gateway with one connection, `mci` (plus `extra`), to this SMSC, once bound.
    pub fn gateway(&self, extra: &str) -> Gateway {
        self.gateway_with("", extra, "")
    }

    /// As `gateway`, its config `service` (keys of `[service]`), the connection and
    /// then `tables`.
    pub fn gateway_with(&self, service: &str, extra: &str, tables: &str) -> Gateway {
        let gw = Gateway::start_with(&format!(
            "{service}\n{}{tables}",
            self.connection("mci", extra)
        ));
        self.wait_bound(1);
        gw
    }

    /// A `[[smpp.connections]]` table for a gateway config pointing at this SMSC.
    pub fn connection(&self, name: &str, extra: &str) -> String {
        format!(
            "[[smpp.connections]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"otpgw\"\npassword = \"pw\"\nmax_backoff_secs = 1\n{extra}\n",
            self.port
        )
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True for a whole message or the first segment of a concatenated one.
pub fn first_segment(e: &Value) -> bool {
    e["udh"].is_null() || e["udh"]["seq"] == 1
}

/// True for a whole message or the last segment of a concatenated one.
pub fn last_segment(e: &Value) -> bool {
    e["udh"].is_null() || e["udh"]["seq"] == e["udh"]["total"]
}

/// The codes in the messages accepted for `msisdn`, segments put back together.
pub fn codes_to(smsc: &Smsc, msisdn: &str) -> Vec<String> {
    texts_to(smsc, msisdn)
        .iter()
        .map(|t| crate::harness::code_in(t))
        .collect()
}

/// The texts of the messages accepted for `msisdn`, segments put back together.
pub fn texts_to(smsc: &Smsc, msisdn: &str) -> Vec<String> {
    let parts = smsc
        .all(|e| e["event"] == "submit_sm" && e["destination_addr"] == msisdn && e["status"] == 0);
    // (UDH reference, total segments, [(segment number, text)])
    type Message = (u64, u64, Vec<(u64, String)>);
    let mut messages: Vec<Message> = Vec::new();
    for p in &parts {
        let text = p["text"].as_str().unwrap_or_default().to_owned();
        if p["udh"].is_null() {
            messages.push((u64::MAX, 1, vec![(1, text)]));
            continue;
        }
        let (reference, total, seq) = (
            p["udh"]["ref"].as_u64().unwrap(),
            p["udh"]["total"].as_u64().unwrap(),
            p["udh"]["seq"].as_u64().unwrap(),
        );
        // A new message starts at each first segment (references may repeat).
        match messages.last_mut() {
            Some((r, t, segs)) if *r == reference && *t == total && seq != 1 => {
                segs.push((seq, text))
            }
            _ => messages.push((reference, total, vec![(seq, text)])),
        }
    }
    messages
        .into_iter()
        .map(|(_, _, mut segs)| {
            segs.sort_by_key(|s| s.0);
            segs.into_iter().map(|s| s.1).collect::<String>()
        })
        .collect()
}
