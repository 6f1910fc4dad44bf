#!/usr/bin/env bash
# Local throwaway Redis on loopback for tests (Debian's redis-server, no systemd needed).
#
#   scripts/redis-local.sh start    # install redis-server if missing, start a fresh one, wait for PONG
#   scripts/redis-local.sh stop     # SHUTDOWN NOSAVE, then TERM/KILL after a bounded wait
#   scripts/redis-local.sh status   # exit 0 if it answers PING
#   scripts/redis-local.sh version  # print redis-server's version
#
# Environment:
#   REDIS_PORT           port on 127.0.0.1                   [16379]
#   OUTREACH_REDIS_HOME  dir for pid file and log            [/tmp/outreach-redis]
#   REDIS_READY_TIMEOUT  seconds to wait for PONG            [30]
#   REDIS_STOP_TIMEOUT   seconds to wait for shutdown        [15]
#
# Only the instance this script started (its pid file) is ever stopped; a default
# redis on 6379 that apt may have started is left alone.
set -euo pipefail

HOST=127.0.0.1
REDIS_PORT="${REDIS_PORT:-16379}"
WORK="${OUTREACH_REDIS_HOME:-/tmp/outreach-redis}"
READY_TIMEOUT="${REDIS_READY_TIMEOUT:-30}"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-15}"
PIDFILE="$WORK/redis-$REDIS_PORT.pid"
LOGFILE="$WORK/redis-$REDIS_PORT.log"

log() { echo "[redis-local] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ensure_redis() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "redis-server is missing and apt-get is unavailable"
  log "installing redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # redis-tools (redis-cli) comes with redis-server as a dependency.
  apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get install"
}

cli() { redis-cli -h "$HOST" -p "$REDIS_PORT" "$@"; }

answers_ping() { [[ "$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

read_pid() { if [[ -f "$PIDFILE" ]]; then cat "$PIDFILE" 2>/dev/null || true; fi; }

# True if the pid file names a live redis-server (guards against pid reuse).
is_running() {
  local pid
  pid="$(read_pid)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'redis-server'
}

cmd_stop() {
  if ! is_running; then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  local pid i
  pid="$(read_pid)"
  log "stopping redis-server (pid $pid, port $REDIS_PORT)"
  timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    ((i == 50)) && kill -TERM "$pid" 2>/dev/null
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after ${STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  if kill -0 "$pid" 2>/dev/null; then die "pid $pid did not exit"; fi
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_start() {
  ensure_redis
  cmd_stop # always a fresh, empty server
  if answers_ping; then
    die "something else already answers on $HOST:$REDIS_PORT"
  fi
  mkdir -p "$WORK"
  rm -f "$LOGFILE"

  redis-server --bind "$HOST" --port "$REDIS_PORT" \
    --daemonize yes --pidfile "$PIDFILE" --logfile "$LOGFILE" --dir "$WORK" \
    --save '' --appendonly no --protected-mode yes \
    || { tail -n 30 "$LOGFILE" >&2 2>/dev/null || true; die "redis-server failed to start"; }

  local start=$SECONDS deadline=$((SECONDS + READY_TIMEOUT))
  until answers_ping; do
    if ((SECONDS >= deadline)); then
      log "---- tail of $LOGFILE ----"
      tail -n 30 "$LOGFILE" >&2 2>/dev/null || true
      cmd_stop || true
      die "redis not answering PING on $HOST:$REDIS_PORT after ${READY_TIMEOUT}s"
    fi
    sleep 0.1
  done
  # The pid file is written by the daemonized child; make sure we have it.
  until [[ -s "$PIDFILE" ]] || ((SECONDS >= deadline)); do sleep 0.1; done
  log "ready on $HOST:$REDIS_PORT after $((SECONDS - start))s (pid $(read_pid))"
}

cmd_status() {
  if is_running && answers_ping; then
    echo "redis: running, pid $(read_pid), $HOST:$REDIS_PORT, $(cli info server | tr -d '\r' | grep '^redis_version:')"
  else
    echo "redis: not running on $HOST:$REDIS_PORT"
    return 1
  fi
}

cmd_version() {
  ensure_redis
  redis-server --version
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  version) cmd_version ;;
  *)
    echo "usage: $0 start|stop|status|version" >&2
    exit 2
    ;;
esac
