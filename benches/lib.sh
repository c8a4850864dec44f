# Sourced by the bench scripts (nodes.sh, with-gateway.sh), which start real
# gateways the same way: every limit opened up, wait until ready, then make API keys.

# The [limits] table with every limit opened up to COUNT (per second; the per-MSISDN
# limit per MSISDN_SECS, default 1; unknown senders UNKNOWN, default COUNT): the
# figures measure the gateway, not its limits.
#   open_limits COUNT [MSISDN_SECS [UNKNOWN]]
open_limits() {
  local n=$1 msisdn_secs=${2:-1} unknown=${3:-$1}
  cat <<TOML
[limits]
msisdn = [{ count = $n, per_secs = $msisdn_secs }]
card = { count = $n, per_secs = 1 }
unknown_sender = { count = $unknown, per_secs = 1 }
peer_tps = 0
global_per_second = 0
verify_per_key_per_second = 0
push_per_key_per_second = 0
guard_max_failures = $n
locks_per_key = { count = $n, per_secs = 1 }
TOML
}

# Waits (at most 10 s) until the gateway whose HTTP port is PORT answers /readyz.
#   wait_ready PORT
wait_ready() {
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
}

# Prints a new API key of ROLE, made with the CLI of the gateway configured by CONFIG.
#   api_key BIN CONFIG ROLE
api_key() {
  "$1" --config "$2" apikey create --role "$3" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
