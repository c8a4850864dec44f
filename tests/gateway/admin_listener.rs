//! The operations side on a listener of its own (`http.admin_listen`): metrics, the
//! links' status, API keys and the console answer there and 404 on the public
//! listener, which keeps verify and the card API; both answer the health probes;
//! `otpgw status` and `otpgw reload` find the operations listener from the config.

use reqwest::blocking::Client;
use serde_json::Value;

use crate::cards;
use crate::harness::{code_in, Gateway};

fn get(client: &Client, addr: std::net::SocketAddr, path: &str, key: &str) -> (u16, Value) {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .bearer_auth(key)
        .send()
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn the_operations_side_answers_on_its_own_port_and_404_on_the_public_one() {
    let gw = Gateway::start_with_overrides(&[("OTPGW_HTTP__ADMIN_LISTEN", "127.0.0.1:0")]);
    let ops = gw.admin.expect("an `admin listening` line");
    let public = gw.http;
    assert_ne!(ops.port(), public.port());
    let (gw, admin, verifier) = gw.with_keys();
    let client = Client::new();

    for path in [
        "/metrics",
        "/v1/connections",
        "/v1/apikeys",
        "/v1/admin/reload",
        "/console/signin",
    ] {
        let (status, body) = get(&client, public, path, &admin);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path} on the public listener: {body}"
        );
    }
    let metrics = client.get(format!("http://{ops}/metrics")).send().unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().unwrap().contains("# HELP otpgw_build_info "));
    let (status, links) = get(&client, ops, "/v1/connections", &admin);
    assert_eq!(status, 200, "{links}");
    assert!(links["listener"].is_array(), "{links}");
    assert_eq!(get(&client, ops, "/v1/apikeys", &admin).0, 200);
    let signin = client
        .get(format!("http://{ops}/console/signin"))
        .send()
        .unwrap();
    assert_eq!(signin.status(), 200);

    // The public side: the card API and verify, which the operations side refuses.
    gw.enroll(&admin, cards::A, "989121110300");
    let code = code_in(&gw.sms("989121110300", "4321", "ascii"));
    let verify = serde_json::json!({"pan": cards::A, "code": code, "request_id": "al-1"});
    let on_ops = client
        .post(format!("http://{ops}/v1/verify"))
        .bearer_auth(&verifier)
        .json(&verify)
        .send()
        .unwrap();
    assert_eq!(on_ops.status(), 404);
    assert_eq!(
        get(&client, ops, "/v1/cards?msisdn=989121110300", &admin).0,
        404
    );
    assert_eq!(gw.verify_with(&verifier, verify)["result"], "approved");

    for addr in [public, ops] {
        for probe in ["/healthz", "/readyz"] {
            let (status, body) = get(&client, addr, probe, "");
            assert_eq!(status, 200, "{probe} on {addr}: {body}");
        }
    }
    // The document says which listener serves each path, and both serve it.
    let (status, doc) = get(&client, ops, "/openapi.json", "");
    assert_eq!(status, 200);
    assert_eq!(get(&client, public, "/openapi.json", "").1, doc);
    for (path, side) in [
        ("/v1/verify", "public"),
        ("/v1/cards/{id}", "public"),
        ("/metrics", "operations"),
        ("/v1/connections", "operations"),
        ("/v1/apikeys/{id}/revoke", "operations"),
        ("/healthz", "both"),
    ] {
        assert_eq!(doc["paths"][path]["x-otpgw-listener"], side, "{path}");
    }
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths.values().all(|p| p["x-otpgw-listener"].is_string()),
        "every path names its listener"
    );

    // `otpgw status` reads the addresses from the config (here its environment
    // overrides, as the real ports were chosen at start) and asks the operations
    // listener: the public one would answer 404.
    let (ops_addr, public_addr) = (ops.to_string(), public.to_string());
    let env = [
        ("OTPGW_API_KEY", admin.as_str()),
        ("OTPGW_HTTP__LISTEN", public_addr.as_str()),
        ("OTPGW_HTTP__ADMIN_LISTEN", ops_addr.as_str()),
    ];
    let (ok, out, err) = gw.cli_with(&["status"], &env, None);
    assert!(ok, "otpgw status: {err}");
    assert!(out.starts_with("SMPP listener: 0 bound\n"), "{out}");
    // `otpgw reload` (POST /v1/admin/reload) goes the same way.
    let (ok, out, err) = gw.cli_with(&["reload"], &env, None);
    assert!(ok, "otpgw reload: {out}{err}");
    // And a command of the public side still goes to the public listener (its
    // answer, whatever it is without an operator connection, is not "no such
    // endpoint").
    let env = [env[1], env[2], ("OTPGW_API_KEY", verifier.as_str())];
    let (ok, out, err) = gw.cli_with(&["code", "send", "--pan", cards::A], &env, None);
    assert!(
        ok || (err.contains("the gateway answered") && !err.contains("no such endpoint")),
        "otpgw code send: {out}{err}"
    );
}
