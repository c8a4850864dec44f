//! A few SMPP PDUs written by hand, for input no third-party client will produce
//! (distinct command_status values on requests, binds from chosen source addresses,
//! a peer that stops reading).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
pub const BIND_RECEIVER: u32 = 0x0000_0001;
pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
pub const DELIVER_SM: u32 = 0x0000_0005;

/// One PDU: header (length, id, status, sequence) and body.
pub fn pdu(command_id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    out.extend_from_slice(&command_id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn bind_transceiver(seq: u32, system_id: &str, password: &str) -> Vec<u8> {
    bind(BIND_TRANSCEIVER, seq, system_id, password)
}

pub fn bind(command_id: u32, seq: u32, system_id: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for s in [system_id, password, ""] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0x34, 0, 0, 0]); // interface_version, addr_ton, addr_npi, address_range ""
    pdu(command_id, 0, seq, &body)
}

/// A submit_sm from a subscriber to a short code, IA5 text in short_message.
pub fn submit_sm(seq: u32, from: &str, to: &str, text: &str) -> Vec<u8> {
    let mut body = vec![0u8, 1, 1]; // service_type "", source_addr_ton 1, npi 1
    body.extend_from_slice(from.as_bytes());
    body.extend_from_slice(&[0, 0, 1]); // NUL, dest_addr_ton 0, npi 1
    body.extend_from_slice(to.as_bytes());
    // NUL, esm_class, protocol_id, priority_flag, schedule "", validity "",
    // registered_delivery, replace_if_present, data_coding 1 (IA5), sm_default_msg_id
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    body.push(text.len() as u8);
    body.extend_from_slice(text.as_bytes());
    pdu(SUBMIT_SM, 0, seq, &body)
}

/// The runs of exactly 7 ASCII digits in a PDU body (codes in a GSM-7/IA5 reply).
pub fn codes_in(body: &[u8]) -> Vec<String> {
    body.split(|b| !b.is_ascii_digit())
        .filter(|run| run.len() == 7)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

/// As `connect_from`, with a small receive buffer, so that a peer that stops reading
/// makes the gateway's writes block soon.
pub fn connect_small(to: SocketAddr) -> TcpStream {
    connect_with(to, |socket| socket.set_recv_buffer_size(4096).unwrap())
}

/// A TCP connection to `to` from the loopback address `from` (e.g. 127.0.0.2), so a
/// test can stand for several client addresses.
pub fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    connect_with(to, |socket| {
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap()
    })
}

/// A blocking TCP connection to `to` from a socket `set_up` prepared.
fn connect_with(to: SocketAddr, set_up: impl FnOnce(&tokio::net::TcpSocket)) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        set_up(&socket);
        socket.connect(to).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}

/// `stream`, bound as `kannel` with `command_id` (a bind_* request): the bind is
/// answered with status 0 within 10 s.
pub fn bound(mut stream: TcpStream, command_id: u32) -> TcpStream {
    assert!(send(&mut stream, &bind(command_id, 1, "kannel", "secret")));
    let (_, status, ..) = read_pdu(&mut stream, Duration::from_secs(10)).expect("bind_resp");
    assert_eq!(status, 0, "bind {command_id:#x}");
    stream
}

/// Reads PDUs until one with `command_id` comes, within `within` in all: its body.
pub fn read_until(stream: &mut TcpStream, command_id: u32, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no PDU {command_id:#x} within {within:?}");
        let (id, _, _, body) = read_pdu(stream, left).expect("a PDU, not a close");
        if id == command_id {
            return body;
        }
    }
}

/// Reads one PDU: (command_id, command_status, sequence_number, body); `None` when
/// the connection was closed (EOF or reset) before a whole PDU arrived.
pub fn read_pdu(stream: &mut TcpStream, within: Duration) -> Option<(u32, u32, u32, Vec<u8>)> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut header = [0u8; 16];
    read_exact(stream, &mut header)?;
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
    let mut body = vec![0u8; (word(0) as usize).saturating_sub(16)];
    read_exact(stream, &mut body)?;
    Some((word(4), word(8), word(12), body))
}

fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) -> Option<()> {
    match stream.read_exact(buf) {
        Ok(()) => Some(()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no PDU and no close within the deadline")
        }
        Err(_) => None,
    }
}

/// True when the peer closed the connection within `within` (EOF or reset), false
/// when it is still open (nothing to read by then).
pub fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sends `bytes`, tolerating a connection the gateway already closed.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).is_ok()
}
