# Peak memory of otpgw while N distinct unknown senders (numbers with no card) each
# send one SMS: `python3 benches/unknown_senders.py 200000` after
# `cargo build --release`. One transceiver bind sends the messages with up to 500 in
# flight and answers every deliver_sm (the "not registered" notices); the gateway
# runs the default limits except the peer's TPS and the global cap, opened so the
# run takes seconds instead of minutes (the per-number and unknown-sender windows,
# whose memory this measures, are the defaults). Prints VmRSS before, VmHWM (the
# peak) and VmRSS after, from /proc, in MB. Raw PDUs, no SMPP library.
import os, socket, struct, subprocess, sys, tempfile, time
BIN = os.environ.get("OTPGW_BIN", os.path.join(os.path.dirname(__file__), "..", "target", "release", "otpgw"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
WINDOW = 500
d = tempfile.mkdtemp()
open(f"{d}/o.toml", "w").write(f'''[database]
url = "sqlite://{d}/o.db"
[smpp]
listen = "127.0.0.1:27791"
window = 100
[[smpp.peers]]
system_id = "flood"
password = "flood"
[http]
listen = "127.0.0.1:28091"
[secrets]
key_file = "{d}/keys.toml"
[log]
level = "warn"
[service]
short_codes = ["30003303"]
[limits]
peer_tps = 0
global_per_second = 0
''')
gw = subprocess.Popen([BIN, "--config", f"{d}/o.toml", "serve"], stderr=subprocess.DEVNULL)


def status(key):
    for line in open(f"/proc/{gw.pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024


for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", 27791)).close()
        break
    except OSError:
        time.sleep(0.1)


def cstr(s):
    return s.encode() + b"\0"


def pdu(cid, seq, body=b"", st=0):
    return struct.pack(">IIII", 16 + len(body), cid, st, seq) + body


def submit(seq, source):
    body = (cstr("") + bytes([1, 1]) + cstr(source) + bytes([0, 1]) + cstr("30003303")
            + bytes([0, 0, 0]) + cstr("") + cstr("") + bytes([0, 0, 0, 0, 4]) + b"4321")
    return pdu(0x04, seq, body)


s = socket.create_connection(("127.0.0.1", 27791))
s.sendall(pdu(0x09, 1, cstr("flood") + cstr("flood") + cstr("") + bytes([0x34, 0, 0]) + cstr("")))
buf = b""


def read_pdus():
    """Reads what is there; answers deliver_sm; returns (submit_sm_resp count, deliver_sm count)."""
    global buf
    data = s.recv(1 << 20)
    if not data:
        raise SystemExit("the gateway closed the connection")
    buf += data
    resps = delivered = 0
    out = b""
    while len(buf) >= 16:
        length, cid, st, seq = struct.unpack(">IIII", buf[:16])
        if len(buf) < length:
            break
        buf = buf[length:]
        if cid == 0x80000004:
            resps += 1
        elif cid == 0x00000005:
            delivered += 1
            out += pdu(0x80000005, seq, b"\0")
        elif cid == 0x00000015:
            out += pdu(0x80000015, seq)
    if out:
        s.sendall(out)
    return resps, delivered


time.sleep(1)
before = status("VmRSS")
start = time.time()
sent = answered = notices = 0
while answered < N:
    burst = b""
    while sent < N and sent - answered < WINDOW:
        sent += 1
        burst += submit(sent + 1, f"98935{sent:07d}")
    if burst:
        s.sendall(burst)
    r, n = read_pdus()
    answered += r
    notices += n
took = time.time() - start
# The last notices, then the figures.
s.settimeout(2)
try:
    while notices < N:
        notices += read_pdus()[1]
except socket.timeout:
    pass
peak, after = status("VmHWM"), status("VmRSS")
print(f"{N} unknown senders in {took:.1f}s ({N / took:.0f}/s), {notices} notices: "
      f"VmRSS before {before:.1f} MB, peak (VmHWM) {peak:.1f} MB, after {after:.1f} MB, "
      f"peak growth {(peak - before) * 1024 * 1024 / N:.0f} bytes per sender")
gw.terminate()
gw.wait()
