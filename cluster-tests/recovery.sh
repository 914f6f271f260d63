#!/usr/bin/env bash
# Node-failure recovery on one machine. Nodes as in run.sh: each a
# `udlmd --daemonize` with its own DLM_RUN_DIR and DLM_NODEID on 127.0.0.<id>,
# one shared dlm.conf (with lease_ms); the programs (recover.c, roles described
# at its top) are built against include/libdlm.h and run with udlm's
# libdlm.so.3 first in LD_LIBRARY_PATH.
#
# One "kill event" per cluster size (3 nodes, then 5): every check's program
# starts on its nodes and marks itself ready; then node V is SIGKILLed (its
# udlmd, then every program on it), the survivors' checks are judged, node V
# is restarted and all nodes count under EX in a lockspace the survivors kept
# open. Before that: a self-test of the mutual-exclusion checker and a control
# run of the M loop with no kill.
#
# Prints one "PASS name" / "FAIL name" line per scenario (details indented
# below a failure) and "N passed, N failed"; exits non-zero on any failure.
#
# Environment:
#   LIBDIR                where udlmd, udlm and libdlm.so are (target/release);
#                         they are copied first, so a rebuild during the run
#                         does not mix versions
#   RECOVERY_DEADLINE_MS  how long after the kill a waiting request may take
#                         (default lease_ms + 6000)
#   VERBOSE=1             every program's output and the node logs, also on PASS
#   KEEP=1                keep the work directory
#   NO_LEASE=1            leave lease_ms out of dlm.conf (to try the harness on
#                         a build that does not know the key yet)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || exit 1
work=$(mktemp -d)
pass=0 fail=0
port=$((20000 + RANDOM % 20000))
lease_ms=1000
deadline_ms=${RECOVERY_DEADLINE_MS:-$((lease_ms + 6000))}
declare -A P   # "check,node" -> pid of the subshell running the program
bgpids=()      # every background program started
evno=0
ev_failed=0

# is_proc PID COMM: PID is a live (not zombie) process named COMM
is_proc() {
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

daemon_pids() { cat "$work/daemons" "$work"/ev*/n*/udlmd.pid 2>/dev/null | sort -u; }

# kill_programs DIR: every program registered in DIR's sync dir, by pid
kill_programs() {
  local f p
  for f in "$1"/sync/pids/*/*; do
    [ -e "$f" ] || continue
    p=${f##*/}
    is_proc "$p" recover && kill -KILL "$p" 2>/dev/null
  done
}

