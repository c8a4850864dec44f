//! Keeping one session of one operator connection bound for as long as the gateway
//! runs: connect (with a timeout), bind, serve (`session.rs`), and after any loss
//! back off (capped exponential with jitter, from 250 ms) and start again.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rusmpp::values::InterfaceVersion;
use rusmpp::{CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::connection::Connection;
use super::session::Session;
use super::Shared;
use crate::config::{ConnectionBind, SmppVersion};
use crate::core::links::Phase;

use crate::smpp::link::{self, answer_invalid, count_in, ok, send, Conn, Frame};
use crate::smpp::pdu::{self, BindKind};

/// The sessions a connection runs, and whether each one submits.
pub(super) fn binds(bind: ConnectionBind) -> Vec<(BindKind, bool)> {
    match bind {
        ConnectionBind::Transceiver => vec![(BindKind::Transceiver, true)],
        ConnectionBind::TransmitterReceiver => {
            vec![(BindKind::Transmitter, true), (BindKind::Receiver, false)]
        }
    }
}

/// Keeps one session of `conn` bound until `shutdown`.
pub(super) async fn maintain(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    kind: BindKind,
    sends: bool,
    shutdown: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        conn.set_phase(kind.as_str(), Phase::Connecting, None);
        // On shutdown an attempt under way gets a short grace: the SMSC may have
        // accepted the bind already, and a bound session is ended with an unbind
        // (by `serve`), not by dropping the connection.
        let attempt = connect_and_bind(&shared, &conn, kind);
        tokio::pin!(attempt);
        let attempt = tokio::select! {
            r = &mut attempt => r,
            _ = shutdown.cancelled() => match timeout(BIND_GRACE_ON_SHUTDOWN, attempt).await {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        match attempt {
            Ok(framed) => {
                let bound_at = tokio::time::Instant::now();
                tracing::info!("bound to the operator's SMSC");
                conn.set_phase(kind.as_str(), Phase::Bound, None);
                let mut session = Session::new(framed, shared.clone(), conn.clone(), kind, sends);
                let ended = session.serve(&shutdown).await;
                conn.set_phase(kind.as_str(), Phase::Down, Some(ended.clone()));
                session.end().await;
                failures = after_session(failures, bound_at.elapsed());
                if shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(reason = %ended, "session lost: reconnecting");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, attempt = failures, "could not bind");
                conn.set_phase(kind.as_str(), Phase::BackingOff, Some(e));
            }
        }
        metrics::counter!("otpgw_smpp_connection_retries_total", "connection" => conn.settings.name.clone()).increment(1);
        let delay = backoff(failures, conn.settings.max_backoff_secs);
        conn.set_phase(kind.as_str(), Phase::BackingOff, None);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    conn.set_phase(kind.as_str(), Phase::Down, Some("shut down".into()));
}

/// How long a bind under way at shutdown may still take to be answered (as long
/// as the unbind's own wait).
const BIND_GRACE_ON_SHUTDOWN: Duration = Duration::from_secs(2);

/// How long a session must have lasted for the next reconnect to start the back-off
/// afresh.
const STABLE_SESSION: Duration = Duration::from_secs(30);

/// The failure count after a session that was bound for `lasted`: one that lasted
/// starts the back-off afresh; one that did not counts as a failed attempt, so an
/// SMSC that accepts the bind and drops the link at once is not hammered.
fn after_session(failures: u32, lasted: Duration) -> u32 {
    if lasted >= STABLE_SESSION {
        0
    } else {
        failures.saturating_add(1)
    }
}

/// Capped exponential back-off with full jitter: 0.5–1 × min(cap, 2^n × 250 ms).
/// The first retry after a session that was up comes quickly.
fn backoff(failures: u32, cap_secs: u64) -> Duration {
    let cap = Duration::from_secs(cap_secs);
    let base = Duration::from_millis(250)
        .saturating_mul(1u32 << failures.min(16))
        .min(cap);
    base.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

async fn connect_and_bind(
    shared: &Shared,
    conn: &Connection,
    kind: BindKind,
) -> Result<Conn, String> {
    let s = &conn.settings;
    let connect_timeout = Duration::from_secs(s.connect_timeout_secs);
    let stream = match timeout(
        connect_timeout,
        TcpStream::connect((s.host.as_str(), s.port)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => {
            return Err(format!(
                "connect: no answer within {}s",
                s.connect_timeout_secs
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let deadline = s.response_timeout(shared.smpp.response_timeout_secs);
    let mut framed = link::framed(stream, shared.smpp.max_pdu_len);
    let version = match s.version {
        SmppVersion::V34 => InterfaceVersion::Smpp3_4,
        SmppVersion::V50 => InterfaceVersion::Smpp5_0,
    };
    let bind = pdu::bind_request(&pdu::BindRequest {
        kind,
        system_id: &s.system_id,
        password: s.password.expose(),
        system_type: &s.system_type,
        version,
    })
    .map_err(|e| format!("bind: {e}"))?;
    if !send(&mut framed, ok(1, bind), deadline).await {
        return Err("bind: write failed".into());
    }
    let wait = deadline;
    let answer = timeout(wait, async {
        while let Some(frame) = framed.next().await {
            let cmd = match frame {
                Ok(Frame::Command(cmd)) => *cmd,
                Ok(Frame::Invalid(bad)) => {
                    if !answer_invalid(&mut framed, &bad, deadline).await {
                        return Err("bind: the SMSC's framing is broken".to_owned());
                    }
                    continue;
                }
                Err(e) => return Err(format!("bind: read failed: {e}")),
            };
            count_in(&cmd);
            let id = cmd.id();
            if matches!(
                id,
                CommandId::BindTransceiverResp
                    | CommandId::BindTransmitterResp
                    | CommandId::BindReceiverResp
            ) || (id == CommandId::GenericNack && cmd.sequence_number() == 1)
            {
                return Ok(cmd.status());
            }
            if id == CommandId::EnquireLink {
                let seq = cmd.sequence_number();
                send(&mut framed, ok(seq, Pdu::EnquireLinkResp), deadline).await;
            }
        }
        Err("bind: the SMSC closed the connection".to_owned())
    })
    .await
    .map_err(|_| format!("bind: no response within {}s", wait.as_secs()))??;
    if answer != CommandStatus::EsmeRok {
        return Err(format!("bind rejected: {answer:?}"));
    }
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sessions_grow_the_back_off_and_a_lasting_one_resets_it() {
        let mut failures = 0;
        for _ in 0..5 {
            failures = after_session(failures, Duration::ZERO);
        }
        assert_eq!(failures, 5);
        // 0.5–1 × min(cap, 2^5 × 250 ms): at least 4 s before the sixth attempt.
        assert!(backoff(failures, 60) >= Duration::from_secs(4));
        assert_eq!(
            after_session(failures, STABLE_SESSION - Duration::from_millis(1)),
            6
        );
        assert_eq!(after_session(failures, STABLE_SESSION), 0);
        assert!(backoff(0, 60) <= Duration::from_millis(250));
    }
}
