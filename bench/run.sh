#!/usr/bin/env bash
# udlm benchmarks: one command, one table per section, printed as Markdown.
#
#   A. One host: the Unix-socket ping-pong floor beside lock+unlock latency
#      (lock_wait with the AST thread, and lock + poll + dlm_dispatch without
#      a thread), async throughput with 64 requests outstanding, and the EX
#      handover rate between two processes; daemon mode and embedded mode
#      (DLM_EMBEDDED=1) side by side.
#   B. Cluster on loopback (nodes on 127.0.0.1-3): TCP ping-pong floor,
#      remote lock+unlock with the master on the other node, pipelined
#      remote throughput, and network round trips of a first lock on a
#      fresh name with 3 nodes in directory mode.
#   With 2 or more CPUs, both sections also show the floors with the two
#   sides pinned to one CPU and to two CPUs, and a few lock figures with
#   every process pinned to CPU 0 (taskset): on VMs a wake-up across CPUs
#   can cost more than the rest of a round trip.
#
# usage: bench/run.sh [--section A|B]
# Knobs (environment): LIBDIR (default target/release), ITERS (20000),
# WARMUP (2000), ASYNC_SECS (3), HANDOVER_SECS (3), FIRST_COUNT (3000),
# DEPTH (64), REPEAT (3: each figure is the run with the median result
# of REPEAT runs; the table lists every run's value too), DLM_SPIN_US (what
# udlm's library and daemon poll before they sleep, default 50; the polling
# ping-pong does the same).
# Every udlmd it starts is stopped by pid on exit; the library is pointed at
# a DLM_DAEMON that refuses to start, so no untracked daemon can appear.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || { echo "run.sh: no library directory" >&2; exit 2; }
ITERS=${ITERS:-20000}
WARMUP=${WARMUP:-2000}
ASYNC_SECS=${ASYNC_SECS:-3}
HANDOVER_SECS=${HANDOVER_SECS:-3}
FIRST_COUNT=${FIRST_COUNT:-3000}
DEPTH=${DEPTH:-64}
REPEAT=${REPEAT:-3}
SPIN=${DLM_SPIN_US:-50}
SECTIONS="A B"
case "${1:-}" in
  --section) SECTIONS=${2:?--section needs A or B};;
  "") ;;
  -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
  *) echo "run.sh: unknown argument $1" >&2; exit 2;;
esac
for f in libdlm.so udlmd; do
  [ -e "$rel/$f" ] || { echo "run.sh: $rel/$f is missing (run make build)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/udlm-bench.XXXXXX")
daemons=()

stop_daemon() { # pid
  local pid=$1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q udlmd || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}
stop_all() {
  local p
  for p in "${daemons[@]}"; do stop_daemon "$p"; done
  daemons=()
}
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build
mkdir -p "$work/lib" "$work/bin"
ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
printf '#!/bin/sh\necho "bench: a library call tried to start udlmd" >&2\nexit 1\n' > "$work/bin/no-daemon"
chmod +x "$work/bin/no-daemon"
cc -O2 -Wall -Wextra -o "$work/bin/pingpong" "$top/bench/pingpong.c" || exit 1
cc -O2 -Wall -Wextra -I"$top/include" -o "$work/bin/lockbench" "$top/bench/lockbench.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1

# ---------------------------------------------------------------- helpers
# PIN: empty, or "taskset -c 0" to keep daemons and programs on CPU 0
PIN=
# start_node DIR CONF ID: start a udlmd, remember its pid
start_node() {
  local dir=$1 conf=$2 id=$3
  mkdir -p "$dir"
  if ! DLM_RUN_DIR=$dir DLM_NODEID=$id DLM_CONF=$conf $PIN "$rel/udlmd" --daemonize; then
    echo "run.sh: udlmd (node $id) did not start" >&2; cat "$dir/udlmd.log" >&2 2>/dev/null; return 1
  fi
  local pid; pid=$(tr -dc 0-9 < "$dir/udlmd.pid")
  [ -n "$pid" ] || { echo "run.sh: no pid file in $dir" >&2; return 1; }
  daemons+=("$pid")
}