cleanup() {
  local p d
  for p in "${bgpids[@]}"; do is_proc "$p" bash && kill "$p" 2>/dev/null; done
  for d in "$work"/ev*; do [ -d "$d" ] && kill_programs "$d"; done
  for p in $(daemon_pids); do is_proc "$p" udlmd && kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in $(daemon_pids); do is_proc "$p" udlmd && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/lib" "$work/bin"
for f in udlmd udlm libdlm.so; do
  [ -f "$rel/$f" ] || { echo "no $rel/$f: build first (cargo build --release --workspace)"; exit 1; }
done
cp "$rel/libdlm.so" "$work/lib/libdlm.so.3" && cp "$rel/udlmd" "$rel/udlm" "$work/bin/" || exit 1
cc -O1 -g -Wall -I"$top/include" -o "$work/bin/recover" "$top/cluster-tests/recover.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1
cc -O1 -g -Wall -o "$work/bin/mutex_check" "$top/cluster-tests/mutex_check.c" || exit 1
bin=$work/bin/recover

result() { # name rc
  if [ "$2" = 0 ]; then echo "PASS $1"; pass=$((pass+1)); else echo "FAIL $1"; fail=$((fail+1)); ev_failed=1; fi
}

indent() { sed 's/^/    /'; }

write_config() { # nodes
  echo "cluster_name=udlmtest"
  echo "heartbeat_ms=200"
  echo "peer_timeout_ms=1000"
  [ -z "${NO_LEASE:-}" ] && echo "lease_ms=$lease_ms"
  for k in $(seq 1 "$1"); do echo "node id=$k addr=127.0.0.$k port=$port"; done
  true
}

start_node() { # dir k
  local dir=$1 k=$2
  mkdir -p "$dir/n$k"
  if ! DLM_RUN_DIR=$dir/n$k DLM_NODEID=$k DLM_CONF=$dir/dlm.conf timeout 10 "$work/bin/udlmd" --daemonize; then
    echo "  node $k did not start:"; tail -5 "$dir/n$k/udlmd.log" 2>/dev/null | indent
    return 1
  fi
  cat "$dir/n$k/udlmd.pid" >> "$work/daemons"
}

new_event() { # -> sets dir; makes its directories and config for N nodes
  evno=$((evno + 1)); ev_failed=0
  dir=$work/ev$evno
  mkdir -p "$dir/sync" "$dir/out"
  for k in $(seq 1 "$1"); do mkdir -p "$dir/sync/pids/$k"; done
  port=$((port + 1))
  write_config "$1" > "$dir/dlm.conf"
}

stop_event() { # dir
  local p
  kill_programs "$1"
  for p in $(cat "$1"/n*/udlmd.pid 2>/dev/null); do is_proc "$p" udlmd && kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in $(cat "$1"/n*/udlmd.pid 2>/dev/null); do is_proc "$p" udlmd && kill -KILL "$p" 2>/dev/null; done
}

# on DIR NODE CHECK cmd...: start a program on a node in the background,
# bounded by $limit seconds (default 60). The subshell (its stderr to
# /dev/null) keeps bash's "Killed" notices for SIGKILLed programs quiet.
on() {
  local d=$1 k=$2 c=$3; shift 3
  ( DLM_RUN_DIR=$d/n$k DLM_NODEID=$k DLM_CONF=$d/dlm.conf LD_LIBRARY_PATH=$work/lib SYNC_DIR=$d/sync \
      DLM_DAEMON=$work/bin/udlmd RECOVERY_DEADLINE_MS=$deadline_ms \
      timeout -k 2 "${limit:-60}" "$@" > "$d/out/$c-$k.txt" 2>&1
    exit $? ) 2>/dev/null &
  P[$c,$k]=$!
  bgpids+=($!)
}

exited() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# wait_marks DIR SECONDS WATCH MARK...: all marks present; gives up early
# when one of the programs WATCH names ("check,node" keys of P, space
# separated) has already exited (it failed before getting there)
wait_marks() {
  local d=$1 s=$2 watch=$3; shift 3
  local end=$((SECONDS + s)) m key missing
  while :; do
    missing=()
    for m in "$@"; do [ -e "$d/sync/$m" ] || missing+=("$m"); done
    [ ${#missing[@]} = 0 ] && return 0
    for key in $watch; do
      if exited "${P[$key]}"; then
        echo "  ${key/,/ on node } exited early; still missing: ${missing[*]}"
        return 1
      fi
    done
    if [ $SECONDS -ge $end ]; then echo "  not ready after ${s}s: ${missing[*]}"; return 1; fi
    sleep 0.05
  done
}

# formed DIR N SECONDS: every node reports every other connected, all N as
# members and no recovery under way.
# The scenarios start from a formed cluster: forming it is not under test.
formed() {
  local d=$1 n=$2 end=$((SECONDS + $3)) k j s ok all
  all=$(seq -s, 1 "$n")
  while :; do
    ok=1
    for k in $(seq 1 "$n"); do
      s=$(DLM_RUN_DIR=$d/n$k DLM_NODEID=$k DLM_CONF=$d/dlm.conf timeout 5 "$work/bin/udlm" --json status 2>/dev/null |
          tr -d ' \n\t')
      [ -n "$s" ] || { ok=0; break; }
      for j in $(seq 1 "$n"); do
        [ "$j" = "$k" ] && continue
        [[ $s =~ \{\"id\":$j,[^}]*\"connected\":true ]] || { ok=0; break 2; }
      done
      [[ $s != *'"members":['* || $s == *"\"members\":[$all]"* ]] || { ok=0; break; }
      [[ $s == *'"state":"running"'* ]] || { ok=0; break; }
    done
    [ $ok = 1 ] && return 0
    if [ $SECONDS -ge $end ]; then echo "  (the $n nodes did not all report a formed cluster within $3 s)"; return 1; fi
    sleep 0.3
  done
}

show_outputs() { # dir check nodes...
  local d=$1 c=$2 k; shift 2
  for k in "$@"; do
    [ -s "$d/out/$c-$k.txt" ] && { echo "  node $k ($c):"; indent < "$d/out/$c-$k.txt"; }
  done
}

# judge DIR VICTIM NAME CHECK LOG NODE...: each node's program must exit 0
# (the victim's: killed, 137); with LOG, mutex_check must pass on it
judge() {
  local d=$1 v=$2 name=$3 c=$4 log=$5; shift 5
  local rc=0 k got want msgs="" out=""
  for k in "$@"; do
    { wait "${P[$c,$k]}"; } 2>/dev/null; got=$?
    want=0; [ "$k" = "$v" ] && want=137
    if [ "$got" != "$want" ]; then
      rc=1
      msgs+="  node $k: exit $got, expected $want"
      [ "$got" = 124 ] && msgs+=" (killed by its timeout)"
      [ "$want" = 137 ] && msgs+=" (the victim's program should have been alive until the kill)"
      msgs+=$'\n'
    fi
  done
  if [ -n "$log" ]; then
    out=$("$work/bin/mutex_check" "$d/sync/$log.log" 2>&1) || rc=1
  fi
  result "$name" $rc
  if [ $rc != 0 ] || [ -n "${VERBOSE:-}" ]; then
    printf '%s' "$msgs"
    [ -n "$out" ] && echo "  $out"
    show_outputs "$d" "$c" "$@"
  fi
}

node_status() { # dir nodes: each node's view of the membership, from udlm status
  local d=$1 k s
  for k in $(seq 1 "$2"); do
    s=$(DLM_RUN_DIR=$d/n$k DLM_NODEID=$k DLM_CONF=$d/dlm.conf timeout 5 "$work/bin/udlm" --json status 2>&1 | tr -d '\n\t')
    if [[ $s == *'"generation"'* ]]; then
      s=${s#*\"generation\"}
      echo "  status of node $k: \"generation\"${s%%,\"lockspaces\"*}"
    else
      echo "  status of node $k: none (${s:0:100})"
    fi
  done
}

node_logs() { # dir nodes
  local d=$1 k
  for k in $(seq 1 "$2"); do echo "  udlmd.log of node $k (last lines):"; tail -8 "$d/n$k/udlmd.log" 2>/dev/null | indent; done
}

# ---------------------------------------------------------------------------

checker_selftest() {
  local d=$work/selftest rc=0 f want got
  mkdir -p "$d"
  # a clean handover, a holder killed then a later grant: no overlap
  printf 'grant 100 1 10\nrelease 200 1 10\ngrant 300 2 20\nrelease 400 2 20\ngrant 500 3 30\nkilled 600 3 30\ngrant 700 1 10\nrelease 800 1 10\nkilled 900 3 31\n' > "$d/good"
  # the same lines in another order (several writers): sorted by time first
  sed -n '3p;1p;4p;7p;2p;5p;9p;8p;6p' "$d/good" > "$d/shuffled"
  # a release and the next grant at the same instant is not an overlap
  printf 'grant 100 1 10\nrelease 200 1 10\ngrant 200 2 20\nrelease 300 2 20\n' > "$d/tie"
  # two holders at once
  printf 'grant 100 1 10\ngrant 150 2 20\nrelease 200 1 10\nrelease 250 2 20\n' > "$d/overlap"
  # granted while the (later) killed node still held it
  printf 'grant 100 3 30\ngrant 200 1 10\nrelease 250 1 10\nkilled 300 3 30\n' > "$d/beforekill"
  # a holder that never released (nor was killed) blocks every later grant
  printf 'grant 1000000000000 2 20\ngrant 9000000000000 1 10\nrelease 9000000000001 1 10\n' > "$d/neverreleased"
  # the same process granted twice without a release
  printf 'grant 100 1 10\ngrant 200 1 10\n' > "$d/twice"
  # a release of nothing
  printf 'release 100 1 10\n' > "$d/stray"
  printf 'grant 100 1 10\nrelease 200 1 10\nbogus line\n' > "$d/malformed"
  for f in good:0 shuffled:0 tie:0 overlap:1 beforekill:1 neverreleased:1 twice:1 stray:1 malformed:2; do
    want=${f#*:}; f=${f%:*}
    "$work/bin/mutex_check" "$d/$f" > "$d/$f.out" 2>&1; got=$?
    if [ "$got" != "$want" ]; then
      rc=1; echo "  mutex_check on the '$f' log: exit $got, expected $want"; indent < "$d/$f.out"
    fi
  done
  "$work/bin/mutex_check" "$d/no-such-log" > /dev/null 2>&1 && { rc=1; echo "  mutex_check accepted a missing log"; }
  result "mutex checker: catches artificial overlaps, accepts clean handovers and kills" $rc
}

config_preflight() {
  local d=$work/preflight out
  mkdir -p "$d"; write_config 3 > "$d/dlm.conf"
  if ! out=$("$work/bin/udlm" config check "$d/dlm.conf" 2>&1); then
    echo "NOTE: this build's udlm rejects the test config; every node start below will fail:"
    echo "$out" | indent
  fi
}

# control: 3 nodes loop on M with no kill: the checker finds no overlap;
# then node 3 locks "M" in another lockspace: the checker must find one
control() {
  local n=3 k rc out
  new_event $n
  local name="control: $n nodes x 30 rounds of EX on M, no kill: no overlap (checker)"
  local rogue="control: node 3 taking M in another lockspace is caught by the checker"
  for k in $(seq 1 $n); do
    start_node "$dir" "$k" || { result "$name" 1; result "$rogue" 1; stop_event "$dir"; return; }
  done
  formed "$dir" $n 10
  P=()
  for k in $(seq 1 $n); do on "$dir" "$k" mutex "$bin" mutex $n 0 1 30; done
  judge "$dir" 0 "$name" mutex mutex $(seq 1 $n)
  rm -f "$dir/sync/mutex.log" "$dir/sync/m-first"
  P=()
  for k in 1 2; do on "$dir" "$k" mutex "$bin" mutex $n 0 1 30; done
  on "$dir" 3 mutex "$bin" mutex $n 0 1 30 rec-mutex-elsewhere
  rc=0
  for k in 1 2 3; do { wait "${P[mutex,$k]}"; } 2>/dev/null || rc=1; done
  out=$("$work/bin/mutex_check" "$dir/sync/mutex.log" 2>&1)
  [ $? = 1 ] || rc=1
  result "$rogue" $rc
  if [ $rc != 0 ] || [ -n "${VERBOSE:-}" ]; then echo "  $out"; show_outputs "$dir" mutex 1 2 3; fi
  stop_event "$dir"
}

# kill_event N V MFIRST: the scenarios around one SIGKILL of node V
kill_event() {
  local n=$1 v=$2 mf=$3 k a="" b="" rc t0 got
  for k in $(seq 1 "$n"); do
    [ "$k" = "$v" ] && continue
    if [ -z "$a" ]; then a=$k; elif [ -z "$b" ]; then b=$k; fi
  done
  local survivors=() all=($(seq 1 "$n")) three=("$a" "$b" "$v")
  for k in "${all[@]}"; do [ "$k" = "$v" ] || survivors+=("$k"); done
  local L="$n nodes, node $v killed"
  local n_wdm="$L holding EX on R (mastered on it): waiters on nodes ${survivors[*]} granted one after the other"
  local n_wsm="$L holding EX on R (mastered on node $a): waiters on nodes ${survivors[*]} granted one after the other"
  local n_lvbx="$L holding EX / PW with LVBs: the next grant on a survivor has VALNOTVALID"
  local n_lvbk="$L holding PR / NL, node $b PR: the LVBs are kept, no VALNOTVALID"
  local n_surv="$L: node $a's EX on S untouched (NOQUEUE EAGAIN, EUNLOCK, then node $b granted)"
  local n_mutex="$L holding M (mastered on node $mf), all nodes looping on M: mutual exclusion (checker)"
  local n_ctr="$L, then restarted: rejoins; $n nodes x 100 increments under EX = $((n * 100))"
  local names=("$n_wdm" "$n_wsm" "$n_lvbx" "$n_lvbk" "$n_surv" "$n_mutex" "$n_ctr")

  new_event "$n"
  echo 0 > "$dir/counter"
  for k in "${all[@]}"; do
    if ! start_node "$dir" "$k"; then
      for nm in "${names[@]}"; do result "$nm" 1; done
      stop_event "$dir"; return
    fi
  done
  formed "$dir" "$n" 10
  P=()
  local marks=()
  for k in "${all[@]}"; do
    on "$dir" "$k" wdm "$bin" waiters "$n" "$v" "$v" wdm
    on "$dir" "$k" wsm "$bin" waiters "$n" "$v" "$a" wsm
    on "$dir" "$k" mutex "$bin" mutex "$n" "$v" "$mf" 20
    if [ "$k" = "$v" ]; then
      on "$dir" "$k" ctrhold "$bin" counter-hold "$n" "$v"
    else
      limit=90 on "$dir" "$k" ctr "$bin" counter "$n" "$v" "$dir/counter" 100
    fi
    marks+=("ready-wdm-$k" "ready-wsm-$k" "ready-mutex-$k" "ready-ctr-$k")
  done
  for k in "${three[@]}"; do
    on "$dir" "$k" lvbx "$bin" lvbx "$n" "$v"
    on "$dir" "$k" lvbk "$bin" lvbk "$n" "$v"
    on "$dir" "$k" surv "$bin" surv "$n" "$v"
    marks+=("ready-lvbx-$k" "ready-lvbk-$k" "ready-surv-$k")
  done
  wait_marks "$dir" 20 "${!P[*]}" "${marks[@]}"
  sleep 0.5 # the survivors' queued requests reach their masters

  # SIGKILL node v: its udlmd, then its programs
  t0=$SECONDS
  SYNC_DIR=$dir/sync DLM_NODEID=$v timeout 25 "$bin" kill "$v" "$(cat "$dir/n$v/udlmd.pid")" > "$dir/out/kill.txt" 2>&1
  rc=$?
  # without a "killed" file the survivors' roles would wait for the kill
  [ -e "$dir/sync/killed" ] || touch "$dir/sync/kill-failed"
  if [ $rc != 0 ] || [ -n "${VERBOSE:-}" ]; then
    echo "  killer exit $rc:"; indent < "$dir/out/kill.txt"
  fi

  judge "$dir" "$v" "$n_wdm" wdm wdm "${all[@]}"
  judge "$dir" "$v" "$n_wsm" wsm wsm "${all[@]}"
  judge "$dir" "$v" "$n_lvbx" lvbx "" "${three[@]}"
  judge "$dir" "$v" "$n_lvbk" lvbk "" "${three[@]}"
  judge "$dir" "$v" "$n_surv" surv surv "${three[@]}"
  judge "$dir" "$v" "$n_mutex" mutex mutex "${all[@]}"

  # restart node v; once its peers see it, it joins the counter
  local msgs=""
  rc=0
  { wait "${P[ctrhold,$v]}"; } 2>/dev/null; k=$?
  [ $k = 137 ] || { rc=1; msgs+="  node $v (counter-hold): exit $k, expected 137"$'\n'; }
  if start_node "$dir" "$v"; then
    formed "$dir" "$n" 8 || msgs+="  (no formed $n-node cluster 8 s after node $v restarted)"$'\n'
    on "$dir" "$v" ctr "$bin" counter "$n" "$v" "$dir/counter" 100
    wait_marks "$dir" 10 "ctr,$v" "c-ready-$v" || rc=1
  else
    rc=1
  fi
  touch "$dir/sync/c-go"
  for k in "${all[@]}"; do
    [ -n "${P[ctr,$k]:-}" ] || continue
    { wait "${P[ctr,$k]}"; } 2>/dev/null; got=$?
    [ "$got" = 0 ] || { rc=1; msgs+="  node $k (counter): exit $got"$'\n'; }
  done
  got=$(cat "$dir/counter")
  [ "$got" = $((n * 100)) ] || { rc=1; msgs+="  the counter ended at $got, expected $((n * 100))"$'\n'; }
  result "$n_ctr" $rc
  if [ $rc != 0 ] || [ -n "${VERBOSE:-}" ]; then
    printf '%s' "$msgs"
    show_outputs "$dir" ctrhold "$v"
    show_outputs "$dir" ctr "${all[@]}"
    node_status "$dir" "$n"
  fi
  [ $ev_failed = 1 ] || [ -n "${VERBOSE:-}" ] && node_logs "$dir" "$n"
  [ -n "${VERBOSE:-}" ] && echo "  ($n-node event: $((SECONDS - t0)) s from the kill)"
  stop_event "$dir"
}

checker_selftest
config_preflight
control
kill_event 3 3 3
kill_event 5 4 1

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
