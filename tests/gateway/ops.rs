//! Operations: metrics that parse and move with traffic, request ids, the OpenAPI
//! document. (Readiness that follows the database: `pg_only::database`.)

use crate::cards;
use crate::harness::{code_in, Gateway};

#[test]
fn metrics_parse_and_move_when_traffic_flows() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let before = gw.metrics();
    gw.enroll(&admin, cards::A, "989121110100");
    let code = code_in(&gw.sms("989121110100", "4321", "ascii"));
    gw.verify(&verifier, cards::A, &code, "m1");
    gw.verify(&verifier, cards::A, &code, "m2");
    let after = gw.metrics();
    let get =
        |m: &std::collections::BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    for (name, delta) in [
        ("otpgw_codes_issued_total{channel=\"sms\"}", 1.0),
        ("otpgw_replies_total{channel=\"sms\",kind=\"code\"}", 1.0),
        (
            "otpgw_verifications_total{reason=\"none\",result=\"approved\"}",
            1.0,
        ),
        (
            "otpgw_verifications_total{reason=\"used\",result=\"rejected\"}",
            1.0,
        ),
        ("otpgw_reply_seconds_count{channel=\"sms\"}", 1.0),
        ("otpgw_verify_seconds_count", 2.0),
    ] {
        assert_eq!(
            get(&after, name) - get(&before, name),
            delta,
            "{name}: {after:?}"
        );
    }
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("otpgw_smpp_pdus_total{command=\"SubmitSm\",direction=\"in\"")),
        "{after:?}"
    );
    assert!(get(&after, "otpgw_db_pool_connections{state=\"open\"}") >= 1.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        get(
            &after,
            &format!("otpgw_build_info{{version=\"{version}\"}}")
        ),
        1.0
    );
    // The process's own figures, in Prometheus' standard names.
    assert!(get(&after, "process_resident_memory_bytes") > 1_000_000.0);
    assert!(get(&after, "process_open_fds") >= 3.0);
    // (whole seconds: the crate counts CPU time in a u64 counter)
    assert!(after.contains_key("process_cpu_seconds_total"), "{after:?}");
    // Every metric shown says what it means.
    let text = gw.metrics_text();
    let shown: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(shown.len() > 10, "{text}");
    for name in shown {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP: {text}"
        );
    }
}

#[test]
fn every_http_response_carries_a_request_id_that_is_in_the_log() {
    let gw = Gateway::start();
    let resp = reqwest::blocking::get(gw.url("/v1/nothing")).unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    gw.wait_for_log(&id);
}

#[test]
fn openapi_describes_every_endpoint() {
    let gw = Gateway::start();
    let doc: serde_json::Value = reqwest::blocking::get(gw.url("/openapi.json"))
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (path, method) in [
        ("/v1/verify", "post"),
        ("/v1/ussd", "post"),
        ("/v1/cards", "post"),
        ("/v1/cards/lookup", "post"),
        ("/v1/cards/{id}", "get"),
        ("/v1/cards/{id}/reactivate", "post"),
        ("/v1/cards/{id}/suspend", "post"),
        ("/v1/cards/{id}/close", "post"),
        ("/v1/cards/{id}/reissue", "post"),
        ("/v1/cards", "get"),
        ("/v1/cards/{id}/events", "get"),
        ("/v1/cards/{id}/epin", "put"),
        ("/v1/cards/{id}/epin", "delete"),
        ("/v1/cards/{id}/activate", "post"),
        ("/v1/cards/{id}/activation", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/codes", "post"),
        ("/v1/codes/{id}", "get"),
        ("/v1/connections", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    // Every status the server really answers for a wrong method is documented.
    assert!(
        doc["paths"]["/v1/verify"]["post"]["responses"]["405"].is_object(),
        "405 missing from POST /v1/verify"
    );
    for schema in [
        "VerifyRequest",
        "VerifyResponse",
        "EnrollRequest",
        "Card",
        "Event",
        "ErrorBody",
        "TransactionBody",
        "EpinRequest",
        "Enrolled",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn a_hangup_with_an_unchanged_file_reloads_nothing_and_the_gateway_keeps_serving() {
    let (gw, admin, _) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110110");
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    gw.wait_for_log("SIGHUP received: reloading the configuration");
    gw.wait_for_log("configuration reloaded");
    let line = gw
        .log()
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .map(str::to_owned)
        .unwrap();
    assert!(line.contains(r#""applied":"[]""#), "{line}");
    let reply = gw.sms("989121110110", "4321", "ascii");
    assert_eq!(code_in(&reply).len(), 7, "{reply}");
    assert_eq!(gw.stop().code(), Some(0), "a clean stop after the hangup");
}

/// `otpgw status` shows the listener's binds (peer, bind type, address, since, in
/// flight) as a table, and `--json` the API's answer with the same binds; a bind
/// that ends leaves both.
#[test]
fn status_shows_the_listeners_binds_as_a_table_and_as_json() {
    use crate::raw;
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let env = [("OTPGW_API_KEY", admin.as_str())];
    let url = format!("http://{}", gw.http);
    let status = |json: bool| {
        let mut args = vec!["status", "--url", url.as_str()];
        if json {
            args.push("--json");
        }
        let (ok, out, err) = gw.cli_with(&args, &env, None);
        assert!(ok, "{err}");
        out
    };
    assert!(status(false).starts_with("SMPP listener: 0 bound\n"));
    // 0x00000009: bind_transceiver.
    let stream = raw::bound(raw::connect_small(gw.smpp), 0x0000_0009);
    let local = stream.local_addr().unwrap().to_string();
    let table = crate::wait::wait_until("the bind in otpgw status", crate::wait::WITHIN, || {
        let out = status(false);
        if out.contains("SMPP listener: 1 bound") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    let row = table
        .lines()
        .find(|l| l.starts_with("kannel "))
        .expect("a row for the peer");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..3], ["kannel", "trx", local.as_str()], "{table}");
    assert_eq!(cells.last(), Some(&"0"), "nothing in flight: {table}");
    assert!(
        table.contains("PEER") && table.contains("IN FLIGHT"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    let bind = &json["listener"][0];
    assert_eq!(
        (
            bind["system_id"].as_str(),
            bind["bind_type"].as_str(),
            bind["address"].as_str()
        ),
        (Some("kannel"), Some("trx"), Some(local.as_str())),
        "{json}"
    );
    assert!(bind["since"].as_i64().is_some_and(|t| t > 0), "{json}");
    drop(stream);
    crate::wait::wait_until(
        "the bind gone from otpgw status",
        crate::wait::WITHIN,
        || {
            let out = status(false);
            if out.starts_with("SMPP listener: 0 bound") {
                Ok(())
            } else {
                Err(out)
            }
        },
    );
}
