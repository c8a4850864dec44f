#!/usr/bin/env bash
# Runs one `otpgw bench` figure of BENCHMARKS.md against a fresh gateway:
#   bash benches/with-gateway.sh sms --binds 4 --window 10 --duration 30s --enroll 2000
#   bash benches/with-gateway.sh verify --binds 4 --window 10 --enroll 5000 --connections 16
# starts `otpgw serve` (release build) on a fresh SQLite database in a temporary
# directory, with every limit opened up, creates an admin and a verifier key, runs the
# bench with --smpp/--system-id/--password/--http/--admin-key (and --key for verify)
# filled in, then stops the gateway. OTPGW_BENCH_DATABASE=postgres://…/db runs it on
# PostgreSQL instead (an existing, empty database). Extra arguments go to the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
BIN="${OTPGW_BIN:-target/release/otpgw}"
# `otpgw bench` runs the otpgw-bench executable beside $BIN.
[ -x "$BIN" ] && [ -x "$(dirname "$BIN")/otpgw-bench" ] ||
  { echo "build first: cargo build --release -p otpgw -p otpgw-bench" >&2; exit 1; }
mode="$1"; shift
dir="$(mktemp -d /tmp/otpgw-bench.XXXXXX)"
smpp_port="${OTPGW_BENCH_SMPP_PORT:-27750}"
http_port="${OTPGW_BENCH_HTTP_PORT:-28080}"
db="${OTPGW_BENCH_DATABASE:-sqlite://$dir/otpgw.db}"
keys=""
if [[ "$db" == postgres* ]]; then
  # A shared database takes its keys from the config, never from a key file.
  keys="pan_key = \"$(openssl rand -hex 32)\"
code_key = \"$(openssl rand -hex 32)\""
fi
cat > "$dir/otpgw.toml" <<TOML
[database]
url = "$db"
[smpp]
listen = "127.0.0.1:$smpp_port"
[[smpp.peers]]
system_id = "bench"
password = "bench"
[http]
listen = "127.0.0.1:$http_port"
max_connections_per_ip = 1000
[secrets]
key_file = "$dir/keys.toml"
$keys
[log]
level = "warn"
[service]
short_codes = ["30003303"]
sender_id = "BankOTP"
$(open_limits 1000000000)
TOML
"$BIN" --config "$dir/otpgw.toml" serve > "$dir/serve.log" 2>&1 &
gw=$!
trap 'kill "$gw" 2>/dev/null; wait "$gw" 2>/dev/null; rm -rf "$dir"' EXIT
wait_ready "$http_port"
export OTPGW_BENCH_ADMIN_KEY="$(api_key "$BIN" "$dir/otpgw.toml" admin)" OTPGW_BENCH_PASSWORD=bench

if [ "$mode" = verify ]; then
  export OTPGW_BENCH_VERIFIER_KEY="$(api_key "$BIN" "$dir/otpgw.toml" verifier)"
fi
# The bench reports the gateway's CPU per code over its timed part (--gateway-pid),
# and PostgreSQL's when the database is this machine's (--postgres-cpu). The line
# after it is the gateway's CPU over the whole run, enrolment included.
cpu=(--gateway-pid "$gw")
if [[ "$db" == postgres*://*@127.0.0.1* || "$db" == postgres*://*@localhost* ]]; then
  cpu+=(--postgres-cpu)
fi
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw/stat"; }
before=$(cpu_ticks)
status=0
"$BIN" bench "$mode" --smpp "127.0.0.1:$smpp_port" --system-id bench \
  --http "http://127.0.0.1:$http_port" "${cpu[@]}" "$@" || status=$?
echo "gateway CPU over the whole run: $(( ($(cpu_ticks) - before) * 1000 / $(getconf CLK_TCK) )) ms" >&2
exit "$status"
