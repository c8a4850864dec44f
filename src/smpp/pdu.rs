//! PDUs ↔ plain values: what a subscriber message says (addresses and decoded text),
//! and the PDUs we answer with. Nothing here knows about cards or codes.

use std::str::FromStr;

use otpgw_parsers::text::{decode_short_message, gsm7_fits};
use rusmpp::command::CommandParts;
use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;
use rusmpp::extra::encoding::ucs2::Ucs2;
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, DeliverSmResp,
    SubmitSmResp,
};
use rusmpp::tlvs::{MessageDeliveryRequestTlvValue, TlvValue};
use rusmpp::types::{AnyOctetString, COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, ItsSessionInfo, MessagePayload, Npi, ServiceType, Ton,
    UssdServiceOp,
};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};

/// Longest text carried in `short_message`; longer goes in `message_payload`,
/// which the peer's SMSC segments for the handset.
const SHORT_MESSAGE_MAX: usize = 140;

/// A subscriber message as the session needs it.
#[derive(Debug)]
pub struct Message {
    pub source: String,
    pub destination: String,
    pub text: String,
    /// A delivery receipt (esm_class message type 0x04), not a customer's message.
    pub receipt: bool,
    pub service_type: String,
    /// The `ussd_service_op` TLV (0x0501), when present.
    pub ussd_op: Option<u8>,
    /// The `its_session_info` TLV (0x1383): session number, sequence octet.
    pub session_info: Option<(u8, u8)>,
}

impl Message {
    /// USSD rather than SMS: the USSD service type or a `ussd_service_op` TLV.
    pub fn is_ussd(&self) -> bool {
        self.ussd_op.is_some() || self.service_type.eq_ignore_ascii_case("USSD")
    }
}

/// What makes a deliver_sm a USSD screen: continue or end, and the session to echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UssdMeta {
    pub end: bool,
    pub session_info: Option<(u8, u8)>,
}

pub const USSD_PSSR_INDICATION: u8 = 1;
pub const USSD_USSR_REQUEST: u8 = 2;
pub const USSD_PSSR_RESPONSE: u8 = 17;
pub const USSD_USSR_CONFIRM: u8 = 18;
/// Not in the SMPP spec; USSD gateway vendors send it when the user hangs up.
pub const USSD_USER_ABORT: u8 = 0x81;

#[derive(Debug, thiserror::Error)]
pub enum PduError {
    #[error("address {0:?} does not fit an SMPP address field")]
    Address(String),
    #[error("reply text cannot be encoded")]
    Encoding,
}

/// Reads a submit_sm or deliver_sm; `None` for other PDUs.
pub fn message(pdu: &Pdu) -> Option<Message> {
    let (service_type, source, destination, esm, dc, short, tlvs) = match pdu {
        Pdu::SubmitSm(sm) => (
            sm.service_type.value().as_str(),
            sm.source_addr.as_str(),
            sm.destination_addr.as_str(),
            u8::from(sm.esm_class),
            u8::from(sm.data_coding),
            sm.short_message().as_ref(),
            sm.tlvs(),
        ),
        Pdu::DeliverSm(sm) => (
            sm.service_type.value().as_str(),
            sm.source_addr.as_str(),
            sm.destination_addr.as_str(),
            u8::from(sm.esm_class),
            u8::from(sm.data_coding),
            sm.short_message().as_ref(),
            sm.tlvs(),
        ),
        _ => return None,
    };
    let (mut payload, mut ussd_op, mut session_info) = (None, None, None);
    for tlv in tlvs {
        match tlv.value() {
            Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref()),
            Some(TlvValue::UssdServiceOp(op)) => ussd_op = Some(u8::from(*op)),
            Some(TlvValue::ItsSessionInfo(i)) => {
                session_info = Some((i.session_number, i.sequence_number))
            }
            _ => {}
        }
    }
    let mut body = match payload {
        Some(p) if short.is_empty() => p,
        _ => short,
    };
    if esm & 0x40 != 0 {
        // UDHI: skip the user data header (its first octet is its length).
        let udh_len = body.first().map_or(0, |l| usize::from(*l) + 1);
        body = body.get(udh_len..).unwrap_or_default();
    }
    // Undecodable text is answered like unreadable text ("not understood").
    let text = decode_short_message(dc, body).unwrap_or_else(|_| "\u{FFFD}".into());
    Some(Message {
        source: source.to_owned(),
        destination: destination.to_owned(),
        text,
        receipt: esm & 0x3C == 0x04,
        service_type: service_type.to_owned(),
        ussd_op,
        session_info,
    })
}

