#!/usr/bin/env bash
# Network partition of a 5-node cluster, 2 | 3, with real daemons, each node
# in a network namespace of its own (root only; without root, or if network
# namespaces cannot be made, it prints "SKIP ..." and exits 0).
#
# Network: node K is 10.77.0.K, a /32 on the loopback device of namespace
# udlmp<pid>-K; every pair of nodes is joined by a veth pair (pKJ in K's
# namespace, pJK in J's), with a /32 route to the peer over it and no other
# route: nothing leaves these namespaces. A cut sets the links between the
# two groups down at both ends (their routes go with them); a heal sets them
# up and puts the routes back. The run directories are plain directories of
# one temporary directory; daemons and programs are started through
# `ip netns exec` in their node's namespace.
#
# Config: heartbeat_ms=200, peer_timeout_ms=1000, lease_ms=2000,
# self_fence=abort. What is tested, per event (one with the minority {1,2}
# and M mastered on the minority holder's node, so the majority's
# coordinator changes and M is remastered; one with the minority {4,5} and
# M mastered on node 1, in the majority, which keeps coordinating):
#
#   every node runs recover.c's "mutex" role on M (lockspace rec-mutex,
#   log sync/mutex.log); once all loop, the minority holder V takes M and
#   keeps it, so every other node waits for M; then the cut.
#   (a) the minority self-fences within its lease: V's program is SIGKILLed
#       by its node (watched through a pidfd, which logs "killed" in the
#       mutual-exclusion log when it ends), within peer_timeout_ms +
#       lease_ms of the cut and before the majority's first grant of M; the
#       other minority node's program, waiting for M, gets ENOLCK (or is
#       killed too); mutex_check passes over the whole run's log
#   (b) the majority grants M only after the lease (first grant after the
#       cut >= lease_ms/2 later, the figures are printed) and every
#       majority program gets its 5 grants after the cut
#   (c) after the heal the minority nodes rejoin (`udlm --json status` on
#       every node: "state":"running", members [1,2,3,4,5], all connected)
#       and programs on both minority nodes and one majority node take and
#       release EX on M again (their own log, checked too)
#   also part of (a): once V's holder has ended, a new EX request on M on
#   node V (partition.c's probe) is not granted for 1.5 s (the partition
#   lasts until then)
#
# Then a third cut of {1,2}, with self_fence=log and M mastered on node 3:
# the minority stops granting (node 2's waiting EX on M completes with
# ENOLCK, a new EX on node 1 is not granted, node 1's status is not
# "running") but kills nobody (node 1's holder stays alive); no mutex check
# there (with log, the program that held M is not stopped), and no heal.
#
# Prints one "PASS name" / "FAIL name" per check, details indented below a
# failure (and with VERBOSE=1 always), and "N passed, N failed"; exits
# non-zero on any failure.
#
# Needs: root, iproute2 (`ip`; installed with apt-get when missing), a C
# compiler. Environment: LIBDIR (where udlmd, udlm and libdlm.so are;
# target/release; copied first, so a rebuild during the run does not mix
# versions), VERBOSE=1, KEEP=1 (keep the work directory), NO_FENCE_KEY=1
# (leave self_fence out of dlm.conf, to try the harness on a build that
# does not know the key).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

skip() { echo "SKIP network partition tests ($*)"; exit 0; }

[ "$(id -u)" = 0 ] || skip "not root: network namespaces need root"
if ! command -v ip > /dev/null; then
  if command -v apt-get > /dev/null; then
    echo "installing iproute2 (for ip netns)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 > /dev/null 2>&1 ||
      { apt-get update -qq > /dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 > /dev/null 2>&1; }
  fi
  command -v ip > /dev/null || skip "no ip command (iproute2) and it could not be installed"
fi

rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || exit 1
work=$(mktemp -d)
pass=0 fail=0
N=5
heartbeat_ms=200 peer_timeout_ms=1000 lease_ms=2000
port=21064
nsp="udlmp$$-"       # namespace names: udlmp<pid>-K
made_ns=()           # namespaces this run created
bgpids=()            # subshells running programs, and watchers
declare -A P         # "check,node" -> pid of the subshell running the program
evno=0

