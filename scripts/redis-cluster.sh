#!/usr/bin/env bash
# Local throwaway Redis Cluster on loopback for tests: 3 masters and 3 replicas
# of Debian's redis-server (no systemd, no Docker).
#
#   scripts/redis-cluster.sh start         # install redis-server if missing, start a fresh cluster,
#                                          # wait for cluster_state:ok; prints the address list
#   scripts/redis-cluster.sh stop          # SHUTDOWN NOSAVE every node, TERM/KILL after a bounded
#                                          # wait, remove the work dir
#   scripts/redis-cluster.sh status        # print the nodes; exit 0 only if the cluster is ok
#   scripts/redis-cluster.sh kill PORT     # kill -9 one node (for failover tests)
#   scripts/redis-cluster.sh restart PORT  # start that node again from its nodes file: it rejoins
#   scripts/redis-cluster.sh addrs         # print the address list
#   scripts/redis-cluster.sh version       # print redis-server's version
#
# `start` prints one line on stdout, the comma-separated addresses, e.g.
#   OUTREACH_TEST_REDIS_CLUSTER="$(scripts/redis-cluster.sh start)"
# Everything else goes to stderr.
#
# "The cluster is ok" (status, and the end of start and restart) means: every
# running node reports cluster_state:ok with all 16384 slots ok, and sees every
# slot served by a running master. A killed master makes it not ok at once; once
# its replica has taken over, it is ok again, with the killed node listed as down.
#
# Environment:
#   REDIS_CLUSTER_PORT          first port; nodes use PORT..PORT+5 on 127.0.0.1 and
#                               PORT+10000.. for the cluster bus             [17000]
#   REDIS_CLUSTER_HOME          work dir: one dir per node (config, nodes file, pid,
#                               log, data)                                   [/tmp/outreach-redis-cluster]
#   REDIS_CLUSTER_NODE_TIMEOUT  cluster-node-timeout in ms: how long until a master that
#                               does not answer is failed over               [2000]
#   REDIS_CLUSTER_APPENDONLY    appendonly yes|no: AOF persistence, so that a node
#                               restarted by `restart` keeps its data        [no]
#   REDIS_CLUSTER_FULL_COVERAGE cluster-require-full-coverage yes|no: with no, a shard
#                               that is down (master and replica) fails only the
#                               commands of its own slots; with yes, every node
#                               answers CLUSTERDOWN                          [yes]
#   REDIS_CLUSTER_READY_TIMEOUT seconds to wait for each readiness step      [60]
#   REDIS_CLUSTER_STOP_TIMEOUT  seconds to wait for a node to shut down      [15]
#
# Only the nodes this script started (their pid files) are ever stopped or killed.
set -euo pipefail

HOST=127.0.0.1
BASE="${REDIS_CLUSTER_PORT:-17000}"
WORK="${REDIS_CLUSTER_HOME:-/tmp/outreach-redis-cluster}"
NODE_TIMEOUT="${REDIS_CLUSTER_NODE_TIMEOUT:-2000}"
APPENDONLY="${REDIS_CLUSTER_APPENDONLY:-no}"
FULL_COVERAGE="${REDIS_CLUSTER_FULL_COVERAGE:-yes}"
READY_TIMEOUT="${REDIS_CLUSTER_READY_TIMEOUT:-60}"
STOP_TIMEOUT="${REDIS_CLUSTER_STOP_TIMEOUT:-15}"
NODES=6

log() { echo "[redis-cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$BASE" =~ ^[0-9]+$ ]] && ((BASE >= 1024 && BASE + NODES - 1 + 10000 <= 65535)) \
  || die "REDIS_CLUSTER_PORT=$BASE: need a port with PORT+5+10000 <= 65535"
[[ "$NODE_TIMEOUT" =~ ^[0-9]+$ ]] && ((NODE_TIMEOUT > 0)) || die "REDIS_CLUSTER_NODE_TIMEOUT=$NODE_TIMEOUT: need milliseconds > 0"
[[ "$APPENDONLY" == yes || "$APPENDONLY" == no ]] || die "REDIS_CLUSTER_APPENDONLY=$APPENDONLY: need yes or no"
[[ "$FULL_COVERAGE" == yes || "$FULL_COVERAGE" == no ]] || die "REDIS_CLUSTER_FULL_COVERAGE=$FULL_COVERAGE: need yes or no"