# node_segs PID: "OUT IN", the TCP data segments the process has sent and
# received on its established connections (its links to the other nodes)
node_segs() {
  ss -tinpH state established 2>/dev/null | awk -v pid="pid=$1," '
    /users:/ { mine = index($0, pid) > 0; next }
    mine { for (i = 1; i <= NF; i++) { split($i, a, ":"); if (a[1] == "data_segs_out") o += a[2]; if (a[1] == "data_segs_in") n += a[2] } mine = 0 }
    END { print o + 0, n + 0 }'
}

# wait_peers DIR N: wait until the node's log says every other node is up
wait_peers() {
  local dir=$1 n=$2
  for _ in $(seq 1 100); do
    [ "$(grep -c 'is up' "$dir/udlmd.log" 2>/dev/null)" -ge $((n - 1)) ] && return 0
    sleep 0.1
  done
  echo "run.sh: peers of $dir did not come up" >&2; return 1
}

# on DIR CONF ID cmd...: run a program against that node (daemon mode)
on() {
  local dir=$1 conf=$2 id=$3; shift 3
  env -u DLM_EMBEDDED DLM_RUN_DIR="$dir" DLM_CONF="$conf" DLM_NODEID="$id" \
    DLM_DAEMON="$work/bin/no-daemon" LD_LIBRARY_PATH="$work/lib" $PIN timeout 300 "$@"
}

# embedded cmd...: run a program with the node inside it
embedded() {
  DLM_EMBEDDED=1 DLM_RUN_DIR="$work/emb" DLM_CONF="$work/one.conf" DLM_NODEID=1 \
    DLM_DAEMON="$work/bin/no-daemon" LD_LIBRARY_PATH="$work/lib" timeout 300 "$@"
}

# embedded_node CONF ID cmd...: run a program that is node ID of the
# cluster CONF itself (the node inside it joins the other nodes)
embedded_node() {
  local conf=$1 id=$2; shift 2
  DLM_EMBEDDED=1 DLM_RUN_DIR="$work/emb$id" DLM_CONF="$conf" DLM_NODEID="$id" \
    DLM_DAEMON="$work/bin/no-daemon" LD_LIBRARY_PATH="$work/lib" timeout 300 "$@"
}

