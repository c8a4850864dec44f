#!/bin/bash
# N otpgw nodes on one PostgreSQL database (a fresh database otpgw_nodes_bench), one
# `otpgw bench sms` per node at once (4 binds x window 10, distinct cards), then each
# node's report and its cluster-limit decision time from /metrics:
#   bash benches/nodes.sh 3 20s     (after cargo build --release -p otpgw -p otpgw-bench)
set -u
N=$1; DUR=${2:-20s}
cd "$(dirname "$0")/.."
. benches/lib.sh
BIN="${OTPGW_BIN:-target/release/otpgw}"
DB=otpgw_nodes_bench
psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
dir=$(mktemp -d /tmp/otpgw-nodes.XXXX)
PK=$(openssl rand -hex 32); CK=$(openssl rand -hex 32)
pids=()
for i in $(seq 1 $N); do
cat > $dir/n$i.toml <<TOML
[database]
url = "postgres://postgres@127.0.0.1:5432/$DB"
max_connections = 20
[smpp]
listen = "127.0.0.1:2776$i"
[[smpp.peers]]
system_id = "bench"
password = "bench"
[http]
listen = "127.0.0.1:2809$i"
max_connections_per_ip = 1000
[secrets]
pan_key = "$PK"
code_key = "$CK"
[log]
level = "warn"
[service]
short_codes = ["30003303"]
$(open_limits 100000 60 1000)
TOML
  [ $i = 1 ] && $BIN --config $dir/n1.toml migrate >/dev/null
  $BIN --config $dir/n$i.toml serve 2>$dir/n$i.log & pids+=($!)
done
for i in $(seq 1 $N); do wait_ready 2809$i; done
KEY=$(api_key $BIN $dir/n1.toml admin)
uptime
bpids=()
for i in $(seq 1 $N); do
  $BIN bench sms --smpp 127.0.0.1:2776$i --system-id bench --password bench --http http://127.0.0.1:2809$i --admin-key $KEY --enroll 2000 --from-prefix 9891$i --binds 4 --window 10 --duration $DUR --json --quiet > $dir/b$i.json 2>$dir/b$i.err & bpids+=($!)
done
wait ${bpids[@]}
for i in $(seq 1 $N); do
  python3 -c "import json;r=json.load(open('$dir/b$i.json'));print('node $i', r['throughput_per_s'], r['latency_ms'], r['errors'])"
  curl -s http://127.0.0.1:2809$i/metrics | grep -E "^otpgw_limit_decision_seconds_(sum|count)|^otpgw_limit_fallbacks_total"
done
# Replies still in the outbox (claimed and sent replies are deleted on deliver_sm_resp).
psql -h 127.0.0.1 -U postgres -d $DB -Atc "SELECT 'codes ' || (SELECT count(*) FROM codes) || ', outbox rows left ' || (SELECT count(*) FROM reply_outbox)"
kill ${pids[@]}; wait
psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB"
