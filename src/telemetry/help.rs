//! What each metric means, for the `# HELP` lines of `/metrics`, and the build's
//! identity (`otpgw_build_info`). Every metric the gateway records is listed here;
//! a test reads the sources and fails on one that is not.

/// The kind of a metric, as Prometheus prints it in `# TYPE`.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

use Kind::{Counter, Gauge, Histogram};

const METRICS: &[(&str, Kind, &str)] = &[
    (
        "otpgw_build_info",
        Gauge,
        "Always 1; the version label says which build runs.",
    ),
    (
        "otpgw_codes_issued_total",
        Counter,
        "One-time codes issued, by channel (sms, ussd, push).",
    ),
    (
        "otpgw_verifications_total",
        Counter,
        "Verify answers, by result and reason.",
    ),
    (
        "otpgw_verify_seconds",
        Histogram,
        "Time to answer a verify request.",
    ),
    (
        "otpgw_receipts_held_back_total",
        Counter,
        "Delivery receipts an operator connection sent while its receipt places were full: the session stopped reading until one was recorded.",
    ),
    (
        "otpgw_lock_budget_refusals_total",
        Counter,
        "Wrong codes refused without counting because their API key had locked limits.locks_per_key cards in the window.",
    ),
    (
        "otpgw_smpp_bind_guesses_blocked_total",
        Counter,
        "Binds refused because their system_id had too many wrong passwords in the window (smpp.bind_failures_per_system_id), from any address.",
    ),
    (
        "otpgw_mo_foreign_numbers_total",
        Counter,
        "Customer messages an operator connection delivered from a number its routes do not serve: refused with ESME_RINVSRCADR, no code.",
    ),
    (
        "otpgw_epin_checks_total",
        Counter,
        "ePINs compared with a card's hash (Argon2id): only for active cards.",
    ),
    (
        "otpgw_codes_without_receipt_total",
        Counter,
        "Codes an operator connection submitted with a receipt asked for and no receipt back within its receipt_wait_secs.",
    ),
    (
        "otpgw_challenges_issued_total",
        Counter,
        "OCRA challenges issued for payments (POST /v1/challenge).",
    ),
    (
        "otpgw_challenge_mismatches_total",
        Counter,
        "Verifies that named a challenge with another payment than the one it was issued for.",
    ),
    (
        "otpgw_verify_guard_trips_total",
        Counter,
        "Times an API key was paused by the guessing guard.",
    ),
    (
        "otpgw_sim_swap_checks_total",
        Counter,
        "SIM-swap checks before a code was sent ([sim_swap]), by result: not_swapped, swapped (no code), error (on_error decided).",
    ),
    (
        "otpgw_sim_swap_seconds",
        Histogram,
        "Time of each call to the operator's SIM Swap API (token included; cached answers make none), up to [sim_swap] timeout_ms.",
    ),
    (
        "otpgw_card_locks_total",
        Counter,
        "Cards locked by consecutive failed verifications.",
    ),
    (
        "otpgw_limited_total",
        Counter,
        "Requests refused by a rate limit, by rule.",
    ),
    (
        "otpgw_limiter_full_total",
        Counter,
        "Limiter keys refused because the key table was full.",
    ),
    (
        "otpgw_limit_fallbacks_total",
        Counter,
        "Cluster-wide limit decisions that were too slow and fell back to this node's limit.",
    ),
    (
        "otpgw_limit_decision_seconds",
        Histogram,
        "Time of one round trip of cluster-wide limit decisions in the database (a peer's TPS and the global cap, or a number's windows, are decided together).",
    ),
    (
        "otpgw_store_batch_size",
        Histogram,
        "PostgreSQL: requests sent together as one statement (group commit), by kind: codes, limits, cards (a number's cards looked up).",
    ),
    (
        "otpgw_store_batch_queued",
        Gauge,
        "PostgreSQL: requests waiting for the next batch of their kind (codes, limits, cards).",
    ),
    (
        "otpgw_message_timeouts_total",
        Counter,
        "Customer messages or USSD steps not handled within their deadline (answered 'try again').",
    ),
    (
        "otpgw_reply_seconds",
        Histogram,
        "From a customer's message to its answer, by channel.",
    ),
    (
        "otpgw_replies_total",
        Counter,
        "Replies sent to customers, by channel and kind.",
    ),
    (
        "otpgw_replies_dropped_total",
        Counter,
        "Replies not queued, by reason (e.g. queue full).",
    ),
    (
        "otpgw_replies_expired_total",
        Counter,
        "Queued replies dropped because their code expired before a session could send them.",
    ),
    (
        "otpgw_receipts_total",
        Counter,
        "Delivery receipts applied, by delivery state.",
    ),
    (
        "otpgw_receipts_unmatched_total",
        Counter,
        "Receipts dropped because they matched no message of the connection, by connection.",
    ),
    (
        "otpgw_submits_untracked_total",
        Counter,
        "Codes an operator SMSC accepted with an empty message id (no receipt can name them), by connection.",
    ),
    (
        "otpgw_delivery_batch_size",
        Histogram,
        "Delivery-state updates written in one batch.",
    ),
    (
        "otpgw_delivery_writes_failed_total",
        Counter,
        "Delivery-state updates lost because their batch failed to commit.",
    ),
    (
        "otpgw_write_batch_size",
        Histogram,
        "Jobs committed in one SQLite writer batch.",
    ),
    (
        "otpgw_write_batch_seconds",
        Histogram,
        "Time of one SQLite writer batch, commit included.",
    ),
    (
        "otpgw_db_errors_total",
        Counter,
        "Database errors seen by the store.",
    ),
    (
        "otpgw_change_notices_total",
        Counter,
        "PostgreSQL: notices of a change to a card or an API key this node heard from the database (any node's, its own included).",
    ),
    (
        "otpgw_db_pool_connections",
        Gauge,
        "Database pool connections of this node, by state (open, idle).",
    ),
    (
        "otpgw_outbox_claimed_total",
        Counter,
        "Outbox replies this node claimed to send (PostgreSQL).",
    ),
    (
        "otpgw_outbox_lapsed_total",
        Counter,
        "Outbox replies given back because this node's lease ran out before sending.",
    ),
    (
        "otpgw_outbox_expired_total",
        Counter,
        "Outbox replies whose code expired before any node could send them.",
    ),
    (
        "otpgw_outbox_unreadable_total",
        Counter,
        "Outbox rows this node could not open (sealed under other keys, or damaged).",
    ),
    (
        "otpgw_smpp_sessions",
        Gauge,
        "Bound SMPP sessions on the listener, by system_id.",
    ),
    (
        "otpgw_smpp_window_in_use",
        Gauge,
        "deliver_sm awaiting a response, by system_id.",
    ),
    (
        "otpgw_deliver_sm_seconds",
        Histogram,
        "From a deliver_sm to its response.",
    ),
    (
        "otpgw_smpp_pdus_total",
        Counter,
        "SMPP PDUs read and written, by direction, command and status.",
    ),
    (
        "otpgw_smpp_bind_failures_total",
        Counter,
        "Refused binds on the listener.",
    ),
    (
        "otpgw_smpp_connections_refused_total",
        Counter,
        "SMPP connections refused by the connection caps.",
    ),
    (
        "otpgw_smpp_write_timeouts_total",
        Counter,
        "SMPP writes that missed their deadline (the session was closed).",
    ),
    (
        "otpgw_smpp_connection_up",
        Gauge,
        "1 while an operator connection is bound, by connection.",
    ),
    (
        "otpgw_smpp_connection_retries_total",
        Counter,
        "Reconnects of operator connections.",
    ),
    (
        "otpgw_smpp_submits_total",
        Counter,
        "submit_sm to operator SMSCs, by connection and result.",
    ),
    (
        "otpgw_submit_sm_seconds",
        Histogram,
        "From a submit_sm to its response.",
    ),
    ("otpgw_ussd_screens_total", Counter, "USSD screens sent."),
    (
        "otpgw_ussd_dialogues_refused_total",
        Counter,
        "USSD dialogues refused because the dialogue table was full.",
    ),
    (
        "otpgw_ussd_over_limit_total",
        Counter,
        "USSD dialogues ended for too many steps or too long an input.",
    ),
    (
        "otpgw_http_connections_refused_total",
        Counter,
        "HTTP connections closed at accept by the connection caps, by reason: total, per_ip.",
    ),
    (
        "otpgw_http_bad_keys_refused_total",
        Counter,
        "Requests without a valid API key answered 429 too_many_bad_keys: their address was past http.bad_keys_per_ip.",
    ),
    (
        "otpgw_http_connections_closed_total",
        Counter,
        "HTTP connections the gateway closed after their response in flight, by reason: fair_share (its place went to a less busy address), max_age (older than http.keep_alive_max_secs).",
    ),
];

