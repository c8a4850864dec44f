//! `otpgw status`: the running gateway's SMPP links as tables an operator reads at
//! a glance — the listener's binds (who, how, from where, since when, deliver_sm
//! outstanding), the operator connections (state, window, queue, counters) and the
//! routes' queues. `--json` prints `GET /v1/connections` as it came.

use serde_json::Value;

/// The tables for a `GET /v1/connections` answer.
pub fn render(v: &Value, now_ms: i64) -> String {
    let mut out = String::new();
    let binds = items(v, "listener");
    out.push_str(&format!("SMPP listener: {} bound\n", binds.len()));
    if !binds.is_empty() {
        let rows = binds
            .iter()
            .map(|b| {
                vec![
                    text(b, "system_id"),
                    text(b, "bind_type"),
                    text(b, "address"),
                    since(b, now_ms),
                    text(b, "in_flight"),
                ]
            })
            .collect();
        table(
            &mut out,
            &["PEER", "BIND", "ADDRESS", "SINCE", "IN FLIGHT"],
            rows,
        );
    }
    let conns = items(v, "connections");
    out.push_str(&format!("\nOperator connections: {}\n", conns.len()));
    if !conns.is_empty() {
        let rows = conns
            .iter()
            .map(|c| {
                vec![
                    text(c, "name"),
                    format!("{}:{}", text(c, "host"), text(c, "port")),
                    text(c, "state"),
                    since(c, now_ms),
                    format!("{}/{}", text(c, "window_in_use"), text(c, "window")),
                    text(c, "queued"),
                    text(c, "submitted"),
                    text(c, "failed"),
                    text(c, "receipts"),
                    text(c, "unmatched_receipts"),
                    text(c, "untracked"),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "NAME",
                "SMSC",
                "STATE",
                "SINCE",
                "WINDOW",
                "QUEUED",
                "SUBMITTED",
                "FAILED",
                "RECEIPTS",
                "UNMATCHED",
                "UNTRACKED",
            ],
            rows,
        );
    }
    let routes = items(v, "routes");
    if !routes.is_empty() {
        let down: Vec<&str> = items(v, "routes_down")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let rows = routes
            .iter()
            .map(|r| {
                let route = r["route"].as_str().unwrap_or_default();
                let state = if down.contains(&route) { "down" } else { "up" };
                let name = if route.is_empty() { "(default)" } else { route };
                vec![name.to_owned(), state.to_owned(), text(r, "queued")]
            })
            .collect();
        out.push('\n');
        table(&mut out, &["ROUTE", "STATE", "QUEUED"], rows);
    }
    out
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// How long ago `since` (epoch ms) was, in the largest unit that fits.
fn since(v: &Value, now_ms: i64) -> String {
    let Some(at) = v["since"].as_i64() else {
        return "-".to_owned();
    };
    let secs = (now_ms - at).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// Left-aligned columns two spaces apart. Peer names are padded by characters, not
/// bytes, so a non-ASCII system_id keeps the columns straight.
fn table(out: &mut String, headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(&widths) {
            l.push_str(cell);
            l.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, &mut headers.iter().copied());
    for row in &rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_show_binds_connections_and_routes() {
        let v = serde_json::json!({
            "listener": [{"system_id": "bank", "bind_type": "trx", "address": "127.0.0.1:4000",
                          "since": 1_000, "in_flight": 2}],
            "connections": [{"name": "mci", "host": "10.0.0.1", "port": 2775, "state": "bound",
                             "since": 0, "window": 10, "window_in_use": 3, "queued": 0,
                             "submitted": 7, "failed": 0, "receipts": 5,
                             "unmatched_receipts": 1, "untracked": 0}],
            "routes": [{"route": "", "queued": 0}, {"route": "98935", "queued": 4}],
            "routes_down": ["98935"]
        });
        let out = render(&v, 61_000);
        let expected = "\
SMPP listener: 1 bound
PEER  BIND  ADDRESS         SINCE    IN FLIGHT
bank  trx   127.0.0.1:4000  60s ago  2

Operator connections: 1
NAME  SMSC           STATE  SINCE    WINDOW  QUEUED  SUBMITTED  FAILED  RECEIPTS  UNMATCHED  UNTRACKED
mci   10.0.0.1:2775  bound  61s ago  3/10    0       7          0       5         1          0

ROUTE      STATE  QUEUED
(default)  up     0
98935      down   4
";
        assert_eq!(out, expected);
    }

    #[test]
    fn nothing_bound_says_so() {
        let out = render(
            &serde_json::json!({"listener": [], "connections": [], "routes": []}),
            0,
        );
        assert_eq!(out, "SMPP listener: 0 bound\n\nOperator connections: 0\n");
    }
}
