//! PDUs ↔ plain values: what a subscriber message says (addresses, decoded text, a
//! delivery receipt's id and state), and the PDUs we send: `deliver_sm` replies from
//! the listener, `submit_sm` from client mode, binds and their responses. The
//! listener and client mode share every conversion here. Nothing here knows about
//! cards or codes.

use std::str::FromStr;

use otpgw_parsers::receipt::{parse_receipt_text, ReceiptStat};
use otpgw_parsers::text::{decode_short_message, gsm7_fits};
use rusmpp::command::CommandParts;
use rusmpp::extra::concatenation::SubmitSmMultipartExt;
use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;
use rusmpp::extra::encoding::ucs2::Ucs2;
use rusmpp::pdus::{
    BindReceiver, BindReceiverResp, BindTransceiver, BindTransceiverResp, BindTransmitter,
    BindTransmitterResp, DeliverSm, DeliverSmResp, SubmitSm, SubmitSmResp,
};
use rusmpp::tlvs::{MessageDeliveryRequestTlvValue, MessageSubmissionRequestTlvValue, TlvValue};
use rusmpp::types::{AnyOctetString, COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, ItsSessionInfo, MessagePayload, Npi,
    RegisteredDelivery, ServiceType, Ton, UssdServiceOp,
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
    /// What the receipt says, when it says which message it is about.
    pub receipt_info: Option<Receipt>,
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

/// A delivery receipt: which of our messages, and what became of it. The id comes
/// from the `receipted_message_id` TLV when present (SMPP 3.4 §5.2.26 makes it
/// authoritative), else from the `id:` of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    /// `None` when neither `message_state` nor `stat:` says anything we know.
    pub stat: Option<ReceiptStat>,
}

/// What makes a deliver_sm a USSD screen (the replies path carries it).
pub use crate::replies::UssdMeta;

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
    // submit_sm and deliver_sm share these fields, in two types.
    macro_rules! fields {
        ($sm:expr) => {
            (
                $sm.service_type.value().as_str(),
                $sm.source_addr.as_str(),
                $sm.destination_addr.as_str(),
                u8::from($sm.esm_class),
                u8::from($sm.data_coding),
                $sm.short_message().as_ref(),
                $sm.tlvs(),
            )
        };
    }
    let (service_type, source, destination, esm, dc, short, tlvs) = match pdu {
        Pdu::SubmitSm(sm) => fields!(sm),
        Pdu::DeliverSm(sm) => fields!(sm),
        _ => return None,
    };
    let (mut payload, mut ussd_op, mut session_info) = (None, None, None);
    let (mut receipted_id, mut message_state) = (None, None);
    for tlv in tlvs {
        match tlv.value() {
            Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref()),
            Some(TlvValue::ReceiptedMessageId(id)) => receipted_id = Some(id.as_str()),
            Some(TlvValue::MessageState(state)) => message_state = Some(u8::from(*state)),
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
    let receipt = esm & 0x3C == 0x04;
    let receipt_info = receipt.then(|| {
        let from_text = parse_receipt_text(&text);
        let message_id = receipted_id
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .or_else(|| from_text.as_ref().map(|t| t.id.clone()))?;
        let stat = message_state
            .and_then(ReceiptStat::from_message_state)
            .or_else(|| from_text.and_then(|t| t.stat));
        Some(Receipt { message_id, stat })
    });
    Some(Message {
        source: source.to_owned(),
        destination: destination.to_owned(),
        text,
        receipt,
        receipt_info: receipt_info.flatten(),
        service_type: service_type.to_owned(),
        ussd_op,
        session_info,
    })
}

/// The text's octets and coding: GSM-7 (unpacked) when every character allows it,
/// UCS-2 otherwise.
fn encode_text(text: &str) -> Result<(Vec<u8>, DataCoding), PduError> {
    if gsm7_fits(text) {
        let bytes = Gsm7BitUnpacked::new()
            .encode_to_vec(text)
            .map_err(|_| PduError::Encoding)?;
        Ok((bytes, DataCoding::from(0x00u8)))
    } else {
        let bytes = Ucs2::new()
            .encode_to_vec(text)
            .map_err(|_| PduError::Encoding)?;
        Ok((bytes, DataCoding::Ucs2))
    }
}

/// Where a message comes from: the sender id and its type of number. A numeric
/// sender (a short code) is `Unknown`/ISDN, a name is alphanumeric, unless the
/// operator's connection says otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceAddress<'a> {
    pub addr: &'a str,
    pub ton: Option<u8>,
    pub npi: Option<u8>,
}

impl SourceAddress<'_> {
    fn ton_npi(&self) -> (Ton, Npi) {
        let (ton, npi) = if self.addr.bytes().all(|b| b.is_ascii_digit()) {
            (Ton::Unknown, Npi::Isdn)
        } else {
            (Ton::Alphanumeric, Npi::Unknown)
        };
        (
            self.ton.map_or(ton, Ton::from),
            self.npi.map_or(npi, Npi::from),
        )
    }
}

