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
  wait-stdin [--timeout S]   (until a line arrives on stdin: the test's "go on")

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
  {"event":"stdin"}
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
import json
import logging
import select
import socket
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

# The rest of the peer (after smpplib, whose absence is reported above as JSON).
from smpp_wire import (  # noqa: E402
    BIND_KINDS, CODINGS, DELIVER_SM, ENQUIRE_LINK, ENQUIRE_LINK_RESP, SUBMIT_SM_RESP,
    UNBIND_RESP, PeerError, Session, c_string, deliver_event, log,
)


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


def cmd_wait_stdin(s, a, timeout):
    """Stays bound, answering the server, until the test writes a line to stdin."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PeerError("timeout", "no line on stdin within %gs" % timeout)
        ready, _, _ = select.select([sys.stdin, s.sock], [], [], left)
        if sys.stdin in ready:
            sys.stdin.readline()
            emit({"event": "stdin"})
            return
        if ready:
            p = s.pump(deadline)  # server requests are answered inside pump
            if p is not None and p.command_id == DELIVER_SM:
                s.delivers.append(p)


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
    for name in ("enquire-link", "unbind", "wait-unbind", "wait-deliver", "wait-stdin"):
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
            elif name == "wait-stdin":
                cmd_wait_stdin(s, a, timeout)
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
