//! The response to a customer's message always reaches the peer before the reply
//! it caused, in both directions: a listener peer reads its submit_sm_resp before
//! the deliver_sm carrying the code, and an operator SMSC its deliver_sm_resp before
//! the submit_sm. Both tests read the peer's side of the socket in order.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::cards;
use crate::harness::{Gateway, SHORT_CODE};
use crate::raw::{self, read_pdu};

const DELIVER_SM_RESP: u32 = 0x8000_0005;
const DELIVER_SM_RESP_OR_SUBMIT: [u32; 2] = [DELIVER_SM_RESP, raw::SUBMIT_SM];

/// A customer's message as an SMSC delivers it (a deliver_sm, body as a submit_sm's).
fn deliver_sm(seq: u32, from: &str, text: &str) -> Vec<u8> {
    let mut pdu = raw::submit_sm(seq, from, SHORT_CODE, text);
    pdu[4..8].copy_from_slice(&raw::DELIVER_SM.to_be_bytes());
    pdu
}

/// The PDUs the peer reads next, answering enquire_link on the way, until `n` of
/// the wanted commands came: (command_id, sequence_number, body).
fn next_pdus(s: &mut TcpStream, wanted: &[u32], n: usize) -> Vec<(u32, u32, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {seen:?} within 20 s");
        let (id, _, seq, body) = read_pdu(s, left).expect("the gateway closed the link");
        if id == raw::ENQUIRE_LINK {
            raw::send(s, &raw::pdu(raw::ENQUIRE_LINK_RESP, 0, seq, &[]));
        } else if wanted.contains(&id) {
            seen.push((id, seq, body));
        }
    }
    seen
}

/// Accepts the gateway's connection to our SMSC, within 20 s.
fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(_) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("the gateway did not connect: {e}"),
        }
    }
}

#[test]
fn client_mode_answers_the_deliver_sm_before_sending_the_reply() {
    let smsc = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = smsc.local_addr().unwrap().port();
    // English replies are GSM-7: the code reads as ASCII digits in the PDU.
    let gw = Gateway::start_with(&format!(
        "language = \"en\"\n[[smpp.connections]]\nname = \"op\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         system_id = \"otpgw\"\npassword = \"pw\"\nmax_backoff_secs = 1\n"
    ));
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::A, "09121110401");

    let mut s = accept(&smsc);
    let (id, _, seq, _) = read_pdu(&mut s, Duration::from_secs(10)).expect("a bind");
    assert_eq!(id, raw::BIND_TRANSCEIVER);
    raw::send(
        &mut s,
        &raw::pdu(raw::BIND_TRANSCEIVER_RESP, 0, seq, b"smsc\0"),
    );

    // A burst, so that answers and replies are in flight at once: every reply
    // must come after the response of a message it can answer.
    const BURST: u32 = 40;
    for i in 0..BURST {
        raw::send(&mut s, &deliver_sm(7000 + i, "989121110401", "4321"));
    }
    let (mut responses, mut replies) = (0, 0);
    while replies < BURST {
        let (id, seq, body) = next_pdus(&mut s, &DELIVER_SM_RESP_OR_SUBMIT, 1).remove(0);
        if id == DELIVER_SM_RESP {
            responses += 1;
            continue;
        }
        replies += 1;
        assert!(
            replies <= responses,
            "reply {replies} left before the response of any message it answers ({responses} responses)"
        );
        assert_eq!(raw::codes_in(&body).len(), 1, "the reply carries a code");
        raw::send(
            &mut s,
            &raw::pdu(raw::SUBMIT_SM_RESP, 0, seq, format!("m{seq}\0").as_bytes()),
        );
    }
}

#[test]
fn the_listener_answers_the_submit_sm_before_delivering_the_reply() {
    let gw = Gateway::start_with("language = \"en\"");
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::A, "09121110402");

    let mut s = TcpStream::connect(gw.smpp).unwrap();
    raw::send(&mut s, &raw::bind_transceiver(1, "kannel", "secret"));
    let (id, status, _, _) = read_pdu(&mut s, Duration::from_secs(10)).expect("bind_resp");
    assert_eq!((id, status), (raw::BIND_TRANSCEIVER_RESP, 0));

    for (n, seq) in [(1, 8001), (2, 8002)] {
        raw::send(
            &mut s,
            &raw::submit_sm(seq, "989121110402", SHORT_CODE, "4321"),
        );
        let pdus = next_pdus(&mut s, &[raw::SUBMIT_SM_RESP, raw::DELIVER_SM], 2);
        assert_eq!(
            (pdus[0].0, pdus[0].1),
            (raw::SUBMIT_SM_RESP, seq),
            "message {n}: the submit_sm_resp comes first"
        );
        assert_eq!(pdus[1].0, raw::DELIVER_SM, "message {n}: then the reply");
        assert_eq!(
            raw::codes_in(&pdus[1].2).len(),
            1,
            "the reply carries a code"
        );
        raw::send(&mut s, &raw::pdu(DELIVER_SM_RESP, 0, pdus[1].1, b"\0"));
    }
}
