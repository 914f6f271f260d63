#!/usr/bin/env bash
# Multi-node scenarios on one machine: each node is a udlmd with its own
# DLM_RUN_DIR and DLM_NODEID, listening on 127.0.0.<id>; C programs built
# against libdlm.h run on each node with udlm's libdlm.so.3 first in
# LD_LIBRARY_PATH. Prints one line per scenario and "N passed, N failed".
# ONLY=WORD runs only the scenarios whose program or title contains WORD.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd)
work=$(mktemp -d)
pass=0 fail=0
port=$((20000 + RANDOM % 20000))

stop_nodes() {
  for p in "$work"/n*/udlmd.pid; do
    # SIGCONT too: a test that died while it had paused a node must not
    # leave it stopped (a stopped process never acts on SIGTERM).
    [ -f "$p" ] && { kill "$(cat "$p")"; kill -CONT "$(cat "$p")"; } 2>/dev/null
  done
  # A node leaving tells its peers first; wait until each is gone, since
  # the next scenario reuses the run directories.
  for p in "$work"/n*/udlmd.pid; do
    [ -f "$p" ] || continue
    for _ in $(seq 50); do kill -0 "$(cat "$p")" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$(cat "$p")" 2>/dev/null
  done
  rm -f "$work"/n*/udlmd.pid
}
trap 'stop_nodes; rm -rf "$work"' EXIT

mkdir -p "$work/lib" "$work/bin"
ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
ln -s "$rel/libudlmext.so" "$work/lib/libudlm.so.1"
for prog in counter lvb bast deadlock inflight orphan cycle tree xnode lsleave; do
  cc -O1 -g -Wall -I"$top/include" -o "$work/bin/$prog" "$top/cluster-tests/$prog.c" \
     -L"$work/lib" -l:libdlm.so.3 -l:libudlm.so.1 -pthread -D_REENTRANT || exit 1
done

# write_config NODES [KEYFILE] > file
write_config() {
  echo "cluster_name=udlmtest"
  echo "heartbeat_ms=200"
  echo "peer_timeout_ms=2000"
  [ -n "${2:-}" ] && echo "key_file=$2"
  for k in $(seq 1 "$1"); do echo "node id=$k addr=127.0.0.$k port=$port"; done
  [ -n "${EXTRA_CONF:-}" ] && echo "$EXTRA_CONF"
  true
}

# start_nodes N: udlmd for nodes FIRST_DAEMON (default 1) to N
start_nodes() {
  local n=$1
  port=$((port + 1))
  write_config "$n" > "$work/dlm.conf"
  for k in $(seq "${FIRST_DAEMON:-1}" "$n"); do
    mkdir -p "$work/n$k"
    DLM_RUN_DIR=$work/n$k DLM_NODEID=$k DLM_CONF=${CONF_OVERRIDE_DIR:-$work}/dlm${CONF_SUFFIX:-}.conf \
      "$rel/udlmd" --daemonize || { echo "node $k did not start"; cat "$work/n$k/udlmd.log"; return 1; }
  done
}

# on NODE cmd...: run a program on a node
on() {
  local k=$1; shift
  DLM_RUN_DIR=$work/n$k DLM_NODEID=$k DLM_CONF=$work/dlm.conf LD_LIBRARY_PATH=$work/lib \
    SYNC_DIR=$work/sync DLM_DAEMON=$rel/udlmd MASTER_PID_FILE=$work/n2/udlmd.pid timeout 60 "$@"
}

result() { # name rc
  if [ "$2" = 0 ]; then echo "PASS $1"; pass=$((pass+1)); else echo "FAIL $1"; fail=$((fail+1)); fi
}

# selected TITLE PROG: whether ONLY lets this scenario run
selected() { [ -z "${ONLY:-}" ] || [[ "$1 $2" == *"$ONLY"* ]]; }

scenario_counter() { # nodes increments
  local n=$1 inc=$2 rc=0
  selected "counter" "counter" || return 0
  rm -rf "$work/sync"; mkdir -p "$work/sync"; echo 0 > "$work/counter"
  start_nodes "$n" || { result "counter on $n nodes" 1; return; }
  local pids=()
  for k in $(seq 1 "$n"); do on "$k" "$work/bin/counter" "$work/counter" "$inc" 2> "$work/counter.$k.err" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  local got; got=$(cat "$work/counter")
  [ "$got" = $((n * inc)) ] || { echo "  counter ended at $got, expected $((n * inc))"; rc=1; }
  # A program on a daemon says nothing on stderr: in particular its
  # library never tries to start a node of its own (it once did, when a
  # handle closed, because the config lists other nodes).
  for k in $(seq 1 "$n"); do
    [ -s "$work/counter.$k.err" ] && { echo "  node $k's program wrote to stderr:"; sed 's/^/    /' "$work/counter.$k.err"; rc=1; }
  done
  stop_nodes
  result "counter: $n nodes x $inc increments under EX = $((n * inc))" $rc
}

