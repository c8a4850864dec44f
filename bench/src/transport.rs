//! `otpgw bench transport`: an SMPP server with no work behind it. It binds anyone and
//! answers every submit_sm at once with a submit_sm_resp and a deliver_sm carrying a
//! fixed 7-digit code, so `bench sms` against it measures the client, the codec and
//! the machine: the transport limit any gateway here is bounded by.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use futures::{FutureExt, SinkExt, StreamExt};
use rusmpp::pdus::DeliverSm;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use otpgw::smpp::codec::{Frame, SmppCodec};
use otpgw::smpp::pdu;

use crate::duration::parse_duration;

/// The code every reply carries (the load tool only checks that there is one).
const FIXED_CODE_TEXT: &str = "Your code: 1234567";
const MAX_PDU: usize = 8192;
const BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// A session with no PDU for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Args)]
pub struct TransportArgs {
    /// Where to listen; port 0 picks a free port (printed on stdout as JSON).
    #[arg(long, default_value = "127.0.0.1:2776")]
    pub listen: String,
    /// Sessions served at once; more wait for a free place.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_sessions: u32,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long = "for", value_name = "DURATION")]
    pub run_for: Option<String>,
}

#[derive(Default)]
struct Counts {
    sessions: AtomicU64,
    submits: AtomicU64,
}

pub async fn run(args: TransportArgs, stop: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("Failed to listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("{}", serde_json::json!({"listening": addr.to_string()}));
    eprintln!("bench transport listening on {addr}; Ctrl-C stops it");
    if let Some(d) = &args.run_for {
        let d = parse_duration(d)?;
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        });
    }
    let counts = Arc::new(Counts::default());
    let places = Arc::new(Semaphore::new(args.max_sessions as usize));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = places.clone().acquire_owned() => p?,
            _ = stop.cancelled() => break,
        };
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        counts.sessions.fetch_add(1, Ordering::Relaxed);
        let (counts, stop) = (counts.clone(), stop.clone());
        tracker.spawn(async move {
            if let Err(e) = serve(socket, &counts, stop).await {
                eprintln!("session ended: {e:#}");
            }
            drop(permit);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    println!(
        "{}",
        serde_json::json!({
            "sessions": counts.sessions.load(Ordering::Relaxed),
            "submit_sm_answered": counts.submits.load(Ordering::Relaxed),
        })
    );
    Ok(())
}

fn reply(to: &str, from: &str) -> Result<DeliverSm> {
    let addr = |a: &str| COctetString::from_str(a).map_err(|_| anyhow::anyhow!("bad address"));
    Ok(DeliverSm::builder()
        .source_addr_ton(Ton::Alphanumeric)
        .source_addr_npi(Npi::Unknown)
        .source_addr(addr(from)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(addr(to)?)
        .esm_class(EsmClass::from(0x00u8))
        .data_coding(DataCoding::from(0x00u8))
        .short_message(OctetString::from_str(FIXED_CODE_TEXT).map_err(|_| anyhow::anyhow!("text"))?)
        .build())
}

/// One session: bind anyone, then answer. Responses are fed and flushed only when no
/// further PDU is already buffered, so a burst costs one write.
async fn serve(socket: TcpStream, counts: &Counts, stop: CancellationToken) -> Result<()> {
    socket.set_nodelay(true)?;
    let mut framed = Framed::new(socket, SmppCodec::new(MAX_PDU));
    let enc = |e: rusmpp::tokio_codec::EncodeError| anyhow::anyhow!("encode: {e}");
    // The bind, under a timeout.
    let first = tokio::time::timeout(BIND_TIMEOUT, framed.next())
        .await
        .context("no bind in time")?;
    let Some(Frame::Command(cmd)) = first.transpose()? else {
        anyhow::bail!("the first PDU was not a bind");
    };
    let Some(bind) = cmd.pdu().and_then(pdu::bind) else {
        framed
            .send(pdu::header_only(
                CommandId::GenericNack,
                CommandStatus::EsmeRinvbndsts,
                cmd.sequence_number(),
            ))
            .await
            .map_err(enc)?;
        anyhow::bail!("the first PDU was not a bind");
    };
    let (kind, version) = (bind.kind, bind.interface_version);
    framed
        .send(pdu::bind_resp(
            kind,
            CommandStatus::EsmeRok,
            cmd.sequence_number(),
            version,
        ))
        .await
        .map_err(enc)?;
    let mut seq: u32 = 0;
    loop {
        // Only when nothing is buffered: flush, then wait.
        let next = match framed.next().now_or_never() {
            Some(f) => f,
            None => {
                framed.flush().await.map_err(enc)?;
                tokio::select! {
                    f = tokio::time::timeout(IDLE_TIMEOUT, framed.next()) => f.context("idle")?,
                    _ = stop.cancelled() => {
                        framed.send(Command::new(CommandStatus::EsmeRok, 1, Pdu::Unbind)).await.map_err(enc)?;
                        return Ok(());
                    }
                }
            }
        };
        let cmd = match next {
            None => return Ok(()),
            Some(frame) => match frame? {
                Frame::Command(cmd) => cmd,
                Frame::Invalid(bad) => {
                    if bad.wants_nack() {
                        framed.feed(bad.generic_nack()).await.map_err(enc)?;
                    }
                    if bad.framing_lost {
                        framed.flush().await.map_err(enc)?;
                        return Ok(());
                    }
                    continue;
                }
            },
        };
        let n = cmd.sequence_number();
        match cmd.pdu() {
            Some(p @ Pdu::SubmitSm(_)) => {
                counts.submits.fetch_add(1, Ordering::Relaxed);
                framed
                    .feed(pdu::message_resp(CommandId::SubmitSm, n, "1"))
                    .await
                    .map_err(enc)?;
                if kind.can_receive() {
                    if let Some(msg) = pdu::message(p) {
                        seq = seq.wrapping_add(1).max(1) % 0x7FFF_FFFF;
                        let deliver = reply(&msg.source, &msg.destination)?;
                        framed
                            .feed(Command::new(CommandStatus::EsmeRok, seq.max(1), deliver))
                            .await
                            .map_err(enc)?;
                    }
                }
            }
            Some(Pdu::EnquireLink) => framed
                .feed(Command::new(
                    CommandStatus::EsmeRok,
                    n,
                    Pdu::EnquireLinkResp,
                ))
                .await
                .map_err(enc)?,
            Some(Pdu::Unbind) => {
                framed
                    .send(Command::new(CommandStatus::EsmeRok, n, Pdu::UnbindResp))
                    .await
                    .map_err(enc)?;
                return Ok(());
            }
            Some(Pdu::UnbindResp) => return Ok(()),
            // deliver_sm_resp, generic_nack and other responses need no answer.
            _ if !cmd.id().is_operation() => {}
            _ => framed
                .feed(pdu::header_only(
                    CommandId::GenericNack,
                    CommandStatus::EsmeRinvcmdid,
                    n,
                ))
                .await
                .map_err(enc)?,
        }
    }
}
