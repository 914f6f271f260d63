#!/usr/bin/env bash
# Recovery time after one of 3 nodes dies, with many locks held, printed as
# Markdown (progress on stderr).
#
# Three udlmd nodes on 127.0.0.1-3 (one dlm.conf with heartbeat_ms=200,
# peer_timeout_ms=1000, lease_ms=LEASE_MS; a DLM_RUN_DIR and DLM_NODEID per
# node, as in cluster-tests/recovery.sh). For each lock count N, REPEAT
# times, on a fresh cluster:
#   - each node runs bench/recoverybench.c "hold", which takes N/3 locks in
#     lockspace "rbench": half on names of its own, taken first so that it
#     masters them (NL/PR, every 50th EX), half PR on names of the two other
#     nodes (mastered there); node 3 also holds EX on "W", for which node 1
#     queues an EX request once everything is held (N locks in all, W
#     included);
#   - node 3's udlmd is SIGKILLed (the time, CLOCK_MONOTONIC, is taken just
#     before the signal), then its program;
#   - the figure is the time from the kill to the grant of W on node 1 (taken
#     in the AST). Detection is lease_ms (the survivors see the connection
#     drop at once on loopback, then wait lease_ms before they recover), so
#     the recovery part is that time minus lease_ms. The node logs are
#     followed and each line stamped with the same clock as it appears
#     (recoverybench "watch", 1 ms polling), which splits the time into:
#     kill -> connection lost, kill -> "starts recovery generation",
#     generation start -> "finished recovery generation" on each survivor,
#     finished -> W granted.
#
# usage: bench/recovery.sh
# Knobs (environment): LIBDIR (default target/release; udlmd, udlm and
# libdlm.so are copied first, so a rebuild during the run does not mix
# versions), COUNTS ("10000 100000"), REPEAT (3), LEASE_MS (1000),
# MAX_LOAD (1.5) and LOAD_WAIT (300): wait up to LOAD_WAIT seconds for the
# 1-minute load average to fall below MAX_LOAD before starting (the run goes
# ahead anyway after that, and says so), KEEP=1 (keep the work directory),
# PERF=DIR (perf record -g of nodes 1 and 2 from lease_ms - 250 ms after the
# kill until the recovery is over, into DIR/perf-N-RUN.data; it slows the
# nodes down, so its figures are not the benchmark's).
# Every process it starts is stopped by pid on exit; every wait is bounded.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || { echo "recovery.sh: no library directory" >&2; exit 2; }
COUNTS=${COUNTS:-"10000 100000"}
REPEAT=${REPEAT:-3}
LEASE_MS=${LEASE_MS:-1000}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT=${LOAD_WAIT:-300}
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
  *) echo "recovery.sh: unknown argument $1" >&2; exit 2;;
esac
for f in libdlm.so udlmd udlm; do
  [ -f "$rel/$f" ] || { echo "recovery.sh: $rel/$f is missing (build first)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/udlm-recovery.XXXXXX")
daemons=()   # every udlmd started
progs=()     # every background program (timeout wrappers) started
port=$((20000 + RANDOM % 20000))