# The counter again while every TCP connection between the nodes is torn
# down every 20 ms (`ss -K`, root only): the transport reconnects and
# sends again what was not acknowledged, so the count is exact, and no
# connection is down long enough to make a node lose a member (no
# recovery after the one that formed the cluster).
scenario_counter_links_killed() { # nodes increments
  local n=$1 inc=$2 rc=0 killer k lost=0 title
  title="counter: $n nodes x $inc increments while every connection between them is killed every 20 ms = $((n * inc)), no recovery"
  selected "counter links killed" "counter" || return 0
  if [ "$(id -u)" != 0 ] || ! command -v ss > /dev/null; then
    echo "SKIP $title (needs root and ss)"; return 0
  fi
  rm -rf "$work/sync"; mkdir -p "$work/sync"; echo 0 > "$work/counter"
  start_nodes "$n" || { result "$title" 1; return; }
  local formed=0
  for _ in $(seq 50); do
    [ "$(grep -c "finished recovery generation" "$work/n1/udlmd.log")" -ge 1 ] &&
      [ "$(grep -c " is up" "$work/n1/udlmd.log")" -ge $((n - 1)) ] && { formed=1; break; }
    sleep 0.1
  done
  [ $formed = 1 ] || { echo "  the cluster did not form"; stop_nodes; result "$title" 1; return; }
  sleep 0.5
  local before; before=$(cat "$work"/n*/udlmd.log | grep -c "starts recovery generation")
  rm -f "$work/stop-killing"
  ( while [ ! -e "$work/stop-killing" ]; do
      ss -K -tn "( sport = :$port or dport = :$port )" > /dev/null 2>&1; sleep 0.02
    done ) & killer=$!
  local pids=()
  for k in $(seq 1 "$n"); do on "$k" "$work/bin/counter" "$work/counter" "$inc" 2> "$work/counter.$k.err" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  touch "$work/stop-killing"; wait "$killer"
  for k in $(seq 1 "$n"); do lost=$((lost + $(grep -c "connection lost" "$work/n$k/udlmd.log"))); done
  local after; after=$(cat "$work"/n*/udlmd.log | grep -c "starts recovery generation")
  stop_nodes
  if [ $lost = 0 ]; then
    echo "SKIP $title (ss -K closed no connection: this kernel cannot destroy sockets)"; return 0
  fi
  echo "  ($lost connections lost in all)"
  local got; got=$(cat "$work/counter")
  [ "$got" = $((n * inc)) ] || { echo "  counter ended at $got, expected $((n * inc))"; rc=1; }
  [ "$after" = "$before" ] || { echo "  $((after - before)) recoveries started while the links were killed"; rc=1; }
  for k in $(seq 1 "$n"); do
    [ -s "$work/counter.$k.err" ] && { echo "  node $k's program wrote to stderr:"; sed 's/^/    /' "$work/counter.$k.err"; rc=1; }
  done
  result "$title" $rc
}

scenario_pair() { # name nodes prog args...
  local name=$1 n=$2 prog=$3; shift 3
  local rc=0 pids=()
  selected "$name" "$prog" || return 0
  rm -rf "$work/sync"; mkdir -p "$work/sync"
  start_nodes "$n" || { result "$name" 1; return; }
  for k in $(seq 1 "$n"); do on "$k" "$work/bin/$prog" "$@" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  stop_nodes
  result "$name" $rc
}

# Node 1 is the program itself (DLM_EMBEDDED=1: the node runs inside it and
# joins the cluster); the other nodes are daemons.
scenario_embedded() { # name nodes prog args...
  local name=$1 n=$2 prog=$3; shift 3
  local rc=0 pids=()
  selected "$name" "$prog embedded" || return 0
  rm -rf "$work/sync"; mkdir -p "$work/sync"
  FIRST_DAEMON=2 start_nodes "$n" || { result "$name" 1; return; }
  DLM_EMBEDDED=1 on 1 "$work/bin/$prog" "$@" & pids+=($!)
  for k in $(seq 2 "$n"); do on "$k" "$work/bin/$prog" "$@" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  stop_nodes
  result "$name" $rc
}

# An embedded node cannot take an address a udlmd already listens on: the
# program's first call fails with ENOTCONN and says why.
scenario_embedded_taken() {
  local rc=0
  selected "embedded node refused" "embedded" || return 0
  echo 0 > "$work/counter"
  start_nodes 2 || { result "embedded node refused" 1; return; }
  DLM_EMBEDDED=1 on 1 "$work/bin/counter" "$work/counter" 1 2> "$work/emb.err" && { echo "  the embedded node started on a taken address"; rc=1; }
  grep -q "embedded udlm node cannot start" "$work/emb.err" || { echo "  no reason given:"; sed 's/^/    /' "$work/emb.err"; rc=1; }
  grep -q "Transport endpoint is not connected" "$work/emb.err" || { echo "  not ENOTCONN:"; sed 's/^/    /' "$work/emb.err"; rc=1; }
  stop_nodes
  result "an embedded node refused where udlmd already runs that node: ENOTCONN, reason on stderr" $rc
}

