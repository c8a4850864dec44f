"""The SMPP side of smpp_peer.py (see its docstring): constants, the message
codings (GSM 03.38 unpacked with its escape table, ASCII, latin1, UCS-2), PDU
framing and deliver_sm parsing tolerant of anything a server sends, and the
session that reads PDUs, answers the server's own requests and waits for
responses, every wait bounded.

smpplib (2.2.4) only builds the PDUs we send (smpplib.smpp.make_pdu + generate())
and names command ids; framing, parsing and dispatch are done here (smpp_peer.py
says why).
"""

import binascii
import collections
import logging
import socket
import struct
import time

import smpplib
import smpplib.command_codes
import smpplib.smpp

log = logging.getLogger("smpp_peer")


class PeerError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message



# ---------------------------------------------------------------- SMPP constants
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
ALERT_NOTIFICATION = 0x00000102
ESME_RINVCMDID = 0x00000003

BIND_KINDS = {  # --bind value -> (smpplib command name, response command_id)
    "trx": ("bind_transceiver", 0x80000009),
    "tx": ("bind_transmitter", 0x80000002),
    "rx": ("bind_receiver", 0x80000001),
}
MAX_PDU_LEN = 1 << 20  # refuse absurd command_length values instead of waiting forever
TAG_MESSAGE_PAYLOAD = 0x0424

# ------------------------------------------------------------------ GSM 03.38
# Basic character set, index = septet value (0x1B is the escape to the extension table).
GSM_BASIC = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./"
    "0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmno"
    "pqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
assert len(GSM_BASIC) == 128
GSM_EXT = {0x0A: "\x0c", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
           0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "\u20ac"}
GSM_ENC = {ch: bytes([i]) for i, ch in enumerate(GSM_BASIC) if i != 0x1B}
GSM_ENC.update({ch: bytes([0x1B, code]) for code, ch in GSM_EXT.items()})


def gsm_encode(text):
    """Encode to GSM 03.38 unpacked septets (one octet each, extension chars as ESC+code)."""
    out = bytearray()
    for i, ch in enumerate(text):
        enc = GSM_ENC.get(ch)
        if enc is None:
            raise PeerError("usage", "character %r (U+%04X) at index %d is not in the GSM 03.38 "
                                     "default alphabet" % (ch, ord(ch), i))
        out += enc
    return bytes(out)


def gsm_decode(data):
    """Decode GSM 03.38 unpacked septets, including the escape (extension) table."""
    out = []
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x1B:
            if i + 1 < len(data):
                nxt = data[i + 1]
                # Unknown escape: the spec says show the basic-table character.
                out.append(GSM_EXT.get(nxt, GSM_BASIC[nxt] if nxt < 0x80 and nxt != 0x1B else "\ufffd"))
                i += 2
                continue
            out.append(" ")  # dangling escape
        elif b < 0x80:
            out.append(GSM_BASIC[b])
        else:
            out.append("\ufffd")
        i += 1
    return "".join(out)


CODINGS = {  # --coding -> (data_coding, encoder)
    "gsm": (0x00, gsm_encode),
    "ascii": (0x01, lambda t: _codec(t, "ascii")),
    "latin1": (0x03, lambda t: _codec(t, "latin-1")),
    "ucs2": (0x08, lambda t: _codec(t, "utf-16-be")),
}


def _codec(text, codec):
    try:
        return text.encode(codec)
    except UnicodeError as e:
        raise PeerError("usage", "text cannot be encoded as %s: %s" % (codec, e))


def decode_text(data_coding, data):
    """Decode a message body by data_coding; None when the coding is not textual/known."""
    if data_coding == 0x00:
        return gsm_decode(data)
    if data_coding == 0x01:
        return data.decode("ascii", errors="replace")
    if data_coding == 0x03:
        return data.decode("latin-1")
    if data_coding == 0x08:
        return data.decode("utf-16-be", errors="replace")
    return None


# ------------------------------------------------------------------ PDU parsing
class Pdu(object):
    __slots__ = ("command_length", "command_id", "command_status", "sequence_number",
                 "body", "t_recv", "deliver", "deliver_error")

    def __init__(self, raw, t_recv):
        (self.command_length, self.command_id, self.command_status,
         self.sequence_number) = struct.unpack(">LLLL", raw[:16])
        self.body = bytes(raw[16:])
        self.t_recv = t_recv
        self.deliver = None
        self.deliver_error = None

    @property
    def name(self):
        for k, v in smpplib.command_codes.commands.items():
            if v == self.command_id:
                return k
        return "0x%08x" % self.command_id

    def header_event(self):
        return {"event": "pdu", "command_id": self.command_id,
                "command_status": self.command_status,
                "sequence_number": self.sequence_number,
                "command_length": self.command_length,
                "body_hex": self.body.hex()}