is_proc() { # PID COMM: a live (not zombie) process named COMM
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
stop_daemons() {
  local p
  for p in "${daemons[@]}"; do is_proc "$p" udlmd && kill "$p" 2>/dev/null; done
  for _ in $(seq 1 30); do
    local alive=0
    for p in "${daemons[@]}"; do is_proc "$p" udlmd && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${daemons[@]}"; do is_proc "$p" udlmd && kill -KILL "$p" 2>/dev/null; done
  daemons=()
}
stop_programs() { # DIR: the holders (by the pids they wrote) and wrappers
  local f p c
  [ -n "${1:-}" ] && touch "$1/sync/stop" 2>/dev/null
  sleep 0.2
  for f in "${1:-/nonexistent}"/sync/pid-*; do
    [ -e "$f" ] || continue
    p=$(tr -dc 0-9 < "$f")
    is_proc "$p" recoverybench && kill -KILL "$p" 2>/dev/null
  done
  # what is left: the timeout under each subshell started by on()
  for p in "${progs[@]}"; do
    is_proc "$p" bash || continue
    for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do is_proc "$c" timeout && kill "$c" 2>/dev/null; done
  done
  wait 2>/dev/null
  progs=()
}
cur=""
perfpid=""
cleanup() {
  is_proc "$perfpid" perf && kill -INT "$perfpid" 2>/dev/null
  stop_programs "$cur"
  stop_daemons
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/lib" "$work/bin"
cp "$rel/libdlm.so" "$work/lib/libdlm.so.3" && cp "$rel/udlmd" "$rel/udlm" "$work/bin/" || exit 1
printf '#!/bin/sh\necho "recovery.sh: a library call tried to start udlmd" >&2\nexit 1\n' > "$work/bin/no-daemon"
chmod +x "$work/bin/no-daemon"
cc -O2 -Wall -Wextra -I"$top/include" -o "$work/bin/recoverybench" "$top/bench/recoverybench.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1
rb=$work/bin/recoverybench

load1() { cut -d' ' -f1 /proc/loadavg; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# ---------------------------------------------------------------- helpers
start_node() { # DIR K
  local d=$1 k=$2
  mkdir -p "$d/n$k"
  if ! DLM_RUN_DIR=$d/n$k DLM_NODEID=$k DLM_CONF=$d/dlm.conf timeout 10 "$work/bin/udlmd" --daemonize; then
    echo "recovery.sh: udlmd (node $k) did not start" >&2; tail -5 "$d/n$k/udlmd.log" >&2 2>/dev/null; return 1
  fi
  local pid; pid=$(tr -dc 0-9 < "$d/n$k/udlmd.pid")
  [ -n "$pid" ] || { echo "recovery.sh: no pid file in $d/n$k" >&2; return 1; }
  daemons+=("$pid")
}
status() { # DIR K
  DLM_RUN_DIR=$1/n$2 DLM_NODEID=$2 DLM_CONF=$1/dlm.conf timeout 5 "$work/bin/udlm" --json status 2>/dev/null | tr -d ' \n\t'
}
# formed DIR SECONDS NODES...: each of NODES sees the others connected, has
# exactly NODES as members and no recovery under way
formed() {
  local d=$1 end=$((SECONDS + $2)) k j s ok; shift 2
  local all; all=$(IFS=,; echo "$*")
  while :; do
    ok=1
    for k in "$@"; do
      s=$(status "$d" "$k")
      [ -n "$s" ] || { ok=0; break; }
      for j in "$@"; do
        [ "$j" = "$k" ] && continue
        [[ $s =~ \{\"id\":$j,[^}]*\"connected\":true ]] || { ok=0; break 2; }
      done
      [[ $s == *"\"members\":[$all]"* && $s == *'"state":"running"'* ]] || { ok=0; break; }
    done
    [ $ok = 1 ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}
# on DIR K OUT cmd...: a program on node K, in the background, bounded by
# timeout; the subshell (its stderr to /dev/null) keeps bash's "Killed"
# notices for the SIGKILLed program quiet
on() {
  local d=$1 k=$2 out=$3; shift 3
  ( env -u DLM_EMBEDDED DLM_RUN_DIR="$d/n$k" DLM_NODEID="$k" DLM_CONF="$d/dlm.conf" SYNC_DIR="$d/sync" \
      DLM_DAEMON="$work/bin/no-daemon" LD_LIBRARY_PATH="$work/lib" \
      timeout -k 2 600 "$@" > "$out" 2>&1
    exit $? ) 2>/dev/null &
  progs+=($!)
}
# wait_files DIR SECONDS WATCH FILE...: all present in DIR/sync; gives up
# early when the holder on a node of WATCH ("1 2 3") has exited (it failed)
wait_files() {
  local d=$1 end=$((SECONDS + $2)) watch=$3 f missing k p; shift 3
  while :; do
    missing=()
    for f in "$@"; do [ -e "$d/sync/$f" ] || missing+=("$f"); done
    [ ${#missing[@]} = 0 ] && return 0
    for k in $watch; do
      p=$(tr -dc 0-9 2>/dev/null < "$d/sync/pid-$k")
      if [ -n "$p" ] && ! is_proc "$p" recoverybench; then
        echo "recovery.sh: the program on node $k exited; still missing: ${missing[*]}" >&2; return 1
      fi
    done
    if [ $SECONDS -ge $end ]; then echo "recovery.sh: after $2 s still missing: ${missing[*]}" >&2; return 1; fi
    sleep 0.05
  done
}
show_failure() { # DIR
  local k
  for k in 1 2 3; do
    echo "  program on node $k:" >&2; sed 's/^/    /' "$1/out/hold-$k.txt" >&2 2>/dev/null
    echo "  udlmd.log of node $k (last lines):" >&2; tail -6 "$1/n$k/udlmd.log" 2>/dev/null | sed 's/^/    /' >&2
  done
}
# cpu_ns PID: the CPU time (ns) of all of PID's threads so far
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
# cpu_between CPUFILE NODE FROM TO: CPU ms NODE's udlmd used between the
# first snapshots taken at or after FROM and TO (ns stamps); with
# THREADS=1, per thread name instead ("name=ms ...", largest first)
cpu_between() {
  [ -n "$3" ] && [ -n "$4" ] || { echo "?"; return; }
  awk -v n="$2" -v a="$3" -v b="$4" -v per="${THREADS:-}" '
    $2 == n && $1 + 0 >= a + 0 && (ta == "" || $1 == ta) { ta = $1; sa[$3] += $4 }
    $2 == n && $1 + 0 >= b + 0 && (tb == "" || $1 == tb) { tb = $1; sb[$3] += $4 }
    END {
      if (ta == "" || tb == "") { print "?"; exit }
      for (k in sb) { d[k] = sb[k] - sa[k]; tot += d[k] }   # threads alive at the end
      if (!per) { printf "%.1f", tot / 1e6; exit }
      for (k in d) if (d[k] >= 0.05e6) printf "%s=%.1f\n", k, d[k] / 1e6
    }' "$1" | { if [ -n "${THREADS:-}" ]; then sort -t= -k2 -gr | paste -sd' '; else cat; fi; }
}
# first_ns FILE NODE PATTERN: the stamp of the first watched line of NODE's
# log containing PATTERN
first_ns() { awk -v n="$2" -v p="$3" '$2 == n && index($0, p) { print $1; exit }' "$1"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "?"; else printf "%.1f", (b - a) / 1e6 }'; }

# run_one N REP: one kill on a fresh cluster; writes DIR/result
run_one() {
  local n=$1 rep=$2 per=$(( $1 / 3 )) k
  local d=$work/r$n-$rep
  cur=$d
  mkdir -p "$d/sync" "$d/out"
  port=$((port + 1))
  {
    echo "cluster_name=rbench"
    echo "heartbeat_ms=200"
    echo "peer_timeout_ms=1000"
    echo "lease_ms=$LEASE_MS"
    for k in 1 2 3; do echo "node id=$k addr=127.0.0.$k port=$port"; done
  } > "$d/dlm.conf"
  for k in 1 2 3; do start_node "$d" $k || return 1; done
  formed "$d" 20 1 2 3 || { echo "recovery.sh: the 3 nodes did not form a cluster in 20 s" >&2; show_failure "$d"; return 1; }
  local t0=$SECONDS
  on "$d" 1 "$d/out/hold-1.txt" "$rb" hold 1 "$per" wwait
  on "$d" 2 "$d/out/hold-2.txt" "$rb" hold 2 "$per" none
  on "$d" 3 "$d/out/hold-3.txt" "$rb" hold 3 "$per" whold
  wait_files "$d" 5 "1 2 3" pid-1 pid-2 pid-3 || { show_failure "$d"; return 1; }
  wait_files "$d" 300 "1 2 3" held-1 held-2 held-3 whold wqueued || { show_failure "$d"; return 1; }
  local setup=$((SECONDS - t0))
  local d1; d1=$(tr -dc 0-9 < "$d/n1/udlmd.pid")
  local idle0 idle1 it0 it1
  it0=$(date +%s%N); idle0=$(cpu_ns "$d1")
  sleep 0.5 # node 1's queued request reaches W's master, node 3
  it1=$(date +%s%N); idle1=$(cpu_ns "$d1")
  # follow the logs from here, with the nodes' CPU times at each new line
  WATCH_PIDS="$d1 $(tr -dc 0-9 < "$d/n2/udlmd.pid") 0" \
    on "$d" 1 "$d/out/watch.txt" "$rb" watch "$d/watch" 120 "$d/n1/udlmd.log" "$d/n2/udlmd.log" "$d/n3/udlmd.log"
  wait_files "$d" 5 "1 2 3" watching || return 1
  local load; load=$(loadavg)
  local v; v=$(tr -dc 0-9 < "$d/n3/udlmd.pid")
  SYNC_DIR=$d/sync timeout 10 "$rb" kill "$v" > "$d/out/kill.txt" 2>&1 ||
    { echo "recovery.sh: the kill failed:" >&2; cat "$d/out/kill.txt" >&2; return 1; }
  local p3; p3=$(tr -dc 0-9 < "$d/sync/pid-3")
  is_proc "$p3" recoverybench && kill -KILL "$p3" 2>/dev/null
  if [ -n "${PERF:-}" ]; then
    # from shortly before the earliest start (lease_ms - one 100 ms tick)
    sleep "$(awk -v l="$LEASE_MS" 'BEGIN { printf "%.3f", (l - 250) / 1000 }')"
    perf record -F 1999 -g -p "$d1,$(tr -dc 0-9 < "$d/n2/udlmd.pid")" -o "$PERF/perf-$n-$rep.data" > "$d/out/perf.txt" 2>&1 &
    perfpid=$!
  fi
  # W granted, both survivors finished the generation (bounded)
  local limit=$(( LEASE_MS / 1000 + 60 ))
  wait_files "$d" "$limit" "1 2" granted
  if [ ! -e "$d/sync/granted" ]; then
    echo "recovery.sh: W was not granted within $limit s of the kill" >&2; show_failure "$d"; return 1
  fi
  local end=$((SECONDS + 10))
  until [ -n "$(first_ns "$d/watch" 2 'finished recovery generation')" ] && [ -n "$(first_ns "$d/watch" 1 'finished recovery generation')" ]; do
    [ $SECONDS -ge $end ] && break
    sleep 0.05
  done
  if [ -n "$perfpid" ]; then
    sleep 0.05; is_proc "$perfpid" perf && kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null; perfpid=""
  fi
  local ok=yes
  formed "$d" 10 1 2 || ok="no (survivors not running with members [1,2] 10 s after the grant)"
  local lsjson; lsjson=$( for k in 1 2; do DLM_RUN_DIR=$d/n$k DLM_NODEID=$k DLM_CONF=$d/dlm.conf timeout 5 "$work/bin/udlm" --json ls 2>/dev/null | tr -d ' \n\t'; echo; done )
  stop_programs "$d"
  stop_daemons
  cur=""

  local kill_ns grant_ns lost start fin1 fin2 gens
  kill_ns=$(tr -dc 0-9 < "$d/sync/killed")
  grant_ns=$(tr -dc 0-9 < "$d/sync/granted")
  lost=$(first_ns "$d/watch" 1 'lost the connection to node 3')
  start=$(first_ns "$d/watch" 1 'starts recovery generation')
  fin1=$(first_ns "$d/watch" 1 'finished recovery generation')
  fin2=$(first_ns "$d/watch" 2 'finished recovery generation')
  gens=$(grep -c 'starts recovery generation' "$d/watch")
  local os1 ss1; read -r os1 ss1 < <(awk '$2 == "hold" { for (i = 3; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } print v["own_s"], v["shared_s"] }' "$d/out/hold-1.txt")
  {
    echo "total_ms=$(ms "$kill_ns" "$grant_ns")"
    echo "lost_ms=$(ms "$kill_ns" "$lost")"
    echo "start_ms=$(ms "$kill_ns" "$start")"
    echo "fin1_ms=$(ms "$start" "$fin1")"
    echo "fin2_ms=$(ms "$start" "$fin2")"
    echo "grant_after_fin1_ms=$(ms "$fin1" "$grant_ns")"
    echo "start_to_grant_ms=$(ms "$start" "$grant_ns")"
    echo "generations=$gens"
    echo "start_ns=$start"
    echo "fin1_ns=$fin1"
    echo "fin2_ns=$fin2"
    echo "cpu1_ms=$(cpu_between "$d/watch.cpu" 1 "$start" "$fin1")"
    echo "cpu2_ms=$(cpu_between "$d/watch.cpu" 2 "$start" "$fin2")"
    echo "idle_cpu_ms_per_s=$(awk -v a="$idle0" -v b="$idle1" -v s="$it0" -v e="$it1" 'BEGIN { printf "%.1f", (b - a) / 1e6 / ((e - s) / 1e9) }')"
    echo "setup_s=$setup"
    echo "load='$load'"
    echo "ok='$ok'"
  } > "$d/result"
  echo "$lsjson" > "$d/ls.json"
  echo "  ... N=$n run $rep: kill -> W granted $(ms "$kill_ns" "$grant_ns") ms (generation start at +$(ms "$kill_ns" "$start") ms, $gens generation(s)); setup ${setup}s; load $load" >&2
  return 0
}

get() { sed -n "s/^$2=//p" "$1/result" | tr -d "'"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# ---------------------------------------------------------------- run
start_load=$(loadavg)
waited=0
while ! below "$(load1)" "$MAX_LOAD" && [ $waited -lt "$LOAD_WAIT" ]; do
  [ $waited = 0 ] && echo "recovery.sh: load average $(loadavg) is not below $MAX_LOAD; waiting up to $LOAD_WAIT s" >&2
  sleep 15; waited=$((waited + 15))
done
run_load=$(loadavg)
busy=""
below "$(load1)" "$MAX_LOAD" || busy=yes

echo "# udlm recovery benchmark"
echo
echo "- command: \`bash bench/recovery.sh\`"
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- commit: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$top" diff --quiet HEAD -- src compat 2>/dev/null || echo ' (src/compat modified)')"
echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "- binaries: $rel (udlmd built $(date -u -r "$rel/udlmd" '+%Y-%m-%d %H:%M:%S UTC'), copied at the start)"
echo "- load average: $start_load when started$( [ $waited -gt 0 ] && echo ", $run_load after waiting $waited s")"
[ -n "$busy" ] && echo "- **the machine was busy**: the 1-minute load average was not below $MAX_LOAD when the runs began; figures are inflated by other work"
echo "- config: 3 nodes on 127.0.0.1-3, heartbeat_ms=200, peer_timeout_ms=1000, lease_ms=$LEASE_MS; node 3's udlmd SIGKILLed, then its program"
echo

failed=0
for n in $COUNTS; do
  for rep in $(seq 1 "$REPEAT"); do
    echo "  ... N=$n run $rep of $REPEAT" >&2
    if ! run_one "$n" "$rep"; then
      echo "recovery.sh: N=$n run $rep failed" >&2; failed=1
      stop_programs "$cur"; stop_daemons; cur=""
    fi
  done
done

# ---------------------------------------------------------------- report
num() { awk -v v="$1" 'BEGIN { if (v == "" || v == "?") print "?"; else printf "%.1f", v }'; }
fmt_list() { paste -sd' ' | sed 's/ /, /g'; }
echo "Each row is one kill on a fresh cluster. Times in ms from CLOCK_MONOTONIC; the log lines are stamped as they appear (1 ms polling). \"start\" is node 1's (the coordinator's) \"starts recovery generation\" line."
echo
echo "| locks held | run | kill → W granted | that − lease_ms | kill → connection lost (node 1) | kill → start (the detection) | start → W granted | start → \"finished\", node 1 / node 2 | udlmd CPU from start to its \"finished\", node 1 / node 2 | generations | taking the locks (s) | load at the kill |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
summary=()
for n in $COUNTS; do
  tots=() sgs=() recs=() dets=()
  for rep in $(seq 1 "$REPEAT"); do
    d=$work/r$n-$rep
    if [ ! -f "$d/result" ]; then echo "| $n | $rep | failed | | | | | | | | | |"; continue; fi
    t=$(get "$d" total_ms); sg=$(get "$d" start_to_grant_ms)
    rec=$(awk -v t="$t" -v l="$LEASE_MS" 'BEGIN { printf "%.1f", t - l }')
    tots+=("$t"); recs+=("$rec"); sgs+=("$sg"); dets+=("$(get "$d" start_ms)")
    note=""; [ "$(get "$d" ok)" != yes ] && note=" ($(get "$d" ok))"
    echo "| $n | $rep | $t | $rec | $(get "$d" lost_ms) | $(get "$d" start_ms) | $sg | $(get "$d" fin1_ms) / $(get "$d" fin2_ms) | $(get "$d" cpu1_ms) / $(get "$d" cpu2_ms) | $(get "$d" generations) | $(get "$d" setup_s) | $(get "$d" load)$note |"
  done
  [ ${#tots[@]} -gt 0 ] || continue
  mt=$(printf '%s\n' "${tots[@]}" | median); mr=$(printf '%s\n' "${recs[@]}" | median)
  ms_=$(printf '%s\n' "${sgs[@]}" | grep -v '?' | median); md=$(printf '%s\n' "${dets[@]}" | grep -v '?' | median)
  echo "| **$n** | **median** | **$mt** | **$mr** | | **$md** | **$ms_** | | | | | |"
  summary+=("$n|$mt|$mr|$(printf '%s\n' "${recs[@]}" | fmt_list)|$md|$ms_|$(printf '%s\n' "${sgs[@]}" | fmt_list)|$(printf '%s\n' "${tots[@]}" | sort -g | tail -1)")
done
echo
echo "| locks held | recovery = kill → grant − lease_ms, median (runs) | recovery from the logged start (detection measured: kill → start, median), median (runs) | worst kill → grant | target: recovery ≤ 1,000 ms at 100,000 locks |"
echo "|---|---|---|---|---|"
for row in "${summary[@]}"; do
  IFS='|' read -r n mt mr rl md ms_ sl worst <<< "$row"
  if [ "$n" -ge 100000 ]; then
    v=$(awk -v a="$mr" -v b="$ms_" 'BEGIN { print (a + 0 <= 1000 && b + 0 <= 1000) ? "**met**" : "**not met**" }')
  else
    v="(no target)"
  fi
  echo "| $n | $mr ms ($rl) | $ms_ ms ($sl), detection $md ms | $worst ms | $v |"
done
echo
echo "Where node 1's and node 2's udlmd spent CPU from the start to their \"finished\" line, by thread (ms), the run with the median kill → grant of each count:"
echo
for n in $COUNTS; do
  pick=""
  mt=$(for rep in $(seq 1 "$REPEAT"); do [ -f "$work/r$n-$rep/result" ] && get "$work/r$n-$rep" total_ms; done | median)
  for rep in $(seq 1 "$REPEAT"); do
    [ -f "$work/r$n-$rep/result" ] && [ "$(get "$work/r$n-$rep" total_ms)" = "$mt" ] && { pick=$rep; break; }
  done
  [ -n "$pick" ] || continue
  d=$work/r$n-$pick
  for k in 1 2; do
    echo "- N=$n run $pick, node $k: $(THREADS=1 cpu_between "$d/watch.cpu" $k "$(get "$d" start_ns)" "$(get "$d" fin${k}_ns)")"
  done
done
echo
idle=()
for n in $COUNTS; do
  idle+=("N=$n: $(for rep in $(seq 1 "$REPEAT"); do [ -f "$work/r$n-$rep/result" ] && get "$work/r$n-$rep" idle_cpu_ms_per_s; done | fmt_list)")
done
echo "Idle udlmd CPU on node 1 with its locks held, over 0.5 s before the kill (ms of CPU per second, each run): $(printf '%s; ' "${idle[@]}" | sed 's/; $//')"
echo
echo "Locks after the recovery (udlm --json ls on nodes 1 and 2, last run of each count; node 1's count includes W):"
echo
for n in $COUNTS; do
  d=$work/r$n-$REPEAT
  [ -f "$d/ls.json" ] && echo "- N=$n: $(tr '\n' ' ' < "$d/ls.json")"
done
echo
echo "Load average at the end: $(loadavg)"
exit $failed