is_proc() { # PID COMM: a live (not zombie) process named COMM
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
exited() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

daemon_pids() { cat "$work/daemons" "$work"/ev*/n*/udlmd.pid 2>/dev/null | sort -u; }

kill_programs() { # DIR: every program registered in DIR's sync dirs, by pid
  local f p
  for f in "$1"/sync*/pids/*/*; do
    [ -e "$f" ] || continue
    p=${f##*/}
    is_proc "$p" recover && kill -KILL "$p" 2>/dev/null
  done
}

cleanup() {
  local p d n
  for p in "${bgpids[@]}"; do
    { is_proc "$p" bash || is_proc "$p" partition; } && kill "$p" 2>/dev/null
  done
  for d in "$work"/ev*; do [ -d "$d" ] && kill_programs "$d"; done
  for p in $(daemon_pids); do is_proc "$p" udlmd && kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in $(daemon_pids); do is_proc "$p" udlmd && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  for n in "${made_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

indent() { sed 's/^/    /'; }
now() { "$work/bin/partition" now; }
ms() { echo $(( ($1) / 1000000 )); } # ns -> ms

# ---------------------------------------------------------------------------
# the network

ns() { echo "$nsp$1"; }

setup_net() {
  local k j
  for k in $(seq 1 $N); do
    ip netns add "$(ns "$k")" 2>/dev/null || return 1
    made_ns+=("$(ns "$k")")
    ip -n "$(ns "$k")" link set lo up || return 1
    ip -n "$(ns "$k")" addr add "10.77.0.$k/32" dev lo || return 1
  done
  for k in $(seq 1 $N); do
    for j in $(seq $((k + 1)) $N); do
      ip link add "p$k$j" netns "$(ns "$k")" type veth peer name "p$j$k" netns "$(ns "$j")" || return 1
    done
  done
  links all up || return 1
}

# links all|GROUP up|down: set the links (between the group and the rest,
# or all) up or down, at both ends; after "up", the routes are put back
links() {
  local which=$1 how=$2 k j in_k in_j cmds
  for k in $(seq 1 $N); do
    cmds=""
    for j in $(seq 1 $N); do
      [ "$j" = "$k" ] && continue
      if [ "$which" != all ]; then
        in_k=0 in_j=0
        [[ " $which " == *" $k "* ]] && in_k=1
        [[ " $which " == *" $j "* ]] && in_j=1
        [ $in_k = $in_j ] && continue
      fi
      cmds+="link set p$k$j $how"$'\n'
    done
    [ -n "$cmds" ] && { printf '%s' "$cmds" | ip -n "$(ns "$k")" -batch - || return 1; }
  done
  [ "$how" = up ] || return 0
  for k in $(seq 1 $N); do
    cmds=""
    for j in $(seq 1 $N); do
      [ "$j" = "$k" ] || cmds+="route replace 10.77.0.$j/32 dev p$k$j src 10.77.0.$k"$'\n'
    done
    printf '%s' "$cmds" | ip -n "$(ns "$k")" -batch - || return 1
  done
}

# can_reach K J: a TCP connect from node K's namespace to port 1 of node J
# (where nothing listens) is refused, not "unreachable" or a timeout
can_reach() {
  local out
  out=$(ip netns exec "$(ns "$1")" timeout 2 bash -c "exec 3<>/dev/tcp/10.77.0.$2/1" 2>&1)
  [ $? = 0 ] || [[ $out == *refused* ]]
}

# ---------------------------------------------------------------------------
# nodes and programs (as in recovery.sh, through ip netns exec)

write_config() {
  echo "cluster_name=udlmtest"
  echo "heartbeat_ms=$heartbeat_ms"
  echo "peer_timeout_ms=$peer_timeout_ms"
  echo "lease_ms=$lease_ms"
  [ -z "${NO_FENCE_KEY:-}" ] && echo "self_fence=${1:-abort}"
  for k in $(seq 1 $N); do echo "node id=$k addr=10.77.0.$k port=$port"; done
  true
}

start_node() { # dir k
  local dir=$1 k=$2
  mkdir -p "$dir/n$k"
  if ! ip netns exec "$(ns "$k")" env DLM_RUN_DIR="$dir/n$k" DLM_NODEID="$k" DLM_CONF="$dir/dlm.conf" \
       timeout 10 "$work/bin/udlmd" --daemonize; then
    echo "  node $k did not start:"; tail -5 "$dir/n$k/udlmd.log" 2>/dev/null | indent
    return 1
  fi
  cat "$dir/n$k/udlmd.pid" >> "$work/daemons"
}

stop_event() { # dir
  local p
  kill_programs "$1"
  for p in $(cat "$1"/n*/udlmd.pid 2>/dev/null); do is_proc "$p" udlmd && kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in $(cat "$1"/n*/udlmd.pid 2>/dev/null); do is_proc "$p" udlmd && kill -KILL "$p" 2>/dev/null; done
}

# on DIR SYNC NODE CHECK cmd...: a program on a node, in the background,
# bounded by $limit seconds (default 60); output in DIR/out/CHECK-NODE.txt
on() {
  local d=$1 s=$2 k=$3 c=$4; shift 4
  ( ip netns exec "$(ns "$k")" env DLM_RUN_DIR="$d/n$k" DLM_NODEID="$k" DLM_CONF="$d/dlm.conf" \
      LD_LIBRARY_PATH="$work/lib" SYNC_DIR="$d/$s" DLM_DAEMON="$work/bin/udlmd" \
      RECOVERY_DEADLINE_MS="$deadline_ms" \
      timeout -k 2 "${limit:-60}" "$@" > "$d/out/$c-$k.txt" 2>&1
    exit $? ) 2>/dev/null &
  P[$c,$k]=$!
  bgpids+=($!)
}

status_of() { # dir k: udlm --json status of node k, on one line
  ip netns exec "$(ns "$2")" env DLM_RUN_DIR="$1/n$2" DLM_NODEID="$2" DLM_CONF="$1/dlm.conf" \
    timeout 5 "$work/bin/udlm" --json status 2>&1 | tr -d ' \n\t'
}

# formed DIR SECONDS: every node reports every other connected, all N as
# members and the state "running"
formed() {
  local d=$1 end=$((SECONDS + $2)) k j s ok all
  all=$(seq -s, 1 $N)
  while :; do
    ok=1
    for k in $(seq 1 $N); do
      s=$(status_of "$d" "$k")
      for j in $(seq 1 $N); do
        [ "$j" = "$k" ] && continue
        [[ $s =~ \{\"id\":$j,[^}]*\"connected\":true ]] || { ok=0; break 2; }
      done
      [[ $s == *"\"members\":[$all]"* ]] || { ok=0; break; }
      [[ $s == *'"state":"running"'* ]] || { ok=0; break; }
    done
    [ $ok = 1 ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

node_status() { # dir: each node's view of the membership
  local d=$1 k s
  for k in $(seq 1 $N); do
    s=$(status_of "$d" "$k")
    if [[ $s == *'"generation"'* ]]; then
      s=${s#*\"generation\"}
      echo "  status of node $k: \"generation\"${s%%,\"lockspaces\"*}"
    else
      echo "  status of node $k: none (${s:0:100})"
    fi
  done
}

node_logs() { # dir
  local k
  for k in $(seq 1 $N); do
    echo "  udlmd.log of node $k (last lines):"; tail -12 "$1/n$k/udlmd.log" 2>/dev/null | indent
  done
}

# wait_marks DIR SECONDS MARK...: (in DIR/sync) all present
wait_marks() {
  local d=$1 end=$((SECONDS + $2)) m missing; shift 2
  while :; do
    missing=()
    for m in "$@"; do [ -e "$d/sync/$m" ] || missing+=("$m"); done
    [ ${#missing[@]} = 0 ] && return 0
    if [ $SECONDS -ge $end ]; then echo "  not ready after $2 s: ${missing[*]}"; return 1; fi
    sleep 0.05
  done
}

# wait_all SECONDS PID...: until every pid has exited, at most SECONDS
wait_all() {
  local end=$((SECONDS + $1)) p left; shift
  while :; do
    left=0
    for p in "$@"; do exited "$p" || left=1; done
    [ $left = 0 ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.05
  done
}

# waitcode PID: sets code to the exit status of a child of this shell
waitcode() { { wait "$1"; } 2>/dev/null; code=$?; }

result() { # name rc details
  if [ "$2" = 0 ]; then echo "PASS $1"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi
  if [ "$2" != 0 ] || [ -n "${VERBOSE:-}" ]; then [ -n "${3:-}" ] && printf '%s' "$3"; fi
  true
}

show_outputs() { # dir check nodes...
  local d=$1 c=$2 k; shift 2
  for k in "$@"; do
    [ -s "$d/out/$c-$k.txt" ] && { echo "  node $k ($c):"; indent < "$d/out/$c-$k.txt"; }
  done
}

# ---------------------------------------------------------------------------

# partition_event "MINORITY" V FIRST: cut the minority (V holding M, which
# node FIRST took first and so masters) from the others; heal
partition_event() {
  local minority=$1 v=$2 mf=$3
  local k j all=($(seq 1 $N)) majority=() others=()
  for k in "${all[@]}"; do [[ " $minority " == *" $k "* ]] || majority+=("$k"); done
  for k in $minority; do [ "$k" = "$v" ] || others+=("$k"); done
  local G="2|3 split {${minority// /,}} | {$(IFS=,; echo "${majority[*]}")}, M mastered on node $mf"
  local n_a="$G: (a) the minority self-fences within its lease: node $v's holder of M SIGKILLed before the majority's first grant, waiters get ENOLCK (or are killed), nothing granted on node $v after; mutual exclusion over the whole run (checker)"
  local n_b="$G: (b) the majority grants M only after the lease (>= $((lease_ms / 2)) ms after the cut), then every majority node 5 times"
  local n_c="$G: (c) after the heal nodes {${minority// /,}} rejoin (running, 5 members) and take and release EX on M again"
  local ra=0 rb=0 rc=0 ma="" mb="" mc=""

  evno=$((evno + 1))
  local dir=$work/ev$evno
  mkdir -p "$dir/sync" "$dir/sync2" "$dir/out"
  for k in "${all[@]}"; do mkdir -p "$dir/sync/pids/$k" "$dir/sync2/pids/$k"; done
  write_config > "$dir/dlm.conf"
  P=()

  for k in "${all[@]}"; do
    if ! start_node "$dir" "$k"; then
      result "$n_a" 1; result "$n_b" 1; result "$n_c" 1; stop_event "$dir"; return
    fi
  done
  if ! formed "$dir" 10; then
    local m="  (the 5 nodes did not form a cluster within 10 s)"$'\n'
    m+=$(node_status "$dir")$'\n'$(node_logs "$dir")$'\n'
    result "$n_a" 1 "$m"; result "$n_b" 1; result "$n_c" 1; stop_event "$dir"; return
  fi

  # everyone loops on M; V then takes it and keeps it
  local marks=(m-victim-holds)
  for k in "${all[@]}"; do
    on "$dir" sync "$k" mutex "$work/bin/recover" mutex $N "$v" "$mf" 20
    marks+=("ready-mutex-$k")
  done
  if ! wait_marks "$dir" 25 "${marks[@]}"; then
    local m; m=$(show_outputs "$dir" mutex "${all[@]}")$'\n'
    result "$n_a" 1 "$m"; result "$n_b" 1; result "$n_c" 1; stop_event "$dir"; return
  fi
  sleep 0.7 # the waiters' requests reach M's master

  # watch the minority's programs
  local f p wpids=()
  declare -A W=()
  for k in $minority; do
    for f in "$dir"/sync/pids/"$k"/*; do
      [ -e "$f" ] || continue
      p=${f##*/}
      "$work/bin/partition" watch "$dir/sync/mutex.log" "$k" "$p" 12000 > "$dir/out/watch-$k.txt" 2>&1 &
      W[$k]=$!; wpids+=($!); bgpids+=($!)
    done
  done

  # the cut
  local t0 t1
  t0=$(now)
  links "$minority" down || ma+="  could not set the links down"$'\n'
  t1=$(now)
  echo "$t1" > "$dir/sync/killed" # recover.c counts the majority's grants from here
  [ -n "${VERBOSE:-}" ] && echo "  cut {${minority// /,}}: links down in $(ms $((t1 - t0))) ms"
  can_reach "$v" "${majority[0]}" && { ra=1; ma+="  after the cut node $v still reaches node ${majority[0]}"$'\n'; }
  can_reach "${majority[0]}" "$v" && { ra=1; ma+="  after the cut node ${majority[0]} still reaches node $v"$'\n'; }
  if [ ${#others[@]} -gt 0 ] && ! can_reach "$v" "${others[0]}"; then
    ra=1; ma+="  after the cut node $v no longer reaches node ${others[0]} (same side)"$'\n'
  fi
  if [ -n "${VERBOSE:-}" ]; then
    sleep $(( (peer_timeout_ms + lease_ms / 2) / 1000 )).5
    echo "  status $(( (peer_timeout_ms + lease_ms / 2) / 1000 )).5 s after the cut:"; node_status "$dir"
  fi

  # the minority's programs end (fenced); then a new request on node V must
  # not be granted while the partition lasts; the majority gets its grants
  wait_all 13 "${wpids[@]}"
  local probe_ms=1500
  limit=5 on "$dir" sync "$v" probe "$work/bin/partition" probe rec-mutex M $probe_ms "$dir/sync/mutex.log"
  local maj_p=()
  for k in "${majority[@]}"; do maj_p+=("${P[mutex,$k]}"); done
  wait_all 15 "${maj_p[@]}" "${P[probe,$v]}" || mb+="  majority programs still running 15 s after the watchers were done"$'\n'
  local t_wait_done; t_wait_done=$(now)

  # (a) the holder: killed by its node, when
  local code t_kill="" how
  waitcode "${W[$v]}"
  how=$(cat "$dir/out/watch-$v.txt")
  if [ "$code" = 0 ]; then
    t_kill=${how%% *}
  else
    ra=1; ma+="  node $v's holder of M was not ended within 12 s of the watch (watcher: exit $code, $how)"$'\n'
  fi
  # wait for the holder's subshell only once it has ended (else it would block)
  local hcode=""
  if exited "${P[mutex,$v]}"; then
    waitcode "${P[mutex,$v]}"; hcode=$code
    [ "$hcode" = 137 ] || { ra=1; ma+="  node $v's holder of M: exit $hcode, expected 137 (SIGKILL by the self-fence)"$'\n'; }
  fi
  if [ -n "$t_kill" ]; then
    local dk=$(( (t_kill - t0) / 1000000 ))
    ma+="  node $v's holder ended $dk ms after the cut (bound: peer_timeout_ms + lease_ms = $((peer_timeout_ms + lease_ms)) ms)"$'\n'
    [ $dk -le $((peer_timeout_ms + lease_ms)) ] || ra=1
  fi
  # the other minority programs: ENOLCK (exit 1, "status 37") or killed
  for k in "${others[@]}"; do
    if ! exited "${P[mutex,$k]}"; then
      ra=1; ma+="  node $k's program (waiting for M) still running"$'\n'; continue
    fi
    waitcode "${P[mutex,$k]}"
    if [ "$code" = 137 ]; then
      ma+="  node $k's program (waiting for M) was killed by the self-fence"$'\n'
    elif [ "$code" = 1 ] && grep -q "status 37" "$dir/out/mutex-$k.txt"; then
      ma+="  node $k's program: its waiting EX on M completed with ENOLCK (37)"$'\n'
    else
      ra=1; ma+="  node $k's program (waiting for M): exit $code, expected ENOLCK (exit 1 with status 37) or SIGKILL (137)"$'\n'
    fi
  done
  # the probe: not granted (blocked, an error status, or killed)
  if exited "${P[probe,$v]}"; then
    waitcode "${P[probe,$v]}"
    case $code in
      4|5) ma+="  a new EX request on M on node $v after the fence, for $probe_ms ms: not granted: $(cat "$dir/out/probe-$v.txt")"$'\n' ;;
      137) ma+="  a new EX request on M on node $v after the fence: the probe was killed (not granted)"$'\n' ;;
      *) ra=1; ma+="  a new EX request on M on node $v after the fence, during the partition: exit $code: $(cat "$dir/out/probe-$v.txt")"$'\n' ;;
    esac
  else
    ra=1; ma+="  the probe on node $v did not end"$'\n'
  fi
  local fence_log
  fence_log=$(for k in $minority; do grep -iE "fenc|majority|quorum|dropped" "$dir/n$k/udlmd.log" | sed "s/^/node $k: /"; done)
  [ -n "$fence_log" ] && ma+="  minority logs:"$'\n'$(indent <<< "$fence_log")$'\n'

  # (b) the majority's first grant after the cut
  local g_first
  g_first=$(awk -v t="$t0" -v maj=" ${majority[*]} " \
    '$1 == "grant" && $2 > t && index(maj, " " $3 " ") { if (m == "" || $2 < m) m = $2 } END { print m }' \
    "$dir/sync/mutex.log")
  if [ -z "$g_first" ]; then
    rb=1; mb+="  no majority node was granted M after the cut"$'\n'
  else
    local dg=$(( (g_first - t1) / 1000000 ))
    mb+="  first majority grant of M $dg ms after the cut (links down $(ms $((t1 - t0))) ms after it began); lease_ms=$lease_ms, peer_timeout_ms=$peer_timeout_ms"$'\n'
    [ $dg -ge $((lease_ms / 2)) ] || { rb=1; mb+="  that is less than lease_ms/2 = $((lease_ms / 2)) ms"$'\n'; }
    if [ -n "$t_kill" ]; then
      ma+="  node $v's holder ended $(( (g_first - t_kill) / 1000000 )) ms before the majority's first grant (negative: after it)"$'\n'
      [ "$t_kill" -lt "$g_first" ] || ra=1
    fi
  fi
  for k in "${majority[@]}"; do
    if ! exited "${P[mutex,$k]}"; then rb=1; mb+="  node $k's program still running"$'\n'; continue; fi
    waitcode "${P[mutex,$k]}"
    [ "$code" = 0 ] || { rb=1; mb+="  node $k's program: exit $code"$'\n'; }
  done
  [ $rb = 0 ] || mb+=$(show_outputs "$dir" mutex "${majority[@]}")$'\n'

  # a holder nobody killed would be seen holding M forever: end it now
  # (logging nothing), so that the rest of the run is still meaningful
  for k in $minority; do
    for f in "$dir"/sync/pids/"$k"/*; do
      [ -e "$f" ] && is_proc "${f##*/}" recover && kill -KILL "${f##*/}" 2>/dev/null
    done
  done
  [ -n "$hcode" ] || { waitcode "${P[mutex,$v]}"; hcode=$code; ma+="  node $v's holder: ended by the test (exit $hcode)"$'\n'; }

  # the heal
  local th
  links all up || mc+="  could not set the links up"$'\n'
  th=$(now)
  local ok_formed=1
  if formed "$dir" 15; then
    mc+="  all 5 nodes running with 5 members, all connected, $(( ($(now) - th) / 1000000 )) ms after the heal"$'\n'
  else
    ok_formed=0; rc=1; mc+="  not all 5 nodes running with 5 members, all connected, 15 s after the heal:"$'\n'
    mc+=$(node_status "$dir")$'\n'
  fi
  if [ $ok_formed = 1 ]; then
    # (c) programs on the minority nodes (and one majority node) on M again
    local after=($minority "${majority[0]}") cp=()
    for k in "${after[@]}"; do
      limit=30 on "$dir" sync2 "$k" again "$work/bin/recover" mutex $N 0 "$v" 5
      cp+=("${P[again,$k]}")
    done
    wait_all 32 "${cp[@]}"
    for k in "${after[@]}"; do
      waitcode "${P[again,$k]}"
      [ "$code" = 0 ] || { rc=1; mc+="  node $k's program on M after the heal: exit $code"$'\n'; }
    done
    local out
    out=$("$work/bin/mutex_check" "$dir/sync2/mutex.log" 2>&1) || rc=1
    mc+="  after the heal: $out"$'\n'
    [ $rc = 0 ] || mc+=$(show_outputs "$dir" again "${after[@]}")$'\n'
  fi

  # (a) over the whole run
  local whole=$dir/whole-run.log out
  cat "$dir/sync/mutex.log" "$dir/sync2/mutex.log" > "$whole" 2>/dev/null
  out=$("$work/bin/mutex_check" "$whole" 2>&1) || ra=1
  ma+="  whole run: $out"$'\n'
  [ $ra = 0 ] || ma+=$(show_outputs "$dir" mutex $minority)$'\n'

  result "$n_a" $ra "$ma"
  result "$n_b" $rb "$mb"
  result "$n_c" $rc "$mc"
  if [ $((ra + rb + rc)) != 0 ] || [ -n "${VERBOSE:-}" ]; then node_logs "$dir"; fi
  [ -n "${VERBOSE:-}" ] && echo "  (event $evno: $(( (t_wait_done - t0) / 1000000 )) ms from the cut to the end of the partition's programs)"
  stop_event "$dir"
  # each event starts from a whole network
  links all up > /dev/null 2>&1
}

# log_event: the cut of {1,2} again, with self_fence=log and M mastered on
# node 3 (the majority): the minority stops granting and its waiters get
# ENOLCK, but it kills nobody (then the test ends the event, no heal)
log_event() {
  local minority="1 2" v=1 w=2 mf=3 k f hp="" code
  local all=($(seq 1 $N))
  local name="2|3 split {1,2} | {3,4,5} with self_fence=log, M mastered on node 3: the minority stops granting but kills nobody: node $w's waiting EX on M completes with ENOLCK (37), node $v's holder of M stays alive, a new EX on node $v is not granted"
  local r=0 m=""

  evno=$((evno + 1))
  local dir=$work/ev$evno
  mkdir -p "$dir/sync" "$dir/out"
  for k in "${all[@]}"; do mkdir -p "$dir/sync/pids/$k"; done
  write_config log > "$dir/dlm.conf"
  P=()
  for k in "${all[@]}"; do start_node "$dir" "$k" || { result "$name" 1; stop_event "$dir"; return; }; done
  if ! formed "$dir" 10; then
    result "$name" 1 "  (the 5 nodes did not form a cluster within 10 s)"$'\n'"$(node_status "$dir")"$'\n'
    stop_event "$dir"; return
  fi
  local marks=(m-victim-holds)
  for k in "${all[@]}"; do
    on "$dir" sync "$k" mutex "$work/bin/recover" mutex $N "$v" "$mf" 20
    marks+=("ready-mutex-$k")
  done
  if ! wait_marks "$dir" 25 "${marks[@]}"; then
    result "$name" 1 "$(show_outputs "$dir" mutex "${all[@]}")"$'\n'; stop_event "$dir"; return
  fi
  sleep 0.7
  for f in "$dir"/sync/pids/$v/*; do [ -e "$f" ] && hp=${f##*/}; done

  local t0 t1 t2
  t0=$(now)
  links "$minority" down || m+="  could not set the links down"$'\n'
  t1=$(now)
  echo "$t1" > "$dir/sync/killed"
  if wait_all 8 "${P[mutex,$w]}"; then
    t2=$(now)
    waitcode "${P[mutex,$w]}"
    if [ "$code" = 1 ] && grep -q "status 37" "$dir/out/mutex-$w.txt"; then
      m+="  node $w's waiting EX on M completed with ENOLCK (37), seen $(( (t2 - t0) / 1000000 )) ms after the cut"$'\n'
    else
      r=1; m+="  node $w's program (waiting for M): exit $code, expected ENOLCK (exit 1, status 37)"$'\n'
      m+=$(show_outputs "$dir" mutex $w)$'\n'
    fi
  else
    r=1; m+="  node $w's waiting EX on M had not completed 8 s after the cut"$'\n'
  fi
  local probe_ms=1000
  limit=5 on "$dir" sync "$v" probe "$work/bin/partition" probe rec-mutex M $probe_ms "$dir/sync/mutex.log"
  wait_all 4 "${P[probe,$v]}"
  if [ -n "$hp" ] && is_proc "$hp" recover; then
    m+="  node $v's holder of M (pid $hp) still alive $(( ($(now) - t0) / 1000000 )) ms after the cut"$'\n'
  else
    r=1; m+="  node $v's holder of M (pid ${hp:-?}) was ended: self_fence=log must only log"$'\n'
    m+=$(show_outputs "$dir" mutex $v)$'\n'
  fi
  if exited "${P[probe,$v]}"; then
    waitcode "${P[probe,$v]}"
    case $code in
      4|5) m+="  a new EX on M on node $v, $probe_ms ms: not granted: $(cat "$dir/out/probe-$v.txt")"$'\n' ;;
      *) r=1; m+="  a new EX on M on node $v during the partition: exit $code: $(cat "$dir/out/probe-$v.txt")"$'\n' ;;
    esac
  else
    r=1; m+="  the probe on node $v did not end"$'\n'
  fi
  local s; s=$(status_of "$dir" $v)
  [[ $s == *'"state":"running"'* ]] && { r=1; m+="  node $v still reports \"state\":\"running\" while cut off"$'\n'; }
  local fence_log
  fence_log=$(for k in $minority; do grep -iE "fenc|majority|quorum|dropped|ending" "$dir/n$k/udlmd.log" | sed "s/^/node $k: /"; done)
  [ -n "$fence_log" ] && m+="  minority logs:"$'\n'$(indent <<< "$fence_log")$'\n'
  result "$name" $r "$m"
  [ $r = 0 ] && [ -z "${VERBOSE:-}" ] || node_logs "$dir"
  stop_event "$dir"
  links all up > /dev/null 2>&1
}

# ---------------------------------------------------------------------------

mkdir -p "$work/lib" "$work/bin"
for f in udlmd udlm libdlm.so; do
  [ -f "$rel/$f" ] || { echo "no $rel/$f: build first (cargo build --release --workspace)"; exit 1; }
done
cp "$rel/libdlm.so" "$work/lib/libdlm.so.3" && cp "$rel/udlmd" "$rel/udlm" "$work/bin/" || exit 1
cc -O1 -g -Wall -I"$top/include" -o "$work/bin/recover" "$top/cluster-tests/recover.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1
cc -O1 -g -Wall -o "$work/bin/mutex_check" "$top/cluster-tests/mutex_check.c" || exit 1
cc -O1 -g -Wall -I"$top/include" -o "$work/bin/partition" "$top/cluster-tests/partition.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1
deadline_ms=$((peer_timeout_ms + lease_ms + 4000))

setup_net || skip "cannot create network namespaces and veth links (ip netns add / ip link add failed)"
ip netns exec "$(ns 1)" true 2>/dev/null || skip "cannot run programs in a network namespace (ip netns exec failed)"
can_reach 1 2 || { echo "the namespaces' network does not work (node 1 cannot reach node 2)"; exit 1; }
write_config > "$work/check.conf"
if ! out=$("$work/bin/udlm" config check "$work/check.conf" 2>&1); then
  echo "NOTE: this build's udlm rejects the test config; every node start below will fail:"
  echo "$out" | indent
fi

partition_event "1 2" 1 1
partition_event "4 5" 4 1
log_event

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