# An embedded node says goodbye when its program exits: node 2 goes on at
# once instead of waiting out node 1's lease (3 s here).
scenario_embedded_exit() {
  local rc=0
  selected "embedded node leaves" "embedded" || return 0
  rm -rf "$work/sync"; mkdir -p "$work/sync"; echo 0 > "$work/counter"
  FIRST_DAEMON=2 start_nodes 2 || { result "embedded node leaves" 1; return; }
  DLM_EMBEDDED=1 on 1 "$work/bin/counter" "$work/counter" 5 2> "$work/emb.err" || { echo "  node 1:"; sed 's/^/    /' "$work/emb.err"; rc=1; }
  local t0 t1; t0=$(date +%s%N)
  on 2 "$work/bin/counter" "$work/counter" 5 || rc=1
  t1=$(date +%s%N)
  [ $(( (t1 - t0) / 1000000 )) -lt 1500 ] || { echo "  node 2 took $(( (t1 - t0) / 1000000 )) ms after node 1's program ended"; rc=1; }
  grep -q "node 1 is leaving" "$work/n2/udlmd.log" || { echo "  node 2 was not told that node 1 leaves"; rc=1; }
  [ "$(cat "$work/counter")" = 10 ] || { echo "  counter $(cat "$work/counter"), expected 10"; rc=1; }
  stop_nodes
  result "an embedded node leaves the cluster when its program exits: node 2 goes on without waiting out the lease" $rc
}

scenario_wrong_key() {
  local rc=0
  selected "wrong key" "key" || return 0
  port=$((port + 1))
  head -c 32 /dev/urandom > "$work/key1"; head -c 32 /dev/urandom > "$work/key2"
  write_config 2 "$work/key1" > "$work/dlm-k1.conf"
  write_config 2 "$work/key2" > "$work/dlm-k2.conf"
  for k in 1 2; do
    mkdir -p "$work/n$k"; : > "$work/n$k/udlmd.log"
    DLM_RUN_DIR=$work/n$k DLM_NODEID=$k DLM_CONF=$work/dlm-k$k.conf "$rel/udlmd" --daemonize || rc=1
  done
  sleep 2
  grep -qi "refus\|auth\|mac" "$work/n1/udlmd.log" "$work/n2/udlmd.log" || { echo "  no refusal logged"; rc=1; }
  grep -q "node 2 is up" "$work/n1/udlmd.log" && { echo "  node 1 accepted node 2 with the wrong key"; rc=1; }
  stop_nodes
  result "a peer with the wrong cluster key is refused" $rc
}

scenario_counter 3 500
scenario_counter 5 500
scenario_counter_links_killed 3 1000
scenario_pair "LVB written on node 1 is read on nodes 2 and 3, and back" 3 lvb 3
scenario_pair "BAST across nodes, NOQUEUE EAGAIN without BAST" 2 bast
scenario_pair "conversion deadlock across nodes: EDEADLK" 2 deadlock
EXTRA_CONF=$'lockspace name=* nodir=1\nmaster ls=* node=2' \
  scenario_pair "operations overlapping an in-flight remote request (EBUSY, FORCEUNLOCK, CANCEL)" 2 inflight
EXTRA_CONF=$'lockspace name=* nodir=1\nmaster ls=* node=2' \
  scenario_pair "orphans of a dead process, mastered on another node: adopt, purge" 2 orphan
EXTRA_CONF=deadlock_detect_ms=1000 \
  scenario_pair "deadlock cycle of 2 nodes broken: node 2 gets EDEADLK, node 1 is granted" 2 cycle 2
EXTRA_CONF=deadlock_detect_ms=1000 \
  scenario_pair "deadlock cycle of 3 nodes broken: node 3 gets EDEADLK, nodes 1 and 2 are granted" 3 cycle 3
EXTRA_CONF=deadlock_detect_ms=1000 \
  scenario_pair "deadlock cycle of conversions on 3 nodes: node 3's conversion gets EDEADLK, stays NL" 3 cycle 3 conv
scenario_pair "cross-node behaviour as on the kernel DLM (oracle-checked): NOQUEUE, BAST, LVB, conversion deadlock, CONVDEADLK, cancel, dead process, QUECVT" 2 xnode
scenario_pair "a lockspace left on the node that mastered a held lock: the other node is granted" 2 lsleave
scenario_pair "hierarchical lockspace with timeouts on 3 nodes: shared children, their LVB, ETIMEDOUT, queries" 3 tree
scenario_embedded "node 1 embedded in its program, node 2 a daemon: the cross-node behaviours (xnode)" 2 xnode
EXTRA_CONF=$'lockspace name=* nodir=1\nmaster ls=* node=2' \
  scenario_embedded "node 1 embedded, remote master: operations overlapping an in-flight request" 2 inflight
scenario_embedded_taken
scenario_embedded_exit
scenario_wrong_key

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