/// Gives every metric its `# HELP` text and sets `otpgw_build_info`. Call once, after
/// the recorder is installed.
pub(super) fn describe() {
    for &(name, kind, help) in METRICS {
        match kind {
            Counter => metrics::describe_counter!(name, help),
            Gauge => metrics::describe_gauge!(name, help),
            Histogram => metrics::describe_histogram!(name, help),
        }
    }
    metrics::gauge!("otpgw_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::METRICS;

    /// Every `otpgw_…` name a metric macro records in `src/` has its HELP here.
    #[test]
    fn every_recorded_metric_is_described() {
        let mut seen = Vec::new();
        let mut pending = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("telemetry/help.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for macro_call in ["counter!(", "gauge!(", "histogram!("] {
                        for (at, _) in text.match_indices(macro_call) {
                            let rest = text[at + macro_call.len()..].trim_start();
                            if let Some(name) =
                                rest.strip_prefix('"').and_then(|r| r.split('"').next())
                            {
                                seen.push((name.to_owned(), path.display().to_string()));
                            }
                        }
                    }
                }
            }
        }
        assert!(seen.len() > 30, "the scan found the metrics: {seen:?}");
        for (name, file) in seen {
            assert!(
                METRICS.iter().any(|(n, ..)| *n == name),
                "{name} (recorded in {file}) has no HELP in telemetry/help.rs"
            );
        }
    }
}
