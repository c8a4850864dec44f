//! One SMPP session of `bench sms`: the bind_transceiver (a refusal is named by its
//! status), the writer that batches PDUs into one write, and the reader that answers
//! the server (deliver_sm_resp, enquire_link_resp, unbind_resp) and ends requests on
//! their submit_sm_resp errors and code replies.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use otpgw::smpp::codec::{Frame, SmppCodec};
use otpgw::smpp::pdu;
use rusmpp::pdus::BindTransceiver;
use rusmpp::types::COctetString;
use rusmpp::values::InterfaceVersion;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use super::args::Target;
use super::flight::{Done, Shared, CONTROL_SEQ};
use crate::report::lock;

/// Largest PDU accepted from the server.
const MAX_PDU: usize = 64 * 1024;
/// PDUs written per flush at most; the writer flushes whenever its queue is empty.
const WRITE_BATCH: usize = 256;
/// Connecting and binding each wait at most this long.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// `EsmeRthrottled` → `ESME_RTHROTTLED`, the spec's spelling.
pub fn status_name(status: CommandStatus) -> String {
    let debug = format!("{status:?}");
    match debug.strip_prefix("Esme") {
        Some(rest) => format!("ESME_{}", rest.to_uppercase()),
        None => format!("status_{:#x}", u32::from(status)),
    }
}

/// The 7-digit code in a reply text, if there is exactly one.
fn code_in(text: &str) -> Option<String> {
    let mut found = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| s.len() == otpgw_rules::codes::CODE_DIGITS);
    let code = found.next()?;
    found.next().is_none().then(|| code.to_owned())
}

pub type Halves = (
    FramedRead<OwnedReadHalf, SmppCodec>,
    FramedWrite<OwnedWriteHalf, SmppCodec>,
);

pub async fn bind_all(target: &Target, binds: usize) -> Result<Vec<Halves>> {
    let system_id = COctetString::from_str(&target.system_id)
        .map_err(|_| anyhow::anyhow!("--system-id must be 1 to 15 ASCII characters"))?;
    let password = COctetString::from_str(&target.password)
        .map_err(|_| anyhow::anyhow!("--password must be 1 to 8 ASCII characters"))?;
    let mut out = Vec::with_capacity(binds);
    for i in 0..binds {
        let stream = tokio::time::timeout(SETUP_TIMEOUT, TcpStream::connect(&target.smpp))
            .await
            .with_context(|| format!("connecting to {} timed out", target.smpp))?
            .with_context(|| format!("Failed to connect to {}", target.smpp))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut read = FramedRead::new(r, SmppCodec::new(MAX_PDU));
        let mut write = FramedWrite::new(w, SmppCodec::new(MAX_PDU));
        let bind = BindTransceiver::builder()
            .system_id(system_id.clone())
            .password(password.clone())
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        let seq = CONTROL_SEQ + 2 + i as u32;
        write
            .send(Command::new(CommandStatus::EsmeRok, seq, bind))
            .await
            .map_err(|e| anyhow::anyhow!("sending bind_transceiver: {e}"))?;
        let resp = tokio::time::timeout(SETUP_TIMEOUT, async {
            while let Some(frame) = read.next().await {
                if let Frame::Command(cmd) = frame? {
                    if cmd.id() == CommandId::BindTransceiverResp
                        || cmd.id() == CommandId::GenericNack
                    {
                        return Ok::<_, std::io::Error>(Some(cmd));
                    }
                }
            }
            Ok(None)
        })
        .await
        .with_context(|| format!("no bind_transceiver_resp from {} in time", target.smpp))??;
        let Some(resp) = resp else {
            bail!("{} closed the connection during the bind", target.smpp);
        };
        if resp.status() != CommandStatus::EsmeRok {
            bail!(
                "bind {} of {binds} refused by {}: {} ({:#010x})",
                i + 1,
                target.smpp,
                status_name(resp.status()),
                u32::from(resp.status())
            );
        }
        out.push((read, write));
    }
    Ok(out)
}

