#!/usr/bin/env bash
# Tests the API against its contract, http/openapi.yaml, with Schemathesis:
# a property-based tester that sends requests the document allows (which
# must be accepted) and requests it forbids (which must be refused), and
# checks every answer's status, media type, headers and body against it.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]    # default 20 per operation
#
# It installs schemathesis with pip if it is missing, builds outreachd and
# starts it on its embedded Redis and Kafka, on free loopback ports, with a
# fresh admin key (auth on) and no rate limits; waits for /healthz; runs
# every check with the bounds below and fails on any finding; and stops
# outreachd, whatever happens. It takes a minute or two.
#
# Environment:
#   SCHEMATHESIS_VERSION   the version pip installs          [4.32.5]
#   SCHEMATHESIS_MAX_TIME  seconds for the whole run, at most [120]
#   SCHEMATHESIS_SEED      a seed, to replay a run            [random]
set -euo pipefail

examples="${1:-20}"
if ! [[ "$examples" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [MAX_EXAMPLES]  (a whole number; got '$examples')" >&2
  exit 2
fi
version="${SCHEMATHESIS_VERSION:-4.32.5}"
max_time="${SCHEMATHESIS_MAX_TIME:-120}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { echo "[schemathesis] $*" >&2; }

if ! command -v schemathesis >/dev/null 2>&1 || [[ "$(schemathesis --version 2>/dev/null)" != *" $version" ]]; then
  log "installing schemathesis $version with pip"
  python3 -m pip install -q "schemathesis==$version"
fi
schemathesis --version

hooks="$PWD/scripts" # schemathesis_hooks.py: what the document says in words
work="$(mktemp -d)"
pid=""
stop() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

log "building outreachd"
go build -o "$work/outreachd" ./cmd/outreachd

key="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
echo "admin $(printf %s "$key" | sha256sum | cut -d' ' -f1)" >"$work/keys.txt"

# A check may wait 2s for the embedded Redis, which shares the machine with
# the tester: a slow answer must not read as an outage.
OUTREACH_API_KEYS_FILE="$work/keys.txt" OUTREACH_RATE_LIMITS=off OUTREACH_CHECK_TIMEOUT=2s \
  OUTREACH_HTTP_ADDR=127.0.0.1:0 OUTREACH_EMBEDDED_KAFKA_ADDR=127.0.0.1:0 \
  OUTREACH_LOG_FORMAT=text \
  "$work/outreachd" >"$work/outreachd.log" 2>&1 &
pid=$!

# outreachd logs where it listens; then /healthz must answer.
addr=""
for _ in $(seq 1 300); do
  addr="$(sed -n 's/.*msg="http listening" addr=\([0-9.:]*\).*/\1/p' "$work/outreachd.log" | head -1)"
  if [[ -n "$addr" ]] && curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/outreachd.log" >&2
    log "outreachd did not start"
    exit 1
  fi
  addr=""
  sleep 0.1
done
if [[ -z "$addr" ]]; then
  cat "$work/outreachd.log" >&2
  log "outreachd did not answer /healthz in 30s"
  exit 1
fi
log "outreachd on $addr"

seed=()
if [[ -n "${SCHEMATHESIS_SEED:-}" ]]; then
  seed=(--seed "$SCHEMATHESIS_SEED")
fi
start=$SECONDS
status=0
# From the work directory, where schemathesis keeps its cache.
(cd "$work" && SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$hooks${PYTHONPATH:+:$PYTHONPATH}" \
  schemathesis run "http://$addr/openapi.yaml" \
  -H "Authorization: Bearer $key" \
  --checks all \
  --max-examples "$examples" \
  --max-time "$max_time" \
  --request-timeout 10 \
  --workers 1 \
  --generation-database none \
  --suppress-health-check all \
  "${seed[@]}") || status=$?
log "done in $((SECONDS - start))s, exit $status"
if [[ $status -ne 0 ]] && grep -q 'level=ERROR' "$work/outreachd.log"; then
  log "outreachd's errors:"
  grep 'level=ERROR' "$work/outreachd.log" | head -20 >&2
fi
exit "$status"