# val FILE NAME KEY: the value of KEY on the "result NAME ..." line of FILE
val() {
  awk -v n="$2" -v k="$3" '$1 == "result" && $2 == n { for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }' "$1"
}
# calc EXPR: floating-point arithmetic
calc() { awk "BEGIN { printf \"%s\", $1 }" 2>/dev/null; }
fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "?"; else if (v + 0 >= 1000) printf "%.0f", v; else printf "%.1f", v }'; }
fmt2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
fmt3() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }
lat() { echo "$(fmt "$(val "$1" "$2" p50)") / $(fmt "$(val "$1" "$2" p99)") µs"; }
verdict() { # condition-as-awk-expr
  if [ "$(awk "BEGIN { print ($1) ? 1 : 0 }" 2>/dev/null)" = 1 ]; then echo "**met**"; else echo "**not met**"; fi
}
# run LABEL OUT NAME:KEY cmd...: run one benchmark REPEAT times; OUT gets the
# run whose NAME KEY is the median, OUT.runs the sorted values of all runs.
run() {
  local label=$1 out=$2 metric=$3; shift 3
  local i vals=()
  for i in $(seq 1 "$REPEAT"); do
    echo "  ... $label (run $i of $REPEAT)" >&2
    if ! "$@" > "$out.$i" 2> "$out.$i.err"; then
      echo "run.sh: $label failed:" >&2; cat "$out.$i.err" >&2; exit 1
    fi
    vals+=("$(val "$out.$i" "${metric%%:*}" "${metric#*:}") $i")
  done
  local sorted; sorted=$(printf '%s\n' "${vals[@]}" | sort -g)
  local pick; pick=$(echo "$sorted" | sed -n "$(( (REPEAT + 1) / 2 ))p" | cut -d' ' -f2)
  cp "$out.$pick" "$out"
  echo "$sorted" | cut -d' ' -f1 | paste -sd' ' > "$out.runs"
}
# runs OUT: "a, b, c" (the values of every run) when REPEAT > 1
runs() { [ "$REPEAT" -gt 1 ] && echo " (runs: $(fmt_list "$(cat "$1.runs")"))"; }
fmt_list() { local v out=(); for v in $1; do out+=("$(fmt "$v")"); done; local IFS=,; echo "${out[*]}" | sed 's/,/, /g'; }

echo "# udlm benchmarks"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- commit: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$top" diff --quiet HEAD -- src compat 2>/dev/null || echo ' (src/compat modified)')"
echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- iterations: sync $ITERS after $WARMUP warm-up; async ${ASYNC_SECS}s after 0.5s warm-up, depth $DEPTH; handover ${HANDOVER_SECS}s; first locks $FIRST_COUNT names"

printf 'cluster_name=bench\n' > "$work/one.conf"

# ================================================================ A
if [[ $SECTIONS == *A* ]]; then
  echo "Section A: one host" >&2
  d=$work/local
  start_node "$d" "$work/one.conf" 1 || exit 1
  run "unix ping-pong" "$work/a_rtt" rtt_unix:p50 "$work/bin/pingpong" unix "$ITERS" "$WARMUP"
  # The floor for a library and daemon that poll before they sleep
  # (DLM_SPIN_US, src/sys.rs recv_spin): a ping-pong that does the same.
  SPIN_US=$SPIN run "unix ping-pong, polling" "$work/a_rtt_spin" rtt_unix_spin:p50 "$work/bin/pingpong" unix "$ITERS" "$WARMUP"
  run "daemon sync-wait" "$work/a_dw" sync_wait:p50 on "$d" "$work/one.conf" 1 "$work/bin/lockbench" sync-wait "$ITERS" "$WARMUP"
  run "daemon sync-poll" "$work/a_dp" sync_poll:p50 on "$d" "$work/one.conf" 1 "$work/bin/lockbench" sync-poll "$ITERS" "$WARMUP"
  run "embedded sync-wait" "$work/a_ew" sync_wait:p50 embedded "$work/bin/lockbench" sync-wait "$ITERS" "$WARMUP"
  run "embedded sync-poll" "$work/a_ep" sync_poll:p50 embedded "$work/bin/lockbench" sync-poll "$ITERS" "$WARMUP"
  run "daemon async" "$work/a_da" async:pairs_per_s on "$d" "$work/one.conf" 1 "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
  run "embedded async" "$work/a_ea" async:pairs_per_s embedded "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
  run "daemon handover" "$work/a_ho" handover:grants_per_s on "$d" "$work/one.conf" 1 "$work/bin/lockbench" handover "$HANDOVER_SECS"
  stop_all
  if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
    # Where the CPUs matter: the same figures with both sides on one CPU,
    # and the floor with the two sides on different CPUs.
    PIN_CLIENT=0 PIN_SERVER=0 run "unix ping-pong, one CPU" "$work/a_rtt_same" rtt_unix:p50 "$work/bin/pingpong" unix "$ITERS" "$WARMUP"
    PIN_CLIENT=0 PIN_SERVER=1 run "unix ping-pong, two CPUs" "$work/a_rtt_cross" rtt_unix:p50 "$work/bin/pingpong" unix "$ITERS" "$WARMUP"
    PIN="taskset -c 0"
    start_node "$work/local-pinned" "$work/one.conf" 1 || exit 1
    run "daemon sync-poll, one CPU" "$work/a_dp1" sync_poll:p50 on "$work/local-pinned" "$work/one.conf" 1 "$work/bin/lockbench" sync-poll "$ITERS" "$WARMUP"
    run "daemon sync-wait, one CPU" "$work/a_dw1" sync_wait:p50 on "$work/local-pinned" "$work/one.conf" 1 "$work/bin/lockbench" sync-wait "$ITERS" "$WARMUP"
    stop_all
    PIN=
  fi

  rtt=$(val "$work/a_rtt" rtt_unix p50)
  rtt_spin=$(val "$work/a_rtt_spin" rtt_unix_spin p50)
  echo
  echo "## A. One host"
  echo
  echo "| figure | daemon mode | embedded mode |"
  echo "|---|---|---|"
  echo "| Unix SOCK_SEQPACKET ping-pong RTT between two processes, p50 / p99 (the floor) | $(lat "$work/a_rtt" rtt_unix)$(runs "$work/a_rtt") | — |"
  echo "| the same, each side polling up to $SPIN µs before it sleeps, as udlm's library and daemon do (\`DLM_SPIN_US\`), p50 / p99 (the like-for-like floor) | $(lat "$work/a_rtt_spin" rtt_unix_spin)$(runs "$work/a_rtt_spin") | — |"
  echo "| sync EX lock+unlock, \`dlm_ls_lock_wait\` + \`dlm_ls_unlock_wait\` with \`dlm_ls_pthread_init\`, p50 / p99 | $(lat "$work/a_dw" sync_wait)$(runs "$work/a_dw") | $(lat "$work/a_ew" sync_wait)$(runs "$work/a_ew") |"
  echo "| &nbsp;&nbsp;of which the lock, p50 | $(fmt "$(val "$work/a_dw" sync_wait_lock p50)") µs | $(fmt "$(val "$work/a_ew" sync_wait_lock p50)") µs |"
  echo "| sync EX lock+unlock, \`dlm_ls_lock\` + poll + \`dlm_dispatch\`, no thread, p50 / p99 | $(lat "$work/a_dp" sync_poll)$(runs "$work/a_dp") | $(lat "$work/a_ep" sync_poll)$(runs "$work/a_ep") |"
  echo "| &nbsp;&nbsp;of which the lock, p50 | $(fmt "$(val "$work/a_dp" sync_poll_lock p50)") µs | $(fmt "$(val "$work/a_ep" sync_poll_lock p50)") µs |"
  if [ -f "$work/a_dp1" ]; then
    echo "| ping-pong RTT with both processes pinned to one CPU / to two different CPUs, p50 | $(fmt "$(val "$work/a_rtt_same" rtt_unix p50)") / $(fmt "$(val "$work/a_rtt_cross" rtt_unix p50)") µs | — |"
    echo "| sync lock+unlock with the daemon and the program pinned to CPU 0: lock_wait / poll+dispatch, p50 | $(fmt "$(val "$work/a_dw1" sync_wait p50)") / $(fmt "$(val "$work/a_dp1" sync_poll p50)") µs | — |"
  fi
  echo "| async lock+unlock pairs/s, $DEPTH outstanding, \`dlm_dispatch\` on the fd | $(fmt "$(val "$work/a_da" async pairs_per_s)")$(runs "$work/a_da") | $(fmt "$(val "$work/a_ea" async pairs_per_s)")$(runs "$work/a_ea") |"
  echo "| EX handover between two processes (lock_wait + unlock_wait loops, BAST routine): grants/s | $(fmt "$(val "$work/a_ho" handover grants_per_s)")$(runs "$work/a_ho") | — (one process only) |"
  echo "| &nbsp;&nbsp;the lock changed hands: times (per s) of grants | $(val "$work/a_ho" handover changes) ($(fmt "$(val "$work/a_ho" handover changes_per_s)")/s) of $(val "$work/a_ho" handover grants); BASTs: $(val "$work/a_ho" handover basts) | — |"
  echo
  echo "| target | measured | verdict |"
  echo "|---|---|---|"
  for v in dw:sync_wait:lock_wait dp:sync_poll:poll+dispatch; do
    IFS=: read -r f n label <<< "$v"
    p=$(val "$work/a_$f" "$n" p50)
    echo "| daemon sync lock+unlock p50 ≤ 2.5 × ping-pong RTT ($(fmt "$(calc "2.5 * $rtt")") µs), $label | $(fmt "$p") µs = $(calc "$p / $rtt" | awk '{printf "%.2f", $1}') × RTT | $(verdict "$p <= 2.5 * $rtt") |"
    echo "| the same against the polling ping-pong ($(fmt "$(calc "2.5 * $rtt_spin")") µs), $label | $(fmt "$p") µs = $(calc "$p / $rtt_spin" | awk '{printf "%.2f", $1}') × RTT | $(verdict "$p <= 2.5 * $rtt_spin") |"
  done
  for v in ew:sync_wait:lock_wait ep:sync_poll:poll+dispatch; do
    IFS=: read -r f n label <<< "$v"
    p=$(val "$work/a_$f" "$n" p50)
    echo "| embedded sync lock+unlock p50 ≤ 2 µs, $label | $(fmt "$p") µs | $(verdict "$p <= 2") |"
  done
  for v in da:daemon ea:embedded; do
    IFS=: read -r f label <<< "$v"
    r=$(val "$work/a_$f" async pairs_per_s)
    echo "| ≥ 300,000 async lock+unlock pairs/s, $label | $(fmt "$r") | $(verdict "$r >= 300000") |"
  done
fi

# ================================================================ B
if [[ $SECTIONS == *B* ]]; then
  echo "Section B: cluster on loopback" >&2
  port=$((20000 + RANDOM % 20000))
  # Two nodes; every resource of every lockspace mastered on node 2.
  cat > "$work/remote.conf" <<CONF
cluster_name=bench_remote
node id=1 addr=127.0.0.1 port=$port
node id=2 addr=127.0.0.2 port=$port
lockspace name=* nodir=1
master ls=* node=2
CONF
  start_node "$work/r1" "$work/remote.conf" 1 || exit 1
  start_node "$work/r2" "$work/remote.conf" 2 || exit 1
  wait_peers "$work/r1" 2 || exit 1
  run "tcp ping-pong" "$work/b_rtt" rtt_tcp:p50 "$work/bin/pingpong" tcp "$ITERS" "$WARMUP" 127.0.0.2 127.0.0.1
  run "remote sync-wait" "$work/b_rw" sync_wait:p50 on "$work/r1" "$work/remote.conf" 1 "$work/bin/lockbench" sync-wait "$ITERS" "$WARMUP"
  run "remote sync-poll" "$work/b_rp" sync_poll:p50 on "$work/r1" "$work/remote.conf" 1 "$work/bin/lockbench" sync-poll "$ITERS" "$WARMUP"
  run "remote async" "$work/b_ra" async:pairs_per_s on "$work/r1" "$work/remote.conf" 1 "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
  stop_all
  # The same two nodes with node 1 inside the program (DLM_EMBEDDED=1):
  # no local socket hop between the program and its node.
  port=$((port + 1))
  sed "s/port=[0-9]*/port=$port/" "$work/remote.conf" > "$work/remote-emb.conf"
  start_node "$work/e2" "$work/remote-emb.conf" 2 || exit 1
  run "remote sync-poll, node 1 embedded" "$work/b_erp" sync_poll:p50 embedded_node "$work/remote-emb.conf" 1 "$work/bin/lockbench" sync-poll "$ITERS" "$WARMUP"
  run "remote async, node 1 embedded" "$work/b_era" async:pairs_per_s embedded_node "$work/remote-emb.conf" 1 "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
  stop_all
  if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
    PIN_CLIENT=0 PIN_SERVER=0 run "tcp ping-pong, one CPU" "$work/b_rtt_same" rtt_tcp:p50 "$work/bin/pingpong" tcp "$ITERS" "$WARMUP" 127.0.0.2 127.0.0.1
    PIN_CLIENT=0 PIN_SERVER=1 run "tcp ping-pong, two CPUs" "$work/b_rtt_cross" rtt_tcp:p50 "$work/bin/pingpong" tcp "$ITERS" "$WARMUP" 127.0.0.2 127.0.0.1
    PIN="taskset -c 0"
    port=$((port + 1))
    sed "s/port=[0-9]*/port=$port/" "$work/remote.conf" > "$work/remote-pinned.conf"
    start_node "$work/p1" "$work/remote-pinned.conf" 1 || exit 1
    start_node "$work/p2" "$work/remote-pinned.conf" 2 || exit 1
    wait_peers "$work/p1" 2 || exit 1
    run "remote sync-poll, one CPU" "$work/b_rp1" sync_poll:p50 on "$work/p1" "$work/remote-pinned.conf" 1 "$work/bin/lockbench" sync-poll "$ITERS" "$WARMUP"
    run "remote async, one CPU" "$work/b_ra1" async:pairs_per_s on "$work/p1" "$work/remote-pinned.conf" 1 "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
    stop_all
    PIN=
  fi

  # Three nodes, default config: directory mode.
  port=$((port + 1))
  cat > "$work/three.conf" <<CONF
cluster_name=bench_three
node id=1 addr=127.0.0.1 port=$port
node id=2 addr=127.0.0.2 port=$port
node id=3 addr=127.0.0.3 port=$port
CONF
  for k in 1 2 3; do start_node "$work/t$k" "$work/three.conf" $k || exit 1; done
  wait_peers "$work/t1" 3 || exit 1
  read -r segs_out0 segs_in0 <<< "$(node_segs "${daemons[0]}")"
  run "first locks" "$work/b_first" first_all:mean on "$work/t1" "$work/three.conf" 1 "$work/bin/lockbench" first "$FIRST_COUNT" 3
  read -r segs_out1 segs_in1 <<< "$(node_segs "${daemons[0]}")"
  fresh=0
  for i in $(seq 1 "$REPEAT"); do fresh=$((fresh + $(awk '$2 == "first_count" { for (i = 3; i <= NF; i++) if ($i ~ /^fresh=/) { sub("fresh=", "", $i); print $i } }' "$work/b_first.$i"))); done
  stop_all

  trtt=$(val "$work/b_rtt" rtt_tcp p50)
  f=$work/b_first
  nself=$(awk '$2 == "first_count" { split($3, a, "="); print a[2] }' "$f")
  nother=$(awk '$2 == "first_count" { split($4, a, "="); print a[2] }' "$f")
  share=$(calc "$nother / ($nself + $nother)")
  ps=$(val "$f" first_self p50); po=$(val "$f" first_other p50)
  ms=$(val "$f" first_self mean); ma=$(val "$f" first_all mean)
  trips=$(calc "$share * ($po - $ps) / $trtt")
  trips_mean=$(calc "($ma - $ms) / $trtt")
  # One udlm network round trip, measured: a remote lock (B1, master known,
  # poll variant) minus a local first lock of the same cluster setup.
  unit=$(calc "$(val "$work/b_rp" sync_poll_lock p50) - $ps")
  trips_udlm=$(calc "$share * ($po - $ps) / $unit")
  wire_out=$(calc "($segs_out1 - $segs_out0) / $fresh")
  wire_in=$(calc "($segs_in1 - $segs_in0) / $fresh")
  echo
  echo "## B. Cluster (nodes on 127.0.0.1-3, one machine)"
  echo
  echo "| figure | measured |"
  echo "|---|---|"
  echo "| TCP loopback ping-pong RTT (127.0.0.1 → 127.0.0.2, TCP_NODELAY, 64 B), p50 / p99 (the floor) | $(lat "$work/b_rtt" rtt_tcp)$(runs "$work/b_rtt") |"
  echo "| B1 remote EX lock+unlock from node 1, master node 2 (\`nodir=1\`, \`master ls=* node=2\`), lock_wait + AST thread, p50 / p99 | $(lat "$work/b_rw" sync_wait)$(runs "$work/b_rw") |"
  echo "| &nbsp;&nbsp;of which the lock, p50 | $(fmt "$(val "$work/b_rw" sync_wait_lock p50)") µs |"
  echo "| B1 the same, lock + poll + \`dlm_dispatch\`, p50 / p99 | $(lat "$work/b_rp" sync_poll)$(runs "$work/b_rp") |"
  echo "| &nbsp;&nbsp;of which the lock, p50 | $(fmt "$(val "$work/b_rp" sync_poll_lock p50)") µs |"
  if [ -f "$work/b_rp1" ]; then
    echo "| TCP ping-pong RTT with both processes pinned to one CPU / to two different CPUs, p50 | $(fmt "$(val "$work/b_rtt_same" rtt_tcp p50)") / $(fmt "$(val "$work/b_rtt_cross" rtt_tcp p50)") µs |"
    echo "| B1 with both nodes and the program pinned to CPU 0, poll + \`dlm_dispatch\`, p50 / p99 | $(lat "$work/b_rp1" sync_poll)$(runs "$work/b_rp1") |"
  fi
  echo "| B2 pipelined remote lock+unlock pairs/s, $DEPTH outstanding, node 1 → master node 2 | $(fmt "$(val "$work/b_ra" async pairs_per_s)")$(runs "$work/b_ra") |"
  [ -f "$work/b_ra1" ] && echo "| B2 with both nodes and the program pinned to CPU 0 | $(fmt "$(val "$work/b_ra1" async pairs_per_s)")$(runs "$work/b_ra1") |"
  echo "| B1e remote lock+unlock with node 1 embedded in the program (\`DLM_EMBEDDED=1\`), master node 2, poll + \`dlm_dispatch\`, p50 / p99 | $(lat "$work/b_erp" sync_poll)$(runs "$work/b_erp") |"
  echo "| B2e pipelined remote lock+unlock pairs/s, node 1 embedded in the program → master node 2 (daemon), $DEPTH outstanding | $(fmt "$(val "$work/b_era" async pairs_per_s)")$(runs "$work/b_era") |"
  echo "| B3 first EX lock on a fresh name, 3 nodes, directory mode, from node 1: names whose directory is node 1 ($nself), p50 / p99 | $(lat "$f" first_self) |"
  echo "| &nbsp;&nbsp;names whose directory is node 2 or 3 ($nother), p50 / p99 | $(lat "$f" first_other) |"
  echo "| &nbsp;&nbsp;all names, p50 / mean | $(fmt "$(val "$f" first_all p50)") / $(fmt "$ma") µs; mean of each run: $(fmt_list "$(cat "$f.runs")") µs |"
  echo "| &nbsp;&nbsp;second lock on the same names (the asker mastered each one), p50 / p99 | $(lat "$f" second_all) |"
  echo "| B3 protocol count: share of names with a remote directory × 1 lookup + 0 (asker becomes master) | $(fmt3 "$share") round trips (expected 2/3) |"
  echo "| B3 counted on the wire: TCP data segments node 1 sent / received on its links to nodes 2 and 3, per fresh name ($fresh first locks incl. warm-up; the second locks of the same names add none when the asker is master) | $(fmt3 "$wire_out") / $(fmt3 "$wire_in") |"
  echo "| B3 latency in raw TCP round trips: share remote × (p50 remote-directory − p50 local-directory) / TCP RTT p50 | $(fmt2 "$trips") |"
  echo "| &nbsp;&nbsp;the same from means: (mean all − mean local-directory) / TCP RTT p50 | $(fmt2 "$trips_mean") |"
  echo "| B3 latency in udlm remote round trips: share remote × (p50 remote-directory − p50 local-directory) / (B1 remote lock p50 − p50 local-directory) | $(fmt2 "$trips_udlm") |"
  echo
  echo "| target | measured | verdict |"
  echo "|---|---|---|"
  for v in rw:sync_wait:lock_wait rp:sync_poll:poll+dispatch; do
    IFS=: read -r fl n label <<< "$v"
    p=$(val "$work/b_$fl" "$n" p50)
    echo "| remote lock+unlock p50 ≤ 2.5 × TCP RTT ($(fmt "$(calc "2.5 * $trtt")") µs), $label | $(fmt "$p") µs = $(calc "$p / $trtt" | awk '{printf "%.2f", $1}') × RTT | $(verdict "$p <= 2.5 * $trtt") |"
  done
  r=$(val "$work/b_ra" async pairs_per_s)
  echo "| ≥ 100,000 pipelined remote pairs/s, program on node 1's daemon | $(fmt "$r") | $(verdict "$r >= 100000") |"
  r=$(val "$work/b_era" async pairs_per_s)
  echo "| ≥ 100,000 pipelined remote pairs/s, node 1 embedded in the program | $(fmt "$r") | $(verdict "$r >= 100000") |"
  echo "| ≤ 1.4 network round trips per first lock (3 nodes), counted on the wire (data segments sent by node 1 per first lock) | $(fmt2 "$wire_out") (protocol: $(fmt2 "$share")) | $(verdict "$wire_out <= 1.4") |"
  echo "| ≤ 1.4 network round trips per first lock, from latency in raw TCP round trips | $(fmt2 "$trips") | $(verdict "$trips <= 1.4") |"
fi