fn address(a: &str) -> Result<COctetString<1, 21>, PduError> {
    COctetString::from_str(a).map_err(|_| PduError::Address(a.to_owned()))
}

/// The USSD parts of a reply: operation USSR request (continue) or PSSR response
/// (end), and the peer's `its_session_info` with the end-of-session bit (the
/// lowest) set on the last screen.
fn ussd_tlvs(meta: UssdMeta) -> Vec<MessageDeliveryRequestTlvValue> {
    let op = if meta.end {
        USSD_PSSR_RESPONSE
    } else {
        USSD_USSR_REQUEST
    };
    let mut tlvs = vec![MessageDeliveryRequestTlvValue::UssdServiceOp(
        UssdServiceOp::from(op),
    )];
    if let Some((session, sequence)) = meta.session_info {
        tlvs.push(MessageDeliveryRequestTlvValue::ItsSessionInfo(
            ItsSessionInfo::new(session, (sequence & !1) | u8::from(meta.end)),
        ));
    }
    tlvs
}

fn ussd_service_type() -> Result<ServiceType, PduError> {
    let service_type = COctetString::from_str("USSD").map_err(|_| PduError::Encoding)?;
    Ok(ServiceType::new(service_type))
}

/// A reply to the customer from the listener, as a deliver_sm: GSM-7 or UCS-2 by
/// content, `message_payload` past 140 octets (the peer's SMSC segments it). For
/// USSD (`ussd` set): service_type "USSD" and the USSD TLVs.
pub fn deliver_sm(
    sender_id: &str,
    to: &str,
    text: &str,
    ussd: Option<UssdMeta>,
) -> Result<DeliverSm, PduError> {
    let (bytes, coding) = encode_text(text)?;
    let (source_ton, source_npi) = SourceAddress {
        addr: sender_id,
        ..Default::default()
    }
    .ton_npi();
    let mut builder = DeliverSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(address(sender_id)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(address(to)?)
        // Not EsmClass::default(), which is not 0.
        .esm_class(EsmClass::from(0x00u8))
        .data_coding(coding);
    if let Some(meta) = ussd {
        builder = builder.service_type(ussd_service_type()?);
        for tlv in ussd_tlvs(meta) {
            builder = builder.push_tlv(tlv);
        }
    }
    let builder = if bytes.len() <= SHORT_MESSAGE_MAX {
        builder.short_message(OctetString::from_vec(bytes).map_err(|_| PduError::Encoding)?)
    } else {
        builder.push_tlv(MessageDeliveryRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_vec(bytes)),
        ))
    };
    Ok(builder.build())
}

pub use crate::config::Split;

/// The submit_sm options a client connection sets.
#[derive(Debug, Clone, Copy)]
pub struct SubmitOptions<'a> {
    pub source: SourceAddress<'a>,
    pub registered_delivery: bool,
    pub split: Split,
    /// The concatenation reference shared by the segments of one message.
    pub reference: u8,
}

/// A message to the customer from client mode: one submit_sm, or one per segment
/// when split by UDH. Encoded as GSM-7 or UCS-2 by content, like the listener's.
pub fn submit_sm(
    to: &str,
    text: &str,
    ussd: Option<UssdMeta>,
    options: &SubmitOptions<'_>,
) -> Result<Vec<SubmitSm>, PduError> {
    let (source_ton, source_npi) = options.source.ton_npi();
    let mut builder = SubmitSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(address(options.source.addr)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(address(to)?)
        .esm_class(EsmClass::from(0x00u8))
        .registered_delivery(RegisteredDelivery::from(u8::from(
            options.registered_delivery,
        )));
    if let Some(meta) = ussd {
        builder = builder.service_type(ussd_service_type()?);
        for tlv in ussd_tlvs(meta) {
            builder = builder.push_tlv(submission_tlv(tlv));
        }
    }
    let (bytes, coding) = encode_text(text)?;
    if bytes.len() <= SHORT_MESSAGE_MAX {
        return Ok(vec![builder
            .data_coding(coding)
            .short_message(OctetString::from_vec(bytes).map_err(|_| PduError::Encoding)?)
            .build()]);
    }
    match options.split {
        Split::Payload => Ok(vec![builder
            .data_coding(coding)
            .push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
                MessagePayload::new(AnyOctetString::from_vec(bytes)),
            ))
            .build()]),
        Split::Udh => {
            let multipart = builder
                .build()
                .multipart(text)
                .reference_u8(options.reference);
            let parts = if gsm7_fits(text) {
                multipart.build().map_err(|_| PduError::Encoding)?
            } else {
                multipart.ucs2().build().map_err(|_| PduError::Encoding)?
            };
            Ok(parts)
        }
    }
}

fn submission_tlv(tlv: MessageDeliveryRequestTlvValue) -> MessageSubmissionRequestTlvValue {
    match tlv {
        MessageDeliveryRequestTlvValue::UssdServiceOp(op) => {
            MessageSubmissionRequestTlvValue::UssdServiceOp(op)
        }
        MessageDeliveryRequestTlvValue::ItsSessionInfo(info) => {
            MessageSubmissionRequestTlvValue::ItsSessionInfo(info)
        }
        MessageDeliveryRequestTlvValue::MessagePayload(p) => {
            MessageSubmissionRequestTlvValue::MessagePayload(p)
        }
        // ussd_tlvs makes only the three above.
        _ => MessageSubmissionRequestTlvValue::MessagePayload(MessagePayload::new(
            AnyOctetString::from_vec(Vec::new()),
        )),
    }
}

