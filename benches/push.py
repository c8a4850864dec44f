# Throughput of pushed codes (POST /v1/codes, 16 HTTP clients) through one operator
# connection at window W (default 10) against the scripted SMSC
# (tests/peers/smsc.js), SQLite, and how long the connection takes to be bound
# again after the SMSC drops it (5 drops), with the gateway's CPU per code.
# Usage: python3 benches/push.py target/release/otpgw 3000 [W]
import json, os, subprocess, sys, tempfile, threading, time, urllib.request, queue
from concurrent.futures import ThreadPoolExecutor
BIN, N = sys.argv[1], int(sys.argv[2])
WINDOW = int(sys.argv[3]) if len(sys.argv) > 3 else 10
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
smsc = subprocess.Popen(["node", f"{ROOT}/tests/peers/smsc.js"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
events = queue.Queue()
def reader():
    for line in smsc.stdout:
        events.put((time.monotonic(), json.loads(line)))
threading.Thread(target=reader, daemon=True).start()
def wait(pred, timeout=60):
    end = time.monotonic() + timeout
    while True:
        t, e = events.get(timeout=max(0.01, end - time.monotonic()))
        if pred(e): return t, e
port = wait(lambda e: e["event"] == "listening")[1]["port"]
d = tempfile.mkdtemp()
import socket as _s
_probe = _s.socket(); _probe.bind(("127.0.0.1", 0)); HTTP_PORT = _probe.getsockname()[1]; _probe.close()
cfg = f"""
[database]
url = "sqlite://{d}/otpgw.db"
[smpp]
listen = "127.0.0.1:0"
[[smpp.connections]]
name = "smsc"
host = "127.0.0.1"
port = {port}
system_id = "otpgw"
password = "pw"
window = {WINDOW}
tps = 0
max_backoff_secs = 1
[http]
listen = "127.0.0.1:{HTTP_PORT}"
[log]
level = "warn"
[service]
short_codes = ["30003303"]
language = "en"
[limits]
msisdn = [{{ count = 100000, per_secs = 60 }}]
card = {{ count = 100000, per_secs = 1 }}
unknown_sender = {{ count = 1000, per_secs = 1 }}
peer_tps = 0
global_per_second = 0
verify_per_key_per_second = 0
# Pushes are limited per API key (50/s by default): opened, as every other limit here.
push_per_key_per_second = 0
guard_max_failures = 100000
"""
open(f"{d}/otpgw.toml", "w").write(cfg)
gw = subprocess.Popen([BIN, "--config", f"{d}/otpgw.toml", "serve"], stdout=subprocess.DEVNULL)
wait(lambda e: e["event"] == "bind" and e["status"] == 0)
def key(role):
    out = subprocess.run([BIN, "--config", f"{d}/otpgw.toml", "apikey", "create", "--role", role], capture_output=True, text=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])["key"]
admin, verifier = key("admin"), key("verifier")
def post(k, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}", data=json.dumps(body).encode(), headers={"authorization": f"Bearer {k}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r: return r.status
def luhn(base):
    for c in range(10):
        s = base + str(c); t = 0
        for i, ch in enumerate(reversed(s)):
            x = int(ch)
            if i % 2: x *= 2; x -= 9 if x > 9 else 0
            t += x
        if t % 10 == 0: return s
pans = [luhn(f"603799{i:09d}") for i in range(N)]
with ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda i: post(admin, "/v1/cards", {"pan": pans[i], "msisdn": f"98912{i:07d}"}), range(N)))
def cpu_ms():  # the gateway's user + system CPU time
    f = open(f"/proc/{gw.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")
cpu0 = cpu_ms()
t0 = time.monotonic()
with ThreadPoolExecutor(16) as ex:
    codes = list(ex.map(lambda i: post(verifier, "/v1/codes", {"pan": pans[i], "request_id": f"r{i}"}), range(N)))
t_http = time.monotonic() - t0
seen = 0; last = t0
while seen < N:
    t, e = wait(lambda e: e["event"] == "submit_sm" and e["status"] == 0)
    seen += 1; last = t
cpu = cpu_ms() - cpu0
print(json.dumps({"window": WINDOW, "pushed": N, "http_202": codes.count(202), "http_seconds": round(t_http, 3), "all_at_smsc_seconds": round(last - t0, 3), "codes_per_second": round(N / (last - t0), 1), "gateway_cpu_us_per_code": round(cpu * 1000 / N, 1)}))
# Reconnect: drop, then time until the next successful bind.
times = []
for _ in range(5):
    smsc.stdin.write(json.dumps({"cmd": "drop"}) + "\n"); smsc.stdin.flush()
    td, _ = wait(lambda e: e["event"] == "dropped")
    tb, _ = wait(lambda e: e["event"] == "bind" and e["status"] == 0)
    times.append(round((tb - td) * 1000, 1))
print(json.dumps({"reconnect_ms_after_drop": times}))
gw.terminate(); gw.wait(); smsc.kill()
