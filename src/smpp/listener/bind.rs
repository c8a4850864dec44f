//! The bind phase of a listener connection: only bind_*, enquire_link and unbind
//! are served; anything else gets ESME_RINVBNDSTS. One bind attempt per connection,
//! and the guard's back-off per address, so a password cannot be guessed at the
//! speed of the link.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use rusmpp::{Command, CommandStatus, Pdu};

use super::state::{step, Phase, Step};
use super::Context;

use crate::smpp::link::{answer_invalid, count_in, ok, refuse, send, Conn, Frame};
use crate::smpp::pdu::{self, BindKind};

/// Who bound, and how.
pub(super) struct Bound {
    pub system_id: String,
    pub kind: BindKind,
}

/// Reads until a successful bind (`Some`) or the connection ends (`None`).
pub(super) async fn bind_phase(conn: &mut Conn, ctx: &Context, addr: SocketAddr) -> Option<Bound> {
    let deadline = Duration::from_secs(ctx.settings.response_timeout_secs);
    while let Some(frame) = conn.next().await {
        let cmd = match frame {
            Ok(Frame::Command(cmd)) => *cmd,
            Ok(Frame::Invalid(bad)) => {
                if !answer_invalid(conn, &bad, deadline).await {
                    return None;
                }
                continue;
            }
            Err(e) => {
                tracing::info!(error = %e, "read failed before bind");
                return None;
            }
        };
        count_in(&cmd);
        let seq = cmd.sequence_number();
        let reply = match step(Phase::Open, &cmd) {
            Step::Bind(bind) => return bind_once(conn, ctx, addr, &bind, seq).await,
            Step::EnquireLink => ok(seq, Pdu::EnquireLinkResp),
            Step::Unbind => {
                send(
                    conn,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp),
                    deadline,
                )
                .await;
                return None;
            }
            Step::Refuse(status) => refuse(cmd.id(), status, seq),
            // A stray response: nothing to answer (nothing else comes while open).
            _ => continue,
        };
        if !send(conn, reply, deadline).await {
            return None;
        }
    }
    None
}

/// The connection's one bind attempt: answered, and bound only when accepted.
async fn bind_once(
    conn: &mut Conn,
    ctx: &Context,
    addr: SocketAddr,
    bind: &pdu::Bind<'_>,
    seq: u32,
) -> Option<Bound> {
    let deadline = Duration::from_secs(ctx.settings.response_timeout_secs);
    let status = check_bind(ctx, bind, addr);
    let ok = status == CommandStatus::EsmeRok;
    if !ok {
        // One try per connection, and a few per address per window: a
        // password cannot be guessed at the speed of the link.
        ctx.guard.bind_failed(addr.ip());
        metrics::counter!("otpgw_smpp_bind_failures_total").increment(1);
        crate::telemetry::sampled_by(
            crate::telemetry::Noisy::BindRefused,
            &addr.ip().to_string(),
            || {
                tracing::warn!(system_id = %crate::telemetry::escaped(bind.system_id), status = ?status, "bind refused: closing");
            },
        );
    }
    let sent = send(
        conn,
        pdu::bind_resp(bind.kind, status, seq, bind.interface_version),
        deadline,
    )
    .await;
    if ok && sent {
        return Some(Bound {
            system_id: bind.system_id.to_owned(),
            kind: bind.kind,
        });
    }
    None
}

/// Every refusal answers ESME_RINVPASWD, whatever its cause (no such system_id,
/// another address than `allow_from`, a wrong password, or a system_id blocked
/// after too many wrong passwords), so a stranger learns nothing of which
/// system_ids exist; the log and `otpgw_smpp_bind_failures_total` tell operations.
fn check_bind(ctx: &Context, bind: &pdu::Bind<'_>, addr: SocketAddr) -> CommandStatus {
    const REFUSED: CommandStatus = CommandStatus::EsmeRinvpaswd;
    let peers = ctx.peers.get();
    let Some(peer) = peers.iter().find(|p| p.system_id == bind.system_id) else {
        return REFUSED;
    };
    // The address first, so a bind from elsewhere learns nothing about the password
    // (and cannot block the peer's system_id).
    if !super::address_allowed(&peer.allow_from, addr) {
        return REFUSED;
    }
    if ctx.guard.system_blocked(&peer.system_id) {
        metrics::counter!("otpgw_smpp_bind_guesses_blocked_total").increment(1);
        return REFUSED;
    }
    if !otpgw_rules::codes::hashes_equal(peer.password.expose(), bind.password) {
        if ctx.guard.system_failed(&peer.system_id) {
            tracing::warn!(
                system_id = %peer.system_id,
                "too many wrong passwords for this system_id from any address: its binds are refused for one smpp.bind_failures_per_system_id window"
            );
        }
        return REFUSED;
    }
    CommandStatus::EsmeRok
}