def c_string(body, pos=0):
    """Read a NUL-terminated string; tolerate a missing terminator at the end of the body."""
    end = body.find(b"\x00", pos)
    if end < 0:
        return body[pos:].decode("latin-1"), len(body)
    return body[pos:end].decode("latin-1"), end + 1


def parse_deliver_sm(body):
    """Parse a deliver_sm body (SMPP 3.4/5.0 layout), tolerant of any TLV."""
    pos = 0
    r = {}

    def cstr():
        nonlocal pos
        end = body.find(b"\x00", pos)
        if end < 0:
            raise ValueError("unterminated C-octet string at body offset %d" % pos)
        s = body[pos:end].decode("latin-1")
        pos = end + 1
        return s

    def octet():
        nonlocal pos
        if pos >= len(body):
            raise ValueError("body truncated at offset %d" % pos)
        pos += 1
        return body[pos - 1]

    r["service_type"] = cstr()
    r["source_addr_ton"] = octet()
    r["source_addr_npi"] = octet()
    r["source_addr"] = cstr()
    r["dest_addr_ton"] = octet()
    r["dest_addr_npi"] = octet()
    r["destination_addr"] = cstr()
    r["esm_class"] = octet()
    r["protocol_id"] = octet()
    r["priority_flag"] = octet()
    cstr()  # schedule_delivery_time
    cstr()  # validity_period
    r["registered_delivery"] = octet()
    octet()  # replace_if_present_flag
    r["data_coding"] = octet()
    octet()  # sm_default_msg_id
    sm_length = octet()
    if pos + sm_length > len(body):
        raise ValueError("sm_length %d exceeds the body" % sm_length)
    r["short_message"] = body[pos:pos + sm_length]
    pos += sm_length
    tlvs = {}
    while pos < len(body):
        if pos + 4 > len(body):
            raise ValueError("truncated TLV header at offset %d" % pos)
        tag, length = struct.unpack(">HH", body[pos:pos + 4])
        pos += 4
        if pos + length > len(body):
            raise ValueError("TLV 0x%04x length %d exceeds the body" % (tag, length))
        tlvs[tag] = body[pos:pos + length]
        pos += length
    r["tlvs"] = tlvs
    payload = tlvs.get(TAG_MESSAGE_PAYLOAD, r["short_message"])
    if TAG_MESSAGE_PAYLOAD in tlvs and r["short_message"]:
        log.warning("deliver_sm has both short_message and message_payload; using message_payload")
    r["payload"] = payload
    text_bytes = payload
    r["udh"] = None
    if r["esm_class"] & 0x40 and payload:  # UDHI: strip the user data header
        udhl = payload[0]
        r["udh"] = payload[:1 + udhl]
        text_bytes = payload[1 + udhl:]
    r["text"] = decode_text(r["data_coding"], text_bytes)
    return r


