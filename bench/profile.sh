#!/usr/bin/env bash
# Where the time of a lock+unlock pair goes: CPU time, context switches and
# system calls per pair, for the program and for each node daemon, counted
# with `perf stat` (task-clock, context-switches, raw_syscalls:sys_enter).
# Counts do not depend on the machine's load the way latencies do, so this
# explains the figures of bench/run.sh. Not part of `make bench`.
#
# usage: bench/profile.sh      (needs perf and root or perf_event_paranoid <= 1)
# Knobs: LIBDIR, ITERS (20000), ASYNC_SECS (2), DEPTH (64).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || exit 2
ITERS=${ITERS:-20000}
ASYNC_SECS=${ASYNC_SECS:-2}
DEPTH=${DEPTH:-64}
command -v perf > /dev/null || { echo "profile.sh: perf is not installed" >&2; exit 2; }
perf stat -e raw_syscalls:sys_enter true > /dev/null 2>&1 || { echo "profile.sh: perf cannot count system calls here" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/udlm-profile.XXXXXX")
daemons=()
stop_all() {
  local p
  for p in "${daemons[@]}"; do
    tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q udlmd || continue
    kill "$p" 2>/dev/null
    for _ in $(seq 1 25); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  daemons=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/lib" "$work/bin"
ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
printf '#!/bin/sh\nexit 1\n' > "$work/bin/no-daemon"; chmod +x "$work/bin/no-daemon"
cc -O2 -Wall -I"$top/include" -o "$work/bin/lockbench" "$top/bench/lockbench.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1

start_node() { # dir conf id
  mkdir -p "$1"
  DLM_RUN_DIR=$1 DLM_CONF=$2 DLM_NODEID=$3 "$rel/udlmd" --daemonize || exit 1
  daemons+=("$(tr -dc 0-9 < "$1/udlmd.pid")")
}
# Two passes per scenario: CPU time and context switches (software counters,
# nearly free), then system calls (a tracepoint, which slows every call, so
# its pass is not used for CPU time).
# counts FILE -> "cpu_ms ctxsw syscalls"
counts() {
  awk -F, '$3 ~ /task-clock/ { c = $1 } $3 ~ /context-switches/ { s = $1 } $3 ~ /sys_enter/ { y = $1 } END { print c + 0, s + 0, y + 0 }' "$1"
}
# one_pass EVENTS TAG CMD...: counts for the program and each daemon
one_pass() {
  local ev=$1 tag=$2; shift 2
  local p i=0 perfs=()
  for p in "${daemons[@]}"; do
    perf stat -x, -e "$ev" -p "$p" -o "$work/$tag.d$i.stat" & perfs+=($!)
    i=$((i + 1))
  done
  sleep 0.3
  perf stat -x, -e "$ev" -o "$work/$tag.c.stat" "$@" > "$work/$tag.out" 2> "$work/$tag.err" || { cat "$work/$tag.err" >&2; exit 1; }
  for p in "${perfs[@]}"; do kill -INT "$p"; wait "$p" 2>/dev/null; done
}
# per TAG-FILE PAIRS-CPU PAIRS-SYS: "CPU µs, ctx switches, syscalls" per pair
per() {
  read -r c s _ <<< "$(counts "$work/cpu.$1.stat")"
  read -r _ _ y <<< "$(counts "$work/sys.$1.stat")"
  awk -v c="$c" -v s="$s" -v y="$y" -v n="$2" -v m="$3" 'BEGIN { printf "%.1f µs, %.2f, %.1f", c * 1000 / n, s / n, y / m }'
}
pairs_of() { # TAG EXPECTED
  if [ "$2" = async ]; then
    awk '$2 == "async" { for (i = 3; i <= NF; i++) if ($i ~ /^total_pairs=/) { sub("total_pairs=", "", $i); print $i } }' "$work/$1.out"
  else
    echo "$2"
  fi
}
# measure LABEL PAIRS CMD...: PAIRS is a number, or "async" (read from the output)
measure() {
  local label=$1 pairs=$2; shift 2
  one_pass task-clock,context-switches cpu "$@"
  one_pass raw_syscalls:sys_enter sys "$@"
  local n1 n2 j nodes=""
  n1=$(pairs_of cpu "$pairs"); n2=$(pairs_of sys "$pairs")
  for ((j = 0; j < ${#daemons[@]}; j++)); do
    nodes+="$( [ $j -gt 0 ] && echo ' + ')$(per d$j "$n1" "$n2")"
  done
  echo "| $label | $n1 | $(per c "$n1" "$n2") | ${nodes:-—} |"
}

printf 'cluster_name=bench\n' > "$work/one.conf"
# perf runs a program, not a shell function: the environment goes through env
on() { local d=$1 c=$2 k=$3; echo env -u DLM_EMBEDDED DLM_RUN_DIR="$d" DLM_CONF="$c" DLM_NODEID="$k" DLM_DAEMON="$work/bin/no-daemon" LD_LIBRARY_PATH="$work/lib"; }
emb() { echo env DLM_EMBEDDED=1 DLM_RUN_DIR="$work/emb" DLM_CONF="$work/one.conf" DLM_DAEMON="$work/bin/no-daemon" LD_LIBRARY_PATH="$work/lib"; }

echo "Per lock+unlock pair: CPU time, context switches, system calls ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| scenario | pairs | program: CPU, ctx switches, syscalls | node daemon(s): CPU, ctx switches, syscalls |"
echo "|---|---|---|---|"
start_node "$work/n" "$work/one.conf" 1
measure "daemon, lock_wait + AST thread" "$ITERS" $(on "$work/n" "$work/one.conf" 1) "$work/bin/lockbench" sync-wait "$ITERS" 0
measure "daemon, lock + poll + dispatch" "$ITERS" $(on "$work/n" "$work/one.conf" 1) "$work/bin/lockbench" sync-poll "$ITERS" 0
measure "daemon, async, $DEPTH outstanding" async $(on "$work/n" "$work/one.conf" 1) "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
stop_all
measure "embedded, lock_wait + AST thread" "$ITERS" $(emb) "$work/bin/lockbench" sync-wait "$ITERS" 0
measure "embedded, lock + poll + dispatch" "$ITERS" $(emb) "$work/bin/lockbench" sync-poll "$ITERS" 0
measure "embedded, async, $DEPTH outstanding" async $(emb) "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
port=$((20000 + RANDOM % 20000))
cat > "$work/remote.conf" <<CONF
cluster_name=bench_profile
node id=1 addr=127.0.0.1 port=$port
node id=2 addr=127.0.0.2 port=$port
lockspace name=* nodir=1
master ls=* node=2
CONF
start_node "$work/r1" "$work/remote.conf" 1
start_node "$work/r2" "$work/remote.conf" 2
for _ in $(seq 1 100); do grep -q 'is up' "$work/r1/udlmd.log" 2>/dev/null && break; sleep 0.1; done
measure "remote (node 1 → master node 2), lock + poll + dispatch" "$((ITERS / 4))" $(on "$work/r1" "$work/remote.conf" 1) "$work/bin/lockbench" sync-poll "$((ITERS / 4))" 0
measure "remote, async, $DEPTH outstanding" async $(on "$work/r1" "$work/remote.conf" 1) "$work/bin/lockbench" async "$ASYNC_SECS" "$DEPTH"
stop_all