ports() { seq "$BASE" $((BASE + NODES - 1)); }

addrs() {
  local p list=()
  for p in $(ports); do list+=("$HOST:$p"); done
  local IFS=,
  echo "${list[*]}"
}

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

node_dir() { echo "$WORK/$1"; }
pidfile() { echo "$WORK/$1/redis.pid"; }
logfile() { echo "$WORK/$1/redis.log"; }

cli() { local port=$1; shift; timeout 5 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null; }

answers_ping() { [[ "$(cli "$1" ping)" == PONG ]]; }

read_pid() { local f; f="$(pidfile "$1")"; if [[ -f "$f" ]]; then cat "$f" 2>/dev/null || true; fi; }

# alive PID: the process exists and is not a zombie (this machine's init reaps
# the exited daemons only every second or so).
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# True if the node's pid file names a live redis-server (guards against pid reuse).
is_running() {
  local pid
  pid="$(read_pid "$1")"
  [[ -n "$pid" ]] && alive "$pid" \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'redis-server'
}

check_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && (($1 >= BASE && $1 < BASE + NODES)) \
    || die "port $1 is not a node of this cluster ($BASE..$((BASE + NODES - 1)))"
}

# cluster_field PORT FIELD prints FIELD of the node's CLUSTER INFO.
cluster_field() { cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"; }

node_ok() {
  [[ "$(cluster_field "$1" cluster_state)" == ok && "$(cluster_field "$1" cluster_slots_ok)" == 16384 ]]
}

# masters_live PORT: in the node's view, every master that serves slots is one of
# our running nodes and is not flagged as failing.
masters_live() {
  local nodes addr flags port slots
  nodes="$(cli "$1" cluster nodes | tr -d '\r')" || return 1
  [[ -n "$nodes" ]] || return 1
  while read -r _ addr flags _ _ _ _ _ slots; do
    [[ "$flags" == *master* && -n "$slots" ]] || continue
    [[ "$flags" != *fail* ]] || return 1
    port="${addr%@*}"
    port="${port##*:}"
    is_running "$port" || return 1
  done <<<"$nodes"
}

# cluster_ok: at least one node runs, and every running node says the cluster is
# ok and sees all slots served by running masters.
cluster_ok() {
  local p up=0
  for p in $(ports); do
    is_running "$p" || continue
    up=$((up + 1))
    node_ok "$p" && masters_live "$p" || return 1
  done
  ((up > 0))
}

# replicas_synced: every running replica's link to its master is up.
replicas_synced() {
  local p info
  for p in $(ports); do
    is_running "$p" || continue
    info="$(cli "$p" info replication | tr -d '\r')"
    if grep -q '^role:slave' <<<"$info" && ! grep -q '^master_link_status:up' <<<"$info"; then
      return 1
    fi
  done
}

# wait_for WHAT CMD...: run CMD every 0.1s until it succeeds, for READY_TIMEOUT at most.
wait_for() {
  local what=$1 deadline=$((SECONDS + READY_TIMEOUT))
  shift
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${READY_TIMEOUT}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

write_config() {
  local port=$1 dir
  dir="$(node_dir "$port")"
  mkdir -p "$dir"
  cat >"$dir/redis.conf" <<EOF
bind $HOST
port $port
protected-mode yes
daemonize yes
dir $dir
pidfile $(pidfile "$port")
logfile $(logfile "$port")
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout $NODE_TIMEOUT
cluster-require-full-coverage $FULL_COVERAGE
save ""
appendonly $APPENDONLY
# Replicas sync at once (the default waits 5s for more replicas to join a transfer).
repl-diskless-sync-delay 0
EOF
}

start_node() {
  local port=$1
  if is_running "$port"; then die "node $port already runs (pid $(read_pid "$port"))"; fi
  if answers_ping "$port"; then die "something else already answers on $HOST:$port"; fi
  rm -f "$(pidfile "$port")"
  redis-server "$(node_dir "$port")/redis.conf" || {
    tail -n 30 "$(logfile "$port")" >&2 2>/dev/null || true
    die "redis-server on port $port failed to start"
  }
  wait_for "PONG on $HOST:$port" answers_ping "$port" || {
    tail -n 30 "$(logfile "$port")" >&2 2>/dev/null || true
    return 1
  }
  # The pid file is written by the daemonized child; make sure we have it.
  wait_for "pid file of $port" test -s "$(pidfile "$port")"
}

stop_node() {
  local port=$1 pid i
  if ! is_running "$port"; then
    rm -f "$(pidfile "$port")"
    return 0
  fi
  pid="$(read_pid "$port")"
  # NOW: do not wait for replicas to catch up (up to shutdown-timeout, 10s).
  cli "$port" shutdown nosave now >/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || break
    ((i == 50)) && kill -TERM "$pid" 2>/dev/null
    sleep 0.1
  done
  if alive "$pid"; then
    log "node $port still alive after ${STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  if alive "$pid"; then die "pid $pid (port $port) did not exit"; fi
  rm -f "$(pidfile "$port")"
}

# remove_work removes what start created in the work dir, and the dir if
# that leaves it empty; never anything else.
remove_work() {
  local p
  for p in $(ports); do rm -rf "${WORK:?}/$p"; done
  rm -f "$WORK/create.log"
  rmdir "$WORK" 2>/dev/null || true
}

cmd_stop() {
  local p
  for p in $(ports); do stop_node "$p"; done
  remove_work
  log "stopped"
}

cmd_start() {
  ensure_redis
  local p start=$SECONDS
  for p in $(ports); do is_running "$p" && { cmd_stop; break; }; done # always a fresh, empty cluster
  remove_work
  for p in $(ports); do
    answers_ping "$p" && die "something else already answers on $HOST:$p"
  done
  for p in $(ports); do
    write_config "$p"
    start_node "$p" || { cmd_stop; die "node $p did not start"; }
  done
  local list nodes=()
  list="$(addrs)"
  IFS=, read -r -a nodes <<<"$list"
  if ! timeout "$READY_TIMEOUT" redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
    >"$WORK/create.log" 2>&1; then
    cat "$WORK/create.log" >&2
    cmd_stop
    die "redis-cli --cluster create failed"
  fi
  if ! wait_for "cluster_state:ok on every node" cluster_ok || ! wait_for "replicas in sync" replicas_synced; then
    cmd_status >&2 || true
    cmd_stop
    die "cluster did not become ok"
  fi
  log "ready on $list after $((SECONDS - start))s (node timeout ${NODE_TIMEOUT}ms, appendonly $APPENDONLY)"
  echo "$list"
}

cmd_status() {
  local p any=""
  for p in $(ports); do
    if is_running "$p"; then
      echo "node $HOST:$p: running, pid $(read_pid "$p"), cluster_state:$(cluster_field "$p" cluster_state)," \
        "slots_ok:$(cluster_field "$p" cluster_slots_ok)"
      [[ -n "$any" ]] || any=$p
    else
      echo "node $HOST:$p: down"
    fi
  done
  if [[ -n "$any" ]]; then cli "$any" cluster nodes | sort -k3; fi
  if cluster_ok; then
    echo "cluster: ok"
  else
    echo "cluster: not ok"
    return 1
  fi
}

cmd_kill() {
  local port=$1 pid
  check_port "$port"
  is_running "$port" || die "node $port is not running"
  pid="$(read_pid "$port")"
  kill -KILL "$pid"
  local i
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && die "pid $pid (port $port) still alive after KILL"
  log "killed node $port (pid $pid)"
}

cmd_restart() {
  local port=$1 start=$SECONDS
  check_port "$port"
  [[ -f "$(node_dir "$port")/redis.conf" ]] || die "node $port was never started (no $(node_dir "$port")/redis.conf)"
  start_node "$port" || die "node $port did not start"
  if ! wait_for "cluster_state:ok after restarting $port" cluster_ok || ! wait_for "replicas in sync" replicas_synced; then
    cmd_status >&2 || true
    die "cluster not ok after restarting $port"
  fi
  log "node $port rejoined after $((SECONDS - start))s"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill) cmd_kill "${2:?usage: $0 kill PORT}" ;;
  restart) cmd_restart "${2:?usage: $0 restart PORT}" ;;
  addrs) addrs ;;
  version)
    ensure_redis
    redis-server --version
    ;;
  *)
    echo "usage: $0 start|stop|status|kill PORT|restart PORT|addrs|version" >&2
    exit 2
    ;;
esac
