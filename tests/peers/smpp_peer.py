#!/usr/bin/env python3
"""SMPP test peer for otpgw integration tests.

Connects to an SMPP server, binds (unless --no-bind) and runs a chain of
commands in one session.  Every result is one JSON object per line on stdout;
diagnostics go to stderr.  On failure the last stdout line is
{"event":"error","error":KIND,"message":...,"command":...} and the exit code
is non-zero (see EXIT_CODES).  Every wait is bounded by a timeout.

Usage:
  smpp_peer.py --host 127.0.0.1 --port PORT --system-id ID --password PW
               [--bind trx|tx|rx] [--interface-version 0x34|0x50]
               [--timeout 10] [--system-type S] [--deliver-resp-status N]
               [--no-bind] [--verbose]
               COMMAND [ARGS] [COMMAND [ARGS] ...]

Commands (a new command starts at each command word):
  bind-only
  send --from MSISDN --to SHORTCODE --text TEXT --coding gsm|ascii|latin1|ucs2
       [--expect-reply | --no-reply] [--quiet-wait 1.0] [--repeat N]
       [--payload] [--src-ton 1] [--src-npi 1] [--dst-ton 0] [--dst-npi 1]
       [--timeout S]
  raw [--no-wait] [--timeout S] HEX
  enquire-link [--timeout S]
  unbind [--timeout S]
  wait-unbind [--timeout S]
  wait-deliver [--timeout S]
  sleep SECONDS

Output lines (extra keys may be added; existing ones are stable):
  {"event":"bind","status":N,"command_id":N,"system_id":S}        (always first, unless --no-bind)
  {"event":"submit_sm_resp","status":N,"message_id":S,"command_id":N,"sequence_number":N}
  {"event":"deliver_sm","source_addr":S,"destination_addr":S,"data_coding":N,"text":S|null,
   "esm_class":N,"payload_hex":S,"sequence_number":N,"rtt_ms":F}  (rtt_ms only after send)
  {"event":"no_reply"}
  {"event":"pdu","command_id":N,"command_status":N,"sequence_number":N,"command_length":N,"body_hex":S}
  {"event":"raw_sent","length":N}            {"event":"connection_closed"}   (raw only)
  {"event":"enquire_link_resp","status":N,"command_id":N}
  {"event":"unbind_resp","status":N,"command_id":N}
  {"event":"unbind_from_server"}             {"event":"slept","seconds":F}
  {"event":"error","error":KIND,"message":S,"command":S|null}
Exit codes: 0 ok, 1 internal, 2 usage, 3 connect, 4 bind_rejected (not with bind-only),
  5 timeout, 6 connection_closed, 7 protocol, 8 server_unbind.

smpplib (2.2.4) is used to build PDUs (smpplib.smpp.make_pdu + generate()) and
for the connection object (client._socket).  Framing, parsing and dispatch are
done here because smpplib's Client.read_pdu/_bind/read_once raise on error
statuses, unknown command ids or unknown TLVs, lose data on a timeout in the
middle of a PDU, and send_pdu refuses PDUs its state machine does not expect.
"""

import argparse
import binascii
import collections
import json
import logging
import socket
import struct
import sys
import time

EXIT_CODES = {
    "internal": 1,
    "usage": 2,
    "connect": 3,
    "bind_rejected": 4,
    "timeout": 5,
    "connection_closed": 6,
    "protocol": 7,
    "server_unbind": 8,
}