# ------------------------------------------------------------------ session
class Session(object):
    def __init__(self, client, sock, deliver_resp_status):
        self.client = client
        self.sock = sock
        self.deliver_resp_status = deliver_resp_status
        self.rbuf = bytearray()
        self.delivers = collections.deque()  # deliver_sm PDUs received but not yet reported
        self.server_unbound = False  # server sent unbind (already answered)

    # -- output side
    def send_bytes(self, data, timeout):
        log.debug(">> %s", binascii.hexlify(data).decode())
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise PeerError("timeout", "send did not complete within %gs" % timeout)
        except OSError as e:
            raise PeerError("connection_closed", "send failed: %s" % e)

    def send_pdu(self, pdu, timeout):
        # pdu.generate() instead of client.send_pdu(): no client-side state checks.
        self.send_bytes(pdu.generate(), timeout)

    def make_pdu(self, name, **kw):
        return smpplib.smpp.make_pdu(name, client=self.client, **kw)

    def respond(self, name, seq, status=0, timeout=2.0):
        p = self.make_pdu(name)
        p.sequence = seq  # the sequence= kwarg is ignored by smpplib for resp PDUs
        p.status = status
        try:
            self.send_pdu(p, timeout)
        except PeerError as e:  # the next read reports a dead connection
            log.warning("could not send %s: %s", name, e.message)

    # -- input side
    def read_pdu(self, deadline):
        """Next complete PDU, or None at the deadline. Keeps partial data across timeouts."""
        while True:
            if len(self.rbuf) >= 4:
                length = struct.unpack(">L", self.rbuf[:4])[0]
                if length < 16 or length > MAX_PDU_LEN:
                    raise PeerError("protocol", "server sent a PDU with command_length %d "
                                                "(header %s)" % (length, self.rbuf[:16].hex()))
                if len(self.rbuf) >= length:
                    raw = bytes(self.rbuf[:length])
                    del self.rbuf[:length]
                    log.debug("<< %s", raw.hex())
                    return Pdu(raw, time.monotonic())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as e:
                raise PeerError("connection_closed", "connection error: %s" % e)
            if not chunk:
                if self.rbuf:
                    raise PeerError("connection_closed", "server closed the connection in the "
                                    "middle of a PDU (%d bytes pending)" % len(self.rbuf))
                raise PeerError("connection_closed", "server closed the connection")
            self.rbuf += chunk

    def pump(self, deadline):
        """Read one PDU and answer server-initiated requests automatically."""
        p = self.read_pdu(deadline)
        if p is None:
            return None
        cid = p.command_id
        if cid == ENQUIRE_LINK:
            log.info("answering enquire_link seq=%d from server", p.sequence_number)
            self.respond("enquire_link_resp", p.sequence_number)
        elif cid == DELIVER_SM:
            try:
                p.deliver = parse_deliver_sm(p.body)
            except ValueError as e:
                p.deliver_error = str(e)
            self.respond("deliver_sm_resp", p.sequence_number, self.deliver_resp_status)
        elif cid == UNBIND:
            self.server_unbound = True
            self.respond("unbind_resp", p.sequence_number)
        elif cid == ALERT_NOTIFICATION:
            pass  # no response defined
        elif not cid & 0x80000000:
            log.warning("answering unsupported request %s with generic_nack", p.name)
            self.respond("generic_nack", p.sequence_number, ESME_RINVCMDID)
        return p

    def wait_response(self, seq, resp_id, what, timeout):
        """Wait for resp_id (or generic_nack) carrying sequence number seq."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.pump(deadline)
            if p is None:
                raise PeerError("timeout", "no %s (seq %d) within %gs" % (what, seq, timeout))
            if p.command_id in (resp_id, GENERIC_NACK) and p.sequence_number == seq:
                return p
            if p.command_id == DELIVER_SM:
                self.delivers.append(p)
            elif p.command_id == UNBIND:
                raise PeerError("server_unbind", "server sent unbind while waiting for %s" % what)
            elif p.command_id != ENQUIRE_LINK:
                log.warning("ignoring %s seq=%d status=0x%x while waiting for %s seq=%d",
                            p.name, p.sequence_number, p.command_status, what, seq)

    def wait_deliver(self, timeout, quiet=False):
        """Next deliver_sm (buffered first). None on timeout if quiet, else a timeout error."""
        if self.delivers:
            return self.delivers.popleft()
        deadline = time.monotonic() + timeout
        while True:
            p = self.pump(deadline)
            if p is None:
                if quiet:
                    return None
                raise PeerError("timeout", "no deliver_sm within %gs" % timeout)
            if p.command_id == DELIVER_SM:
                return p
            if p.command_id == UNBIND:
                raise PeerError("server_unbind", "server sent unbind while waiting for deliver_sm")
            if p.command_id != ENQUIRE_LINK:
                log.warning("ignoring %s seq=%d status=0x%x while waiting for deliver_sm",
                            p.name, p.sequence_number, p.command_status)


def deliver_event(p, t_submit=None):
    if p.deliver_error is not None:
        raise PeerError("protocol", "malformed deliver_sm from server: %s (body %s)"
                        % (p.deliver_error, p.body.hex()))
    d = p.deliver
    ev = {"event": "deliver_sm", "source_addr": d["source_addr"],
          "destination_addr": d["destination_addr"], "data_coding": d["data_coding"],
          "text": d["text"], "esm_class": d["esm_class"],
          "payload_hex": d["payload"].hex(), "sequence_number": p.sequence_number}
    if t_submit is not None:
        ev["rtt_ms"] = round((p.t_recv - t_submit) * 1000.0, 3)
    return ev
