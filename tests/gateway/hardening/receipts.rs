//! A hostile (or merely backlogged) operator SMSC floods delivery receipts: the
//! gateway records a bounded number at a time per connection and stops reading the
//! rest, so its memory stays flat and verify keeps answering. The SMSC here is
//! written by hand: no third-party SMSC sends receipts this fast on demand.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cards;
use crate::harness::Gateway;
use crate::raw::{self, read_pdu};

const DELIVER_SM_RESP: u32 = 0x8000_0005;

/// A deliver_sm receipt for message `id` (esm_class 0x04), which matches nothing.
fn receipt(seq: u32, id: u32) -> Vec<u8> {
    let text = format!(
        "id:{id:08x} sub:001 dlvrd:001 submit date:2612041200 done date:2612041200 stat:DELIVRD err:000 text:"
    );
    let mut body = vec![0u8, 1, 1];
    body.extend_from_slice(b"989121110900\0\0\x01");
    body.extend_from_slice(b"98700\0");
    // esm_class 0x04 (receipt), protocol_id, priority_flag, schedule "", validity "",
    // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    body.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 0, 0, 0]);
    body.push(text.len() as u8);
    body.extend_from_slice(text.as_bytes());
    raw::pdu(raw::DELIVER_SM, 0, seq, &body)
}

/// The bound: 50,000 receipts a second offered for 10 s, while the gateway's
/// resident memory stays under 300 MB and verify's p99 under 500 ms.
#[test]
fn a_receipt_flood_is_held_back_by_tcp_while_memory_stays_flat_and_verify_answers() {
    let smsc = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = smsc.local_addr().unwrap().port();
    let (gw, admin, verifier) = Gateway::start_with(&format!(
        "[[smpp.connections]]\nname = \"flood\"\nhost = \"127.0.0.1\"\nport = {port}\nsystem_id = \"otpgw\"\npassword = \"pw\"\nmax_backoff_secs = 1\n"
    ))
    .with_keys();
    let (mut conn, _) = smsc.accept().unwrap();
    let (id, _, seq, _) = read_pdu(&mut conn, Duration::from_secs(10)).expect("a bind");
    assert_eq!(id, raw::BIND_TRANSCEIVER);
    conn.write_all(&raw::pdu(raw::BIND_TRANSCEIVER_RESP, 0, seq, b"smsc\0"))
        .unwrap();
    gw.enroll(&admin, cards::A, "989121110900");

    // The SMSC's reader answers enquire_link and counts the answered receipts.
    let writer = Arc::new(Mutex::new(conn.try_clone().unwrap()));
    // It ends when the test shuts the socket down.
    let answered = Arc::new(AtomicU64::new(0));
    let reader = {
        let (writer, answered) = (writer.clone(), answered.clone());
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || loop {
            match read_pdu(&mut conn, Duration::from_secs(120)) {
                Some((DELIVER_SM_RESP, _, _, _)) => {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Some((raw::ENQUIRE_LINK, _, seq, _)) => {
                    let resp = raw::pdu(raw::ENQUIRE_LINK_RESP, 0, seq, &[]);
                    let _ = writer.lock().unwrap().write_all(&resp);
                }
                Some(_) => {}
                None => break,
            }
        })
    };
    // 5,000 receipts every 100 ms for 10 s: 50,000 a second offered, as fast as TCP
    // takes them.
    let flood = {
        let writer = writer.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut offered = 0u32;
            for tick in 0..100u32 {
                let batch: Vec<u8> = (0..5_000u32)
                    .flat_map(|i| receipt(1 + offered + i, offered + i))
                    .collect();
                offered += 5_000;
                if writer.lock().unwrap().write_all(&batch).is_err() {
                    break;
                }
                let next = started + Duration::from_millis(100 * u64::from(tick + 1));
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                if started.elapsed() > Duration::from_secs(10) {
                    break;
                }
            }
            offered
        })
    };

    let started = Instant::now();
    let (mut latencies, mut peak_kib, mut n) = (Vec::new(), 0u64, 0u32);
    while started.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        let v = gw.verify(&verifier, cards::A, "1234567", &format!("flood-{n}"));
        latencies.push(t.elapsed());
        assert_eq!(v["reason"], "invalid", "{v}");
        peak_kib = peak_kib.max(gw.rss_kib());
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let offered = flood.join().unwrap();
    let answered = answered.load(Ordering::Relaxed);
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    reader.join().unwrap();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "offered {offered} receipts, {answered} answered; {n} verifies, p99 {p99:?}, max {:?}; peak RSS {} MB",
        latencies.last().unwrap(),
        peak_kib / 1024
    );
    assert!(peak_kib < 300 * 1024, "peak RSS {} MB", peak_kib / 1024);
    assert!(p99 < Duration::from_millis(500), "verify p99 {p99:?}");
    let metrics = gw.metrics_text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("otpgw_receipts_held_back_total{connection=\"flood\"}")),
        "the flood was held back: {}",
        metrics
            .lines()
            .filter(|l| l.contains("receipt"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
