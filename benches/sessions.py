# Memory of otpgw with N idle bound SMPP sessions, after they close, and after M more
# come and go (1,000 at a time): `python3 benches/sessions.py 2000 30000` after
# `cargo build --release`. Reads VmRSS from /proc; raw bind_transceiver PDUs.
import socket, struct, sys, time, os, subprocess, tempfile
BIN=os.environ.get("OTPGW_BIN", os.path.join(os.path.dirname(__file__), "..", "target", "release", "otpgw"))
N=int(sys.argv[1]); M=int(sys.argv[2])
d=tempfile.mkdtemp()
open(f"{d}/o.toml","w").write(f'''[database]
url = "sqlite://{d}/o.db"
[smpp]
listen = "127.0.0.1:27790"
max_connections = 20000
max_connections_per_ip = 20000
[[smpp.peers]]
system_id = "idle"
password = "idle"
[http]
listen = "127.0.0.1:28090"
[log]
level = "warn"
''')
gw=subprocess.Popen([BIN,"--config",f"{d}/o.toml","serve"],stderr=subprocess.DEVNULL)
def rss():
    for l in open(f"/proc/{gw.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
for _ in range(100):
    try: socket.create_connection(("127.0.0.1",27790)).close(); break
    except OSError: time.sleep(0.1)
def cstr(s): return s.encode()+b"\0"
def bind(seq):
    body=cstr("idle")+cstr("idle")+cstr("")+bytes([0x34,0,0])+cstr("")
    return struct.pack(">IIII",16+len(body),0x09,0,seq)+body
def open_bound():
    s=socket.create_connection(("127.0.0.1",27790))
    s.sendall(bind(1)); h=s.recv(16)
    assert struct.unpack(">IIII",h[:16])[2]==0, h
    s.recv(4096)
    return s
time.sleep(1); base=rss()
socks=[open_bound() for _ in range(N)]
time.sleep(2); full=rss()
print(f"start {base} KiB; with {N} idle sessions {full} KiB; per session {(full-base)*1024/N:.0f} bytes")
for s in socks: s.close()
time.sleep(15); after=rss()
print(f"after they closed {after} KiB")
for i in range(M//1000):
    ss=[open_bound() for _ in range(1000)]
    for s in ss: s.close()
time.sleep(20)
print(f"after {M} more came and went {rss()} KiB")
gw.terminate(); gw.wait()
