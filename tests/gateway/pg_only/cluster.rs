//! Several real gateway processes on one PostgreSQL acting as one gateway for the
//! replies that carry codes (the reply outbox): a peer's transmitter bind on one node
//! and receiver bind on another gets every reply, and when a node is killed right
//! after it took messages in, another node delivers their codes, each exactly once;
//! a peer's TPS and a customer's per-MSISDN limit hold across the nodes.

use std::collections::BTreeSet;
use std::time::Duration;

use super::require_postgres;
use crate::cards;
use crate::harness::{code_in, generous_limits_but, send, Gateway, Peer};
use crate::limits::THREE_A_MINUTE;
use crate::raw;

/// A send that does not wait for a reply.
const NO_WAIT: [&str; 3] = ["--no-reply", "--quiet-wait", "0"];

/// Short leases so a dead node's replies move on quickly; a fast poll.
const CLUSTER: &str = "language = \"en\"
[cluster]
outbox_lease_secs = 3
outbox_margin_ms = 500
outbox_poll_ms = 100
";

/// Two nodes on one fresh database, each with `config` (as `Gateway::start_with`).
fn two_nodes(config: &str) -> (Gateway, Gateway) {
    require_postgres();
    let a = Gateway::start_with(config);
    let b = Gateway::start_beside_with(&a, config);
    (a, b)
}

/// Three nodes on one fresh database, each with `config`.
fn three_nodes(config: &str) -> (Gateway, Gateway, Gateway) {
    let (a, b) = two_nodes(config);
    let c = Gateway::start_beside_with(&a, config);
    (a, b, c)
}

/// The messages of `who`, sent through a transmitter-only bind (no reply can come
/// back on it); every one must be accepted.
fn send_through_transmitter(node: &Gateway, who: &[(String, String, String)]) {
    let mut args: Vec<&str> = Vec::new();
    for (_, last4, msisdn) in who {
        args.extend(send(msisdn, last4, "ascii", &NO_WAIT));
    }
    args.push("unbind");
    let p = node.peer_as("kannel", "secret", &["--bind", "tx"], &args);
    p.ok();
    let accepted = p.all("submit_sm_resp");
    assert_eq!(accepted.len(), who.len(), "{p:?}");
    assert!(accepted.iter().all(|r| r["status"] == 0), "{p:?}");
}

/// A receiver bind that waits for `n` replies, then for one more that must not come
/// (a duplicate would).
fn receive(node: &Gateway, n: usize) -> Peer {
    let mut args: Vec<&str> = Vec::new();
    for _ in 0..n {
        args.extend(["wait-deliver", "--timeout", "30"]);
    }
    args.extend(["wait-deliver", "--timeout", "2"]);
    node.peer_as("kannel", "secret", &["--bind", "rx"], &args)
}

/// Each customer got exactly one reply, each with a code that verifies.
fn each_got_one_code(rx: &Peer, who: &[(String, String, String)], verify_on: &Gateway) {
    // The extra wait for a duplicate timed out (exit code 5).
    assert_eq!(rx.code, Some(5), "{rx:?}");
    let delivered = rx.all("deliver_sm");
    assert_eq!(delivered.len(), who.len(), "{delivered:?}");
    let to: BTreeSet<&str> = delivered
        .iter()
        .map(|d| d["destination_addr"].as_str().unwrap())
        .collect();
    assert_eq!(to.len(), who.len(), "one reply per customer: {to:?}");
    let verifier = verify_on.api_key("verifier");
    for (pan, _, msisdn) in who {
        let reply = delivered
            .iter()
            .find(|d| d["destination_addr"] == msisdn.as_str())
            .unwrap_or_else(|| panic!("no reply for {msisdn}"));
        let code = code_in(reply["text"].as_str().unwrap());
        let r = verify_on.verify(&verifier, pan, &code, &format!("v{msisdn}"));
        assert_eq!(r["result"], "approved", "{r}");
    }
}