/// The bind client mode sends: our system_id, password and system_type, and the
/// interface version the operator speaks (0x34 or 0x50).
pub struct BindRequest<'a> {
    pub kind: BindKind,
    pub system_id: &'a str,
    pub password: &'a str,
    pub system_type: &'a str,
    pub version: InterfaceVersion,
}

pub fn bind_request(req: &BindRequest<'_>) -> Result<Pdu, PduError> {
    fn field<const MIN: usize, const MAX: usize>(
        v: &str,
    ) -> Result<COctetString<MIN, MAX>, PduError> {
        COctetString::from_str(v).map_err(|_| PduError::Address(v.to_owned()))
    }
    macro_rules! build {
        ($ty:ident) => {
            $ty::builder()
                .system_id(field(req.system_id)?)
                .password(field(req.password)?)
                .system_type(field(req.system_type)?)
                .interface_version(req.version)
                .build()
                .into()
        };
    }
    Ok(match req.kind {
        BindKind::Transmitter => build!(BindTransmitter),
        BindKind::Receiver => build!(BindReceiver),
        BindKind::Transceiver => build!(BindTransceiver),
    })
}

/// The `message_id` of a submit_sm_resp, if the PDU is one.
pub fn submit_resp_id(pdu: &Pdu) -> Option<String> {
    match pdu {
        Pdu::SubmitSmResp(resp) => Some(resp.message_id().as_str().to_owned()),
        _ => None,
    }
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

    #[test]
    fn submit_sm_splits_as_configured() {
        let options = |split| SubmitOptions {
            source: SourceAddress {
                addr: "30003303",
                ton: None,
                npi: None,
            },
            registered_delivery: true,
            split,
            reference: 7,
        };
        let short = submit_sm(
            "989121234567",
            "Your code: 1234567",
            None,
            &options(Split::Udh),
        )
        .unwrap();
        assert_eq!(short.len(), 1);
        assert_eq!(u8::from(short[0].registered_delivery), 1);
        let long = "رمز پویا ".repeat(20);
        let parts = submit_sm("989121234567", &long, None, &options(Split::Udh)).unwrap();
        assert!(parts.len() > 1);
        for part in &parts {
            assert_eq!(u8::from(part.esm_class) & 0x40, 0x40);
            assert_eq!(u8::from(part.data_coding), 8);
            assert!(part.short_message().as_ref().len() <= 140);
        }
        let payload = submit_sm("989121234567", &long, None, &options(Split::Payload)).unwrap();
        assert_eq!(payload.len(), 1);
        assert!(payload[0].short_message().as_ref().is_empty());
        let named = SourceAddress {
            addr: "BankOTP",
            ton: None,
            npi: None,
        };
        assert_eq!(named.ton_npi(), (Ton::Alphanumeric, Npi::Unknown));
        let forced = SourceAddress {
            addr: "BankOTP",
            ton: Some(1),
            npi: Some(1),
        };
        assert_eq!(forced.ton_npi(), (Ton::International, Npi::Isdn));
    }

    #[test]
    fn receipts_prefer_the_tlv_id() {
        use rusmpp::values::MessageState;
        let text = "id:7994 sub:001 dlvrd:001 submit date:2611221200 done date:2611221200 stat:UNDELIV err:000 text:";
        let with_tlv = DeliverSm::builder()
            .source_addr(COctetString::from_str("989121234567").unwrap())
            .destination_addr(COctetString::from_str("30003303").unwrap())
            .esm_class(EsmClass::from(0x04u8))
            .short_message(OctetString::from_vec(text.as_bytes().to_vec()).unwrap())
            .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
                COctetString::from_str("1f3a").unwrap(),
            ))
            .push_tlv(MessageDeliveryRequestTlvValue::MessageState(
                MessageState::Delivered,
            ))
            .build();
        let m = message(&Pdu::DeliverSm(with_tlv)).unwrap();
        assert!(m.receipt);
        assert_eq!(
            m.receipt_info,
            Some(Receipt {
                message_id: "1f3a".into(),
                stat: Some(ReceiptStat::Delivered)
            })
        );
        let text_only = DeliverSm::builder()
            .source_addr(COctetString::from_str("989121234567").unwrap())
            .destination_addr(COctetString::from_str("30003303").unwrap())
            .esm_class(EsmClass::from(0x04u8))
            .short_message(OctetString::from_vec(text.as_bytes().to_vec()).unwrap())
            .build();
        let m = message(&Pdu::DeliverSm(text_only)).unwrap();
        assert_eq!(
            m.receipt_info,
            Some(Receipt {
                message_id: "7994".into(),
                stat: Some(ReceiptStat::Undelivered)
            })
        );
    }
}