/// A reply to the customer, GSM-7 when every character allows it, UCS-2 otherwise.
/// For USSD (`ussd` set): service_type "USSD", `ussd_service_op` USSR request
/// (continue) or PSSR response (end), and the peer's `its_session_info` echoed with the
/// end-of-session bit (the lowest) set on the last screen.
pub fn deliver_sm(
    sender_id: &str,
    to: &str,
    text: &str,
    ussd: Option<UssdMeta>,
) -> Result<DeliverSm, PduError> {
    let (bytes, coding) = if gsm7_fits(text) {
        (
            Gsm7BitUnpacked::new()
                .encode_to_vec(text)
                .map_err(|_| PduError::Encoding)?,
            DataCoding::from(0x00u8),
        )
    } else {
        (
            Ucs2::new()
                .encode_to_vec(text)
                .map_err(|_| PduError::Encoding)?,
            DataCoding::Ucs2,
        )
    };
    let (source_ton, source_npi) = if sender_id.bytes().all(|b| b.is_ascii_digit()) {
        (Ton::Unknown, Npi::Isdn)
    } else {
        (Ton::Alphanumeric, Npi::Unknown)
    };
    let address = |a: &str| COctetString::from_str(a).map_err(|_| PduError::Address(a.to_owned()));
    let builder = DeliverSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(address(sender_id)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(address(to)?)
        // Not EsmClass::default(), which is not 0.
        .esm_class(EsmClass::from(0x00u8))
        .data_coding(coding);
    let builder = match ussd {
        None => builder,
        Some(meta) => {
            let op = if meta.end {
                USSD_PSSR_RESPONSE
            } else {
                USSD_USSR_REQUEST
            };
            let service_type = COctetString::from_str("USSD").map_err(|_| PduError::Encoding)?;
            let builder = builder
                .service_type(ServiceType::new(service_type))
                .push_tlv(MessageDeliveryRequestTlvValue::UssdServiceOp(
                    UssdServiceOp::from(op),
                ));
            match meta.session_info {
                Some((session, sequence)) => {
                    builder.push_tlv(MessageDeliveryRequestTlvValue::ItsSessionInfo(
                        ItsSessionInfo::new(session, (sequence & !1) | u8::from(meta.end)),
                    ))
                }
                None => builder,
            }
        }
    };
    let builder = if bytes.len() <= SHORT_MESSAGE_MAX {
        builder.short_message(OctetString::from_vec(bytes).map_err(|_| PduError::Encoding)?)
    } else {
        builder.push_tlv(MessageDeliveryRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_vec(bytes)),
        ))
    };
    Ok(builder.build())
}

/// A response with no body: what SMPP wants for most error responses.
pub fn header_only(id: CommandId, status: CommandStatus, sequence_number: u32) -> Command {
    Command::from_parts(CommandParts::new(id, status, sequence_number, None))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindKind {
    pub fn can_submit(self) -> bool {
        self != Self::Receiver
    }
    pub fn can_receive(self) -> bool {
        self != Self::Transmitter
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transmitter => "tx",
            Self::Receiver => "rx",
            Self::Transceiver => "trx",
        }
    }
}

/// A bind request's parts, whichever of the three binds it is.
pub struct Bind<'a> {
    pub kind: BindKind,
    pub system_id: &'a str,
    pub password: &'a str,
    pub interface_version: InterfaceVersion,
}

pub fn bind(pdu: &Pdu) -> Option<Bind<'_>> {
    macro_rules! parts {
        ($kind:expr, $b:expr) => {
            Bind {
                kind: $kind,
                system_id: $b.system_id.as_str(),
                password: $b.password.as_str(),
                interface_version: $b.interface_version,
            }
        };
    }
    Some(match pdu {
        Pdu::BindTransmitter(b) => parts!(BindKind::Transmitter, b),
        Pdu::BindReceiver(b) => parts!(BindKind::Receiver, b),
        Pdu::BindTransceiver(b) => parts!(BindKind::Transceiver, b),
        _ => return None,
    })
}

/// The bind response: header only on error (SMPP 3.4 §4.1), else our system_id and,
/// for 3.4 and later peers, the sc_interface_version TLV.
pub fn bind_resp(
    kind: BindKind,
    status: CommandStatus,
    sequence_number: u32,
    peer_version: InterfaceVersion,
) -> Command {
    let id = match kind {
        BindKind::Transmitter => CommandId::BindTransmitterResp,
        BindKind::Receiver => CommandId::BindReceiverResp,
        BindKind::Transceiver => CommandId::BindTransceiverResp,
    };
    if status != CommandStatus::EsmeRok {
        return header_only(id, status, sequence_number);
    }
    let system_id = COctetString::from_str("otpgw").expect("a valid system_id");
    let version = match peer_version {
        InterfaceVersion::Smpp3_3OrEarlier(_) => None,
        InterfaceVersion::Smpp5_0 => Some(InterfaceVersion::Smpp5_0),
        _ => Some(InterfaceVersion::Smpp3_4),
    };
    let pdu: Pdu = match kind {
        BindKind::Transmitter => BindTransmitterResp::builder()
            .system_id(system_id)
            .sc_interface_version(version)
            .build()
            .into(),
        BindKind::Receiver => BindReceiverResp::builder()
            .system_id(system_id)
            .sc_interface_version(version)
            .build()
            .into(),
        BindKind::Transceiver => BindTransceiverResp::builder()
            .system_id(system_id)
            .sc_interface_version(version)
            .build()
            .into(),
    };
    Command::new(status, sequence_number, pdu)
}

/// The success response to a subscriber message, carrying our message_id.
pub fn message_resp(request: CommandId, sequence_number: u32, message_id: &str) -> Command {
    let id = COctetString::from_str(message_id).expect("message ids are short hex");
    let pdu: Pdu = if request == CommandId::DeliverSm {
        DeliverSmResp::builder().message_id(id).build().into()
    } else {
        SubmitSmResp::builder().message_id(id).build().into()
    };
    Command::new(CommandStatus::EsmeRok, sequence_number, pdu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_choose_their_encoding() {
        let latin = deliver_sm("BankOTP", "989121234567", "Your code: 1234567", None).unwrap();
        assert_eq!(u8::from(latin.data_coding), 0);
        assert_eq!(latin.short_message().as_ref(), b"Your code: 1234567");
        let persian = deliver_sm("BankOTP", "989121234567", "رمز پویا: 1234567", None).unwrap();
        assert_eq!(u8::from(persian.data_coding), 8);
        let long = "رمز".repeat(40);
        let long = deliver_sm("30003303", "989121234567", &long, None).unwrap();
        assert!(long.short_message().as_ref().is_empty());
        assert_eq!(long.tlvs().len(), 1);
        assert!(deliver_sm("BankOTP", "1234567890123456789012", "x", None).is_err());
    }
}