def emit(obj):
    """Write one JSON line to stdout (ASCII only, so the locale never matters)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class PeerError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


try:
    import smpplib
    import smpplib.client
    import smpplib.command_codes
    import smpplib.consts
    import smpplib.smpp
except Exception as _e:  # pragma: no cover - environment problem
    emit({"event": "error", "error": "internal", "command": None,
          "message": "cannot import smpplib: %s (pip install -r requirements.txt)" % _e})
    sys.exit(EXIT_CODES["internal"])

log = logging.getLogger("smpp_peer")

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


# ------------------------------------------------------------------ commands
def cmd_send(s, a, timeout):
    for _ in range(a.repeat):
        kw = dict(source_addr_ton=a.src_ton, source_addr_npi=a.src_npi, source_addr=a.from_,
                  dest_addr_ton=a.dst_ton, dest_addr_npi=a.dst_npi, destination_addr=a.to,
                  esm_class=0, registered_delivery=0, data_coding=a.data_coding)
        if a.payload or len(a.body) > 254:
            kw["message_payload"] = a.body  # short_message stays empty (sm_length 0)
        else:
            kw["short_message"] = a.body
        pdu = s.make_pdu("submit_sm", **kw)
        seq = pdu.sequence
        t0 = time.monotonic()
        s.send_pdu(pdu, timeout)
        r = s.wait_response(seq, SUBMIT_SM_RESP, "submit_sm_resp", timeout)
        message_id = c_string(r.body)[0] if r.command_id == SUBMIT_SM_RESP and r.body else ""
        emit({"event": "submit_sm_resp", "status": r.command_status, "message_id": message_id,
              "command_id": r.command_id, "sequence_number": r.sequence_number})
        if a.expect_reply:
            if r.command_status != 0:
                continue  # rejected: no reply will come
            emit(deliver_event(s.wait_deliver(timeout), t0))
        else:
            p = s.wait_deliver(a.quiet_wait, quiet=True)
            emit({"event": "no_reply"} if p is None else deliver_event(p, t0))


class _Stop(Exception):
    """Connection is gone after a reported connection_closed; later commands fail."""


def cmd_raw(s, a, timeout):
    s.send_bytes(a.data, timeout)
    if a.no_wait:
        emit({"event": "raw_sent", "length": len(a.data)})
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            p = s.pump(deadline)
        except PeerError as e:
            if e.kind != "connection_closed":
                raise
            emit({"event": "connection_closed"})
            raise _Stop()
        if p is None:
            raise PeerError("timeout", "no PDU within %gs after raw bytes" % timeout)
        if p.command_id == ENQUIRE_LINK:  # server keep-alive, already answered
            continue
        emit(p.header_event())
        return


def cmd_simple(s, timeout, name, resp_id, event):
    pdu = s.make_pdu(name)
    s.send_pdu(pdu, timeout)
    r = s.wait_response(pdu.sequence, resp_id, name + "_resp", timeout)
    emit({"event": event, "status": r.command_status, "command_id": r.command_id})


def cmd_wait_unbind(s, a, timeout):
    deadline = time.monotonic() + timeout
    while not s.server_unbound:
        p = s.pump(deadline)
        if p is None:
            raise PeerError("timeout", "server did not send unbind within %gs" % timeout)
        if p.command_id == DELIVER_SM:
            s.delivers.append(p)
    emit({"event": "unbind_from_server"})


def cmd_sleep(s, a, timeout):
    deadline = time.monotonic() + a.seconds
    while True:
        p = s.pump(deadline)  # server requests are answered inside pump
        if p is None:
            break
        if p.command_id == DELIVER_SM:
            s.delivers.append(p)  # keep it for a later send/wait-deliver
    emit({"event": "slept", "seconds": a.seconds})


# ------------------------------------------------------------------ CLI
class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s: %s" % (self.prog, message))


def hex_bytes(v):
    h = v.strip()
    if h[:2].lower() == "0x":
        h = h[2:]
    for sep in (" ", ":", "_", "-", "\n", "\t"):
        h = h.replace(sep, "")
    try:
        data = bytes.fromhex(h)
    except ValueError:
        raise argparse.ArgumentTypeError("invalid hex string %r" % v)
    if not data:
        raise argparse.ArgumentTypeError("empty hex string")
    return data


def positive_float(v):
    f = float(v)
    if not f > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return f


def octet(v):
    n = int(v, 0)
    if not 0 <= n <= 255:
        raise argparse.ArgumentTypeError("must be 0..255")
    return n


def u32(v):
    n = int(v, 0)
    if not 0 <= n <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("must be 0..0xFFFFFFFF")
    return n


def smpp_addr(v):
    if len(v) > 20 or not v.isascii():
        raise argparse.ArgumentTypeError("address must be ASCII, at most 20 characters")
    return v


def global_parser():
    p = Parser(prog="smpp_peer.py", allow_abbrev=False, description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--system-id", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--system-type", default="")
    p.add_argument("--bind", choices=sorted(BIND_KINDS), default="trx")
    p.add_argument("--interface-version", type=octet, default=0x34)
    p.add_argument("--timeout", type=positive_float, default=10.0,
                   help="bound on every wait, in seconds (default 10)")
    p.add_argument("--deliver-resp-status", type=u32, default=0,
                   help="command_status used in deliver_sm_resp (default 0)")
    p.add_argument("--no-bind", action="store_true",
                   help="do not bind; commands run on the bare connection")
    p.add_argument("--verbose", action="store_true", help="PDU hex dumps on stderr")
    return p


def command_parsers():
    ps = {}

    def new(name):
        p = Parser(prog="smpp_peer.py ... " + name, allow_abbrev=False)
        ps[name] = p
        return p

    new("bind-only")
    p = new("send")
    p.add_argument("--from", dest="from_", type=smpp_addr, required=True)
    p.add_argument("--to", type=smpp_addr, required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--coding", choices=sorted(CODINGS), required=True)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--expect-reply", dest="expect_reply", action="store_true", default=True)
    g.add_argument("--no-reply", dest="expect_reply", action="store_false")
    p.add_argument("--quiet-wait", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--payload", action="store_true",
                   help="carry the body in the message_payload TLV (automatic above 254 octets)")
    p.add_argument("--src-ton", type=octet, default=1)
    p.add_argument("--src-npi", type=octet, default=1)
    p.add_argument("--dst-ton", type=octet, default=0)
    p.add_argument("--dst-npi", type=octet, default=1)
    p.add_argument("--timeout", type=positive_float)
    p = new("raw")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=positive_float)
    p.add_argument("data", metavar="HEX", type=hex_bytes)
    for name in ("enquire-link", "unbind", "wait-unbind", "wait-deliver"):
        new(name).add_argument("--timeout", type=positive_float)
    p = new("sleep")
    p.add_argument("seconds", type=float)
    return ps


def split_argv(argv, parsers):
    """Split argv into the global part and [(command, tokens)].

    A command word starts a new command, except where a token is the value of an
    option that takes one (so `--text unbind` is text, not a command)."""
    def value_opts(parser):
        return {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}

    def n_positional(parser):
        return sum(1 for a in parser._actions if not a.option_strings)

    gvals = value_opts(global_parser())
    i, glob = 0, []
    while i < len(argv) and argv[i] not in parsers:
        glob.append(argv[i])
        if argv[i] in gvals and i + 1 < len(argv):
            glob.append(argv[i + 1])
            i += 1
        i += 1
    cmds = []
    while i < len(argv):
        name = argv[i]
        parser = parsers[name]
        vals, npos = value_opts(parser), n_positional(parser)
        toks, seen_pos = [], 0
        i += 1
        while i < len(argv):
            t = argv[i]
            if t in vals:
                toks.extend(argv[i:i + 2])
                i += 2
                continue
            if t.startswith("--"):
                toks.append(t)
            elif seen_pos < npos:
                toks.append(t)
                seen_pos += 1
            elif t in parsers:
                break
            else:
                toks.append(t)  # stray token: the command's parser reports it
            i += 1
        cmds.append((name, toks))
    return glob, cmds


def parse_cli(argv):
    parsers = command_parsers()
    glob, cmd_tokens = split_argv(argv, parsers)
    g = global_parser().parse_args(glob)
    if not cmd_tokens:
        raise UsageError("no command given (one of: %s)" % ", ".join(sorted(parsers)))
    if len(g.system_id) > 15 or len(g.password) > 8 or len(g.system_type) > 12:
        raise UsageError("system_id/password/system_type exceed SMPP lengths (15/8/12); "
                         "use the raw command to send over-long values")
    for v in (g.system_id, g.password, g.system_type):
        if not v.isascii():
            raise UsageError("system_id, password and system_type must be ASCII")
    if g.no_bind and any(n == "bind-only" for n, _ in cmd_tokens):
        raise UsageError("bind-only cannot be combined with --no-bind")
    cmds = []
    for name, toks in cmd_tokens:
        a = parsers[name].parse_args(toks)
        if name == "send":
            if a.repeat < 1:
                raise UsageError("send: --repeat must be >= 1")
            if a.quiet_wait < 0:
                raise UsageError("send: --quiet-wait must be >= 0")
            a.data_coding, enc = CODINGS[a.coding]
            try:
                a.body = enc(a.text)
            except PeerError as e:
                raise UsageError("send: " + e.message)
        if name == "sleep" and not 0 <= a.seconds <= 3600:
            raise UsageError("sleep: seconds must be 0..3600")
        cmds.append((name, a))
    return g, cmds


def run(g, cmds):
    current = None
    client = smpplib.client.Client(g.host, g.port, timeout=g.timeout,
                                   logger_name="smpp_peer.smpplib",
                                   allow_unknown_opt_params=True)
    try:
        sock = socket.create_connection((g.host, g.port), timeout=g.timeout)
    except OSError as e:
        raise PeerError("connect", "cannot connect to %s:%d: %s" % (g.host, g.port, e))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client._socket = sock  # smpplib's Client keeps its socket here
    client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN
    s = Session(client, sock, g.deliver_resp_status)
    try:
        if not g.no_bind:
            current = "bind"
            name, resp_id = BIND_KINDS[g.bind]
            p = s.make_pdu(name, system_id=g.system_id, password=g.password,
                           system_type=g.system_type, addr_ton=0, addr_npi=0, address_range="")
            p.interface_version = g.interface_version  # smpplib's constructor forces 0x34
            s.send_pdu(p, g.timeout)
            r = s.wait_response(p.sequence, resp_id, name + "_resp", g.timeout)
            sysid = c_string(r.body)[0] if r.command_id == resp_id and r.body else ""
            emit({"event": "bind", "status": r.command_status, "command_id": r.command_id,
                  "system_id": sysid})
            if r.command_status != 0:
                if all(n == "bind-only" for n, _ in cmds):
                    return
                raise PeerError("bind_rejected", "%s rejected with status 0x%x"
                                % (name, r.command_status))
            client.state = {"trx": smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX,
                            "tx": smpplib.consts.SMPP_CLIENT_STATE_BOUND_TX,
                            "rx": smpplib.consts.SMPP_CLIENT_STATE_BOUND_RX}[g.bind]
        for idx, (name, a) in enumerate(cmds):
            current = name
            timeout = getattr(a, "timeout", None) or g.timeout
            if name == "bind-only":
                pass  # the bind line was printed above
            elif name == "send":
                cmd_send(s, a, timeout)
            elif name == "raw":
                try:
                    cmd_raw(s, a, timeout)
                except _Stop:
                    rest = [n for n, _ in cmds[idx + 1:]]
                    if rest:
                        raise PeerError("connection_closed", "connection closed after raw; "
                                        "cannot run: %s" % " ".join(rest))
                    return
            elif name == "enquire-link":
                cmd_simple(s, timeout, "enquire_link", ENQUIRE_LINK_RESP, "enquire_link_resp")
            elif name == "unbind":
                cmd_simple(s, timeout, "unbind", UNBIND_RESP, "unbind_resp")
            elif name == "wait-unbind":
                cmd_wait_unbind(s, a, timeout)
            elif name == "wait-deliver":
                emit(deliver_event(s.wait_deliver(timeout)))
            elif name == "sleep":
                cmd_sleep(s, a, timeout)
    except PeerError as e:
        e.command = current
        raise
    finally:
        try:
            sock.close()
        except OSError:
            pass
        client._socket = None
        client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        g, cmds = parse_cli(argv)
    except (UsageError, PeerError) as e:
        emit({"event": "error", "error": "usage", "message": str(e), "command": None})
        return EXIT_CODES["usage"]
    logging.basicConfig(stream=sys.stderr, format="smpp_peer: %(levelname)s %(message)s",
                        level=logging.DEBUG if g.verbose else logging.WARNING)
    try:
        run(g, cmds)
        return 0
    except PeerError as e:
        emit({"event": "error", "error": e.kind, "message": e.message,
              "command": getattr(e, "command", None)})
        return EXIT_CODES.get(e.kind, 1)
    except KeyboardInterrupt:
        emit({"event": "error", "error": "internal", "message": "interrupted", "command": None})
        return 130
    except Exception as e:  # never die with a bare traceback on stdout
        log.exception("internal error")
        emit({"event": "error", "error": "internal", "message": "%s: %s" % (type(e).__name__, e),
              "command": None})
        return EXIT_CODES["internal"]


if __name__ == "__main__":
    sys.exit(main())
