//! Criterion benches of the hot pure functions on the SMS path: parsing a customer's
//! text, decoding `short_message`, generating and hashing a code, and PDU ↔ plain
//! values (a submit_sm through our codec and `pdu::message`; a reply `deliver_sm`
//! built and encoded). Short measurement times keep `cargo bench` quick on 2 cores;
//! `cargo bench --bench hot_paths -- --measurement-time 10` for steadier figures.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use otpgw::smpp::codec::{Frame, SmppCodec};
use otpgw::smpp::pdu;
use otpgw_parsers::sms::{parse_sms, SmsGrammar};
use otpgw_parsers::text::decode_short_message;
use otpgw_rules::codes::{Code, Keys, Pan};
use rusmpp::pdus::SubmitSm;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, Ton};
use rusmpp::{Command, CommandStatus};
use tokio_util::codec::{Decoder, Encoder};

fn parsing(c: &mut Criterion) {
    let grammar = SmsGrammar::default();
    let mut g = c.benchmark_group("parse_sms");
    for (name, text) in [
        ("last4", "4321"),
        ("keyword_persian_digits", "رمز ۴۳۲۱"),
        ("last6_spaced", " otp 12-34-56 "),
        ("unrecognised", "hello, what is my balance please?"),
    ] {
        g.bench_function(name, |b| b.iter(|| parse_sms(black_box(text), &grammar)));
    }
    g.finish();
}

fn decoding(c: &mut Criterion) {
    let gsm = b"OTP 4321".to_vec();
    let ucs2: Vec<u8> = "رمز ۴۳۲۱"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let mut g = c.benchmark_group("decode_short_message");
    g.bench_function("gsm7_dc0", |b| {
        b.iter(|| decode_short_message(black_box(0), black_box(&gsm)))
    });
    g.bench_function("ucs2_dc8", |b| {
        b.iter(|| decode_short_message(black_box(8), black_box(&ucs2)))
    });
    g.finish();
}

fn codes(c: &mut Criterion) {
    let keys = Keys::generate();
    let pan = Pan::parse("6037990000004321").expect("a valid test card");
    let pan_hash = keys.pan_hash(&pan);
    let code = Code::generate();
    let mut g = c.benchmark_group("codes");
    g.bench_function("generate", |b| b.iter(Code::generate));
    g.bench_function("pan_hash", |b| b.iter(|| keys.pan_hash(black_box(&pan))));
    g.bench_function("code_hash", |b| {
        b.iter(|| keys.code_hash(black_box(&pan_hash), black_box(&code)))
    });
    g.finish();
}

/// A customer's submit_sm as a peer sends it, as bytes on the wire.
fn submit_sm_bytes() -> BytesMut {
    let sm = SubmitSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(COctetString::from_str("989121234567").expect("address"))
        .dest_addr_ton(Ton::Unknown)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(COctetString::from_str("30003303").expect("address"))
        .esm_class(EsmClass::from(0x00u8))
        .data_coding(DataCoding::from(0x00u8))
        .short_message(OctetString::from_str("4321").expect("text"))
        .build();
    let mut buf = BytesMut::new();
    SmppCodec::new(8192)
        .encode(Command::new(CommandStatus::EsmeRok, 7, sm), &mut buf)
        .expect("encodes");
    buf
}

fn pdus(c: &mut Criterion) {
    let wire = submit_sm_bytes();
    let mut g = c.benchmark_group("pdu");
    g.bench_function("submit_sm_decode_to_message", |b| {
        let mut codec = SmppCodec::new(8192);
        b.iter(|| {
            let mut buf = wire.clone();
            match codec.decode(&mut buf) {
                Ok(Some(Frame::Command(cmd))) => cmd.pdu().and_then(pdu::message),
                _ => None,
            }
        })
    });
    let mut out = BytesMut::with_capacity(512);
    let mut codec = SmppCodec::new(8192);
    // Latin replies go out in GSM 7-bit, Persian ones in UCS-2 (usually in the
    // message_payload TLV): both encodings are on the hot path.
    for (coding, text) in [
        (
            "gsm7",
            "Your code for card 4321: 1234567. It expires in 60 seconds.",
        ),
        ("ucs2", "رمز پویای کارت ۴۳۲۱: 1234567 (۶۰ ثانیه)"),
    ] {
        g.bench_function(format!("deliver_sm_reply_encode_{coding}"), |b| {
            b.iter(|| {
                let sm =
                    pdu::deliver_sm("BankOTP", black_box("989121234567"), black_box(text), None)
                        .expect("a reply");
                out.clear();
                codec
                    .encode(Command::new(CommandStatus::EsmeRok, 9, sm), &mut out)
                    .expect("encodes");
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = parsing, decoding, codes, pdus
}
criterion_main!(hot_paths);
