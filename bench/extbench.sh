#!/usr/bin/env bash
# Figures for udlm's extensions (include/udlm.h) on one node, as a Markdown
# table: the cost of a lock inside a tree against a top-level lock (daemon
# and embedded), and the delay from a deadlock cycle closing to its
# victim's EDEADLK with deadlock_detect_ms at 1000 and 200.
# usage: bench/extbench.sh   knobs: LIBDIR, ITERS (20000), ROUNDS (5)
# The cycle delay across 2 and 3 nodes is printed by cluster-tests/run.sh.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || { echo "extbench.sh: no library directory" >&2; exit 2; }
ITERS=${ITERS:-20000}
ROUNDS=${ROUNDS:-5}
work=$(mktemp -d)
trap 'for p in "$work"/run*/udlmd.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; rm -rf "$work"' EXIT
mkdir -p "$work/lib"
ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
cc -O2 -Wall -I"$top/include" -o "$work/extbench" "$top/bench/extbench.c" -L"$work/lib" -l:libdlm.so.3 || exit 1
run() { # run-dir detect-ms args... (daemon mode, a node of its own)
  local dir=$work/$1 ms=$2; shift 2
  mkdir -p "$dir"
  DLM_RUN_DIR=$dir UDLM_DEADLOCK_DETECT_MS=$ms DLM_DAEMON=$rel/udlmd LD_LIBRARY_PATH=$work/lib "$work/extbench" "$@"
}
field() { sed -n "s/^result $1 .*$2=\([0-9.]*\).*/\1/p"; }
echo "| figure | p50 | p99 |"
echo "|---|---|---|"
out=$(run run-tree 5000 tree "$ITERS") || exit 1
emb=$(DLM_EMBEDDED=1 UDLM_DEADLOCK_DETECT_MS=5000 LD_LIBRARY_PATH=$work/lib "$work/extbench" tree "$ITERS") || exit 1
for v in top depth1 depth3; do
  echo "| EX lock+unlock, $v, daemon (poll + dlm_dispatch) | $(echo "$out" | field tree_$v p50) µs | $(echo "$out" | field tree_$v p99) µs |"
  echo "| EX lock+unlock, $v, embedded | $(echo "$emb" | field tree_$v p50) µs | $(echo "$emb" | field tree_$v p99) µs |"
done
for ms in 1000 200; do
  c=$(run "run-cycle-$ms" "$ms" cycle "$ROUNDS") || exit 1
  echo "| two-handle cycle closed → EDEADLK, deadlock_detect_ms=$ms ($ROUNDS rounds) | $(echo "$c" | field cycle_broken p50 | awk '{printf "%.0f", $1/1000}') ms | max $(echo "$c" | field cycle_broken p99 | awk '{printf "%.0f", $1/1000}') ms |"
done