#[test]
fn a_transmitter_on_one_node_and_a_receiver_on_another_get_every_reply() {
    let (a, b) = two_nodes(CLUSTER);
    let admin = a.api_key("admin");
    let who = crate::cards::customers(6, 101);
    for (pan, _, msisdn) in &who {
        a.enroll(&admin, pan, msisdn);
    }
    std::thread::scope(|s| {
        let rx = s.spawn(|| receive(&b, who.len()));
        b.wait_for_log(r#""bind":"rx""#);
        send_through_transmitter(&a, &who);
        each_got_one_code(&rx.join().unwrap(), &who, &b);
    });
    // Node A kept none of them for itself: it holds no receiver.
    assert!(!a.log().contains("replies claimed from the outbox"));
    assert!(b.log().contains("replies claimed from the outbox"));
}

#[test]
fn a_node_killed_after_taking_messages_in_leaves_its_replies_to_another() {
    require_postgres();
    let (a, b, c) = three_nodes(CLUSTER);
    let admin = a.api_key("admin");
    let who = crate::cards::customers(6, 202);
    for (pan, _, msisdn) in &who {
        a.enroll(&admin, pan, msisdn);
    }
    // The peer's receiver on A binds and then reads nothing: A claims the replies
    // and writes them into a socket whose reader is gone with A.
    let stalled = raw::bound(raw::connect_small(a.smpp), raw::BIND_RECEIVER);
    a.wait_for_log(r#""bind":"rx""#);
    std::thread::scope(|s| {
        let rx = s.spawn(|| receive(&b, who.len()));
        b.wait_for_log(r#""bind":"rx""#);
        send_through_transmitter(&a, &who);
        // Every message was answered, so every code and its reply are committed.
        a.kill();
        each_got_one_code(&rx.join().unwrap(), &who, &c);
    });
    // B took them over once A's claims ran out; nothing was sent after expiry.
    assert!(b.log().contains("replies claimed from the outbox"));
    drop(stalled);
}

/// A peer's TPS holds across the nodes: three nodes at once, each of which would
/// allow a burst of 5 on its own, accept about 5 of a peer's PDUs between them.
#[test]
fn a_peers_tps_holds_across_three_nodes() {
    require_postgres();
    let limits = format!(
        "language = \"en\"\n{}",
        generous_limits_but("peer_tps", "5")
    );
    let (a, b, c) = three_nodes(&limits);
    let burst = |node: &Gateway| {
        let mut args = send("989121119999", "help", "ascii", &NO_WAIT);
        args.extend(["--repeat", "8", "unbind"]);
        node.peer(&args)
    };
    let peers: Vec<Peer> = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b, &c]
            .into_iter()
            .map(|node| s.spawn(move || burst(node)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<i64> = peers
        .iter()
        .flat_map(|p| p.all("submit_sm_resp"))
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses.len(), 24, "{peers:?}");
    let accepted = statuses.iter().filter(|s| **s == 0).count();
    let throttled = statuses.iter().filter(|s| **s == 0x58).count();
    assert_eq!(accepted + throttled, 24, "{statuses:?}");
    // Alone, each node would take its burst of 5 and more as the second goes by
    // (15 or more in all); together they take the one burst of 5 and what refills
    // while the three peers run.
    assert!((5..=10).contains(&accepted), "accepted {accepted} of 24");
}

/// Client mode shares its messages too: a code pushed through a node whose own
/// connection to the operator is down goes out through another node's connection
/// of the same route, once.
#[test]
fn a_code_pushed_through_a_node_without_a_connection_goes_out_through_another() {
    require_postgres();
    let smsc = crate::smsc::Smsc::start(&[]);
    // Node A's connection points at a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = smsc.connection("mci", "").replace(
        &format!("port = {}", smsc.port),
        &format!("port = {dead_port}"),
    );
    let (a, admin, verifier) = Gateway::start_with(&format!("{CLUSTER}{dead}")).with_keys();
    let b = Gateway::start_beside_with(&a, &format!("{CLUSTER}{}", smsc.connection("mci", "")));
    smsc.wait_bound(1);
    let who = crate::cards::customers(3, 303);
    for (pan, _, msisdn) in &who {
        a.enroll(&admin, pan, msisdn);
    }
    for (pan, _, msisdn) in &who {
        let (status, pushed) = a.post(
            &verifier,
            "/v1/codes",
            &serde_json::json!({"pan": pan, "request_id": format!("p{msisdn}")}),
        );
        assert_eq!(status, 202, "{pushed}");
        let submit =
            smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == msisdn.as_str());
        let code = code_in(submit["text"].as_str().unwrap());
        let r = a.verify(&verifier, pan, &code, &format!("v{msisdn}"));
        assert_eq!(r["result"], "approved", "{r}");
    }
    assert!(b.log().contains("messages claimed from the outbox"));
    // Each went out once: nothing more arrives in a quiet half second (longer than
    // five claim polls).
    std::thread::sleep(Duration::from_millis(500));
    for (_, _, msisdn) in &who {
        assert_eq!(crate::smsc::codes_to(&smsc, msisdn).len(), 1, "{msisdn}");
    }
}

/// On PostgreSQL the per-MSISDN limit is the cluster's: 3 per minute holds at 3 when
/// the customer's messages are spread over three nodes (each node alone would allow
/// 3, so 9 in all).
#[test]
fn an_msisdn_limit_holds_across_three_nodes() {
    require_postgres();
    let (a, b, c) = three_nodes(THREE_A_MINUTE);
    let admin = a.api_key("admin");
    a.enroll(&admin, cards::A, "989121110090");
    let mut codes = 0;
    let mut notices = 0;
    let mut silent = 0;
    for i in 0..9 {
        let node = [&a, &b, &c][i % 3];
        let quiet = ["--no-reply", "--quiet-wait", "0.5", "unbind"];
        let p = node.peer(&send("989121110090", "4321", "ascii", &quiet));
        p.ok();
        assert_eq!(p.event("submit_sm_resp")["status"], 0, "{p:?}");
        match p.all("deliver_sm").first() {
            Some(d) if d["text"].as_str().unwrap().starts_with("Too many requests") => notices += 1,
            Some(d) => {
                code_in(d["text"].as_str().unwrap());
                codes += 1;
            }
            None => silent += 1,
        }
    }
    assert_eq!(
        codes, 3,
        "codes {codes}, notices {notices}, silent {silent}"
    );
    // Each node tells the customer once when to come back, then stays silent.
    assert!((1..=3).contains(&notices), "notices {notices}");
    assert_eq!(codes + notices + silent, 9);
}

/// The compose example's start: `otpgw keys init` once, then two nodes on one
/// database reading that key file agree: a code issued through one verifies through
/// the other.
#[test]
fn two_nodes_on_a_key_file_from_keys_init_share_their_cards() {
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("otpgw.key");
    let out = std::process::Command::new(crate::harness::bin())
        .args(["keys", "init", path.to_str().unwrap()])
        .env_remove("OTPGW_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = std::fs::read_to_string(&path).unwrap();
    let a = Gateway::start_on_postgres_with_keys(&keys);
    let b = Gateway::start_beside(&a);
    let (admin, verifier) = (a.api_key("admin"), b.api_key("verifier"));
    a.enroll(&admin, cards::A, "989121850001");
    let code = code_in(&a.sms("989121850001", "4321", "ascii"));
    b.approves(&verifier, cards::A, &code, "keys-init");
}

/// Both caches at their longest (5 s): only the database's notice of a change can
/// make another node act on it within the bound these tests hold it to.
const LONG_CACHES: &str = "language = \"en\"
[cluster]
api_key_cache_ms = 5000
card_cache_ms = 5000
";

/// How long a node may take to act on another node's change while its change
/// listener is connected (the notice itself takes milliseconds).
const BOUND: Duration = Duration::from_secs(1);

/// The notices of changes `node` has heard (`otpgw_change_notices_total`).
fn notices(node: &Gateway) -> f64 {
    node.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix("otpgw_change_notices_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Nodes remember valid API keys (here for 5 s); a key revoked on one node is
/// refused there at once, and on another node as soon as it hears of it from the
/// database, well within `BOUND`.
#[test]
fn a_key_revoked_on_one_node_is_refused_on_another_within_the_bound() {
    let (a, b) = two_nodes(LONG_CACHES);
    let admin = a.api_key("admin");
    let verifier = a.api_key("verifier");
    // B has read the key (and remembers it): known, if not allowed this path.
    assert_eq!(b.get(&verifier, "/v1/codes/999").0, 403);
    let (_, keys) = a.get(&admin, "/v1/apikeys");
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "verifier")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let revoked = std::time::Instant::now();
    let (status, _) = a.post(
        &admin,
        &format!("/v1/apikeys/{id}/revoke"),
        &serde_json::Value::Null,
    );
    assert_eq!(status, 200);
    assert_eq!(
        a.get(&verifier, "/v1/codes/999").0,
        401,
        "refused at once where revoked"
    );
    crate::wait::wait_until("B refuses the revoked key", BOUND, || {
        match b.get(&verifier, "/v1/codes/999").0 {
            401 => Ok(()),
            other => Err(other),
        }
    });
    let took = revoked.elapsed();
    assert!(took < BOUND, "refused on B after {took:?}");
    eprintln!("revoked on A, refused on B after {took:?}");
}

/// A node keeps a number's cards (here for 5 s); when another node changes the
/// card's phone, this one hears of it within `BOUND`, sends the next code to the
/// new number, and treats the old number as a stranger's: the card it remembered
/// there is gone.
#[test]
fn a_phone_changed_on_one_node_routes_the_next_code_on_another() {
    let (a, b) = two_nodes(LONG_CACHES);
    let admin = a.api_key("admin");
    let (old, new) = ("989121850071", "989121850072");
    let id = a.enroll_id(&admin, cards::A, old);
    // B reads the card on its old number, and keeps it.
    code_in(&b.sms(old, "4321", "ascii"));
    let heard = notices(&b);
    let changed = std::time::Instant::now();
    let (status, body) = a.post(
        &admin,
        &format!("/v1/cards/{id}/phone"),
        &serde_json::json!({"msisdn": new, "reason": "new SIM, ID checked"}),
    );
    assert_eq!(status, 200, "{body}");
    crate::wait::wait_until("B hears of the change", BOUND, || match notices(&b) {
        n if n > heard => Ok(()),
        n => Err(n),
    });
    eprintln!("changed on A, heard on B after {:?}", changed.elapsed());
    // The next code goes to the new number; the old one gets none.
    code_in(&b.sms(new, "4321", "ascii"));
    let reply = b.sms(old, "4321", "ascii");
    assert!(
        !reply
            .split(|c: char| !c.is_ascii_digit())
            .any(|d| d.len() == 7),
        "a code went to the old number: {reply:?}"
    );
}