pub async fn write_loop(
    mut sink: FramedWrite<OwnedWriteHalf, SmppCodec>,
    mut rx: mpsc::Receiver<Command>,
) -> Result<()> {
    while let Some(cmd) = rx.recv().await {
        sink.feed(cmd).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // Whatever else is queued goes out in the same write.
        let mut n = 1;
        while n < WRITE_BATCH {
            match rx.try_recv() {
                Ok(cmd) => sink.feed(cmd).await.map_err(|e| anyhow::anyhow!("{e}"))?,
                Err(_) => break,
            }
            n += 1;
        }
        sink.flush().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Reads one session until it ends. If the server ends it (closes, unbinds, or the
/// framing is lost) before our unbind, that is an error of the run, and the session's
/// generator stops: the other sessions take over its share.
pub async fn read_loop(
    shared: Arc<Shared>,
    stream: FramedRead<OwnedReadHalf, SmppCodec>,
    tx: mpsc::Sender<Command>,
    closed: CancellationToken,
    lost: CancellationToken,
) {
    if let Some(reason) = read_frames(&shared, stream, &tx, &closed).await {
        lock(&shared.report).error(reason);
        lost.cancel();
    }
}

/// `None` when the session ended as the tool asked, else why it ended.
async fn read_frames(
    shared: &Shared,
    mut stream: FramedRead<OwnedReadHalf, SmppCodec>,
    tx: &mpsc::Sender<Command>,
    closed: &CancellationToken,
) -> Option<String> {
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = closed.cancelled() => return None,
        };
        let cmd = match frame {
            None => return Some("connection_closed_by_server".into()),
            Some(Err(e)) => return Some(format!("io: {}", e.kind())),
            Some(Ok(Frame::Invalid(bad))) => {
                lock(&shared.report).error("invalid_pdu");
                if bad.wants_nack() {
                    let _ = tx.send(bad.generic_nack()).await;
                }
                if bad.framing_lost {
                    return Some("framing_lost".into());
                }
                continue;
            }
            Some(Ok(Frame::Command(cmd))) => cmd,
        };
        let seq = cmd.sequence_number();
        if matches!(cmd.id(), CommandId::SubmitSmResp | CommandId::GenericNack) {
            // Error responses have no body: match on the id, not the PDU.
            on_submit_resp(shared, seq, cmd.status());
            continue;
        }
        match cmd.pdu() {
            Some(p @ Pdu::DeliverSm(_)) => {
                let _ = tx
                    .send(pdu::message_resp(CommandId::DeliverSm, seq, ""))
                    .await;
                on_reply(shared, p);
            }
            Some(Pdu::EnquireLink) => {
                let _ = tx
                    .send(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::EnquireLinkResp,
                    ))
                    .await;
            }
            Some(Pdu::Unbind) => {
                let _ = tx
                    .send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp))
                    .await;
                return Some("unbound_by_server".into());
            }
            // The answer to our unbind at the end of the run.
            Some(Pdu::UnbindResp) => return None,
            _ => {}
        }
    }
}

fn on_submit_resp(shared: &Shared, seq: u32, status: CommandStatus) {
    if status == CommandStatus::EsmeRok {
        shared.submit_ok.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let name = status_name(status);
    let credited = shared
        .card_of(seq)
        .is_some_and(|(idx, g)| shared.complete(idx, Some(g), Done::Error(name.clone())));
    if !credited {
        // Still an error the server returned; it just ended no request of ours.
        lock(&shared.report).error(name);
    }
}

fn on_reply(shared: &Shared, p: &Pdu) {
    let Some(msg) = pdu::message(p) else { return };
    if msg.receipt {
        lock(&shared.report).count("delivery_receipts", 1);
        return;
    }
    let Some(&idx) = shared.by_msisdn.get(&msg.destination) else {
        lock(&shared.report).count("replies_to_unknown_numbers", 1);
        return;
    };
    let done = match code_in(&msg.text) {
        Some(code) => Done::Code(code),
        None => Done::NoCode,
    };
    if !shared.complete(idx, None, done) {
        lock(&shared.report).count("late_replies", 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        assert_eq!(
            status_name(CommandStatus::EsmeRthrottled),
            "ESME_RTHROTTLED"
        );
        assert_eq!(status_name(CommandStatus::EsmeRbindfail), "ESME_RBINDFAIL");
        assert_eq!(
            code_in("Your code: 1234567 (60 s)").as_deref(),
            Some("1234567")
        );
        assert_eq!(code_in("send 4321 to 30003303"), None);
        assert_eq!(code_in("1234567 7654321"), None);
    }
}
