#!/usr/bin/env bash
# udlm side by side with what people use instead for a lock across machines:
# Redis, etcd and ZooKeeper, each with its standard lock recipe, and udlm as
# a 3-node cluster whose lock master is another node than the client's.
# Every system runs on this machine, on loopback only, one after the other,
# and gets the same three workloads from a client written in C
# (bench/compare/*.c; the loops are shared, driver.h):
#   1. one client, sequential acquire+release of one name: p50 and p99;
#   2. 8 client processes, each locking names of its own: pairs per second;
#   3. 4 client processes on one name, each acquire, release, repeat:
#      acquisitions (handovers) per second.
# Beside them the floors measured in the same run: a TCP loopback round
# trip (bench/pingpong.c) and an uncontended in-process pthread mutex.
#
# usage: bench/compare/run.sh [--no-install]
# It installs what is missing from the distribution's packages (Debian:
# redis-server, etcd-server, etcd-client, zookeeper, libzookeeper-mt-dev,
# gnuplot-nox, gcc) with apt-get when run as root, builds udlm (cargo build
# --release) if the release build is missing, starts each server itself as a
# child on 127.0.0.x with its data in a temporary directory, and stops every
# process it started by pid on exit, Ctrl-C included. No system service is
# used or touched.
# The systems take turns: REPEAT rounds, each starting every system afresh,
# measuring it and stopping it, so that a change of load on the machine
# falls on all alike; each figure is the median of the rounds.
# Output: a Markdown table on stdout; in OUT (default bench/compare/results)
# results.csv, table.md, compare.png (gnuplot) and the run's logs.
# Knobs (environment): LIBDIR (udlm's libdlm.so and udlmd; default
# $CARGO_TARGET_DIR/release or target/release), ITERS (3000), WARMUP (300),
# LAT_SECS (10: the latency run stops after this long, for slow systems),
# SECS (3: seconds of each multi-client run, after 0.5 s of warm-up),
# REPEAT (3 rounds), SYSTEMS ("udlm redis etcd zookeeper"), ZK_SERVERS (3,
# or 1 on a single CPU), OUT, MAX_LOAD (1.5) and LOAD_WAIT (300: wait up to
# LOAD_WAIT seconds for the 1-minute load average to fall below MAX_LOAD
# before starting; the table says when it did not), UDLM_WAIT=1 (udlm's
# client uses dlm_ls_lock_wait instead of poll + dlm_dispatch).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ITERS=${ITERS:-3000}
WARMUP=${WARMUP:-300}
LAT_SECS=${LAT_SECS:-10}
SECS=${SECS:-3}
REPEAT=${REPEAT:-3}
SYSTEMS=${SYSTEMS:-udlm redis etcd zookeeper}
OWN_CLIENTS=8
ONE_CLIENTS=4
OUT=${OUT:-$here/results}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT=${LOAD_WAIT:-300}
INSTALL=1
case "${1:-}" in
  --no-install) INSTALL=0;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0;;
  *) echo "compare: unknown argument $1" >&2; exit 2;;
esac
# Three ZooKeeper servers (three JVMs) fit on two CPUs; on one they would
# mostly measure the scheduler, so one server there.
if [ -z "${ZK_SERVERS:-}" ]; then
  if [ "$(nproc)" -ge 2 ]; then ZK_SERVERS=3; else ZK_SERVERS=1; fi
fi
has() { [[ " $SYSTEMS " == *" $1 "* ]]; }
say() { echo "compare: $*" >&2; }

# ---------------------------------------------------------------- packages
need=(gcc gnuplot-nox)
has redis && need+=(redis-server)
has etcd && need+=(etcd-server etcd-client)
has zookeeper && need+=(zookeeper libzookeeper-mt-dev)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ $INSTALL = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    say "installing ${missing[*]}"
    # Debian's packages may try to start their own services: there is no
    # need for them (every server here is started by this script, on its
    # own ports), and they are left as they are.
    apt-get update -qq > /dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null || {
      say "apt-get install ${missing[*]} failed"; exit 1; }
  else
    say "missing packages: ${missing[*]} (install them, or run as root without --no-install)"; exit 1
  fi
fi

# ---------------------------------------------------------------- udlm
if [ -n "${LIBDIR:-}" ]; then
  rel=$(cd "$LIBDIR" && pwd) || { say "no directory $LIBDIR"; exit 2; }
else
  rel=${CARGO_TARGET_DIR:-$top/target}/release
  if has udlm && { [ ! -e "$rel/libdlm.so" ] || [ ! -e "$rel/udlmd" ]; }; then
    say "no release build in $rel: cargo build --release --workspace"
    (cd "$top" && cargo build --release --workspace) || exit 1
  fi
fi
if has udlm; then
  for f in libdlm.so udlmd; do
    [ -e "$rel/$f" ] || { say "$rel/$f is missing (run make build)"; exit 2; }
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/udlm-compare.XXXXXX")
mkdir -p "$OUT"
pids=()   # every server process started here: "pid:name"

# stop_pid PID NAME: stop one process we started, if it is still the one we
# started (its command line names it), then wait for it to go.
stop_pid() {
  local pid=$1 name=$2
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name" || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}
stop_all() {
  local e
  for e in "${pids[@]}"; do stop_pid "${e%%:*}" "${e#*:}"; done
  pids=()
}
client=    # the benchmark client running now (a timeout process)
cleanup() {
  [ -n "$client" ] && kill "$client" 2>/dev/null && wait "$client" 2>/dev/null
  stop_all
  # The logs of the servers stay in OUT/logs; the data directories go.
  mkdir -p "$OUT/logs" && cp "$work"/*.log "$OUT/logs/" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg NAME LOG cmd...: start a server in the background, remember it.
start_bg() {
  local name=$1 log=$2; shift 2
  "$@" > "$log" 2>&1 &
  pids+=("$!:$name")
}

# A block of 40 free ports (nothing listening) for this run's servers.
pick_ports() {
  local b
  for _ in $(seq 1 50); do
    b=$((20000 + (RANDOM % 400) * 100))
    ss -Htan 2>/dev/null | awk '{print $4}' | grep -qE ":($b|$((b + 1))[0-9]|$((b + 2))[0-9]|$((b + 3))[0-9])\$" || { echo "$b"; return; }
  done
  echo $((20000 + (RANDOM % 400) * 100))
}
base=$(pick_ports)

# ---------------------------------------------------------------- clients
bin=$work/bin
mkdir -p "$bin" "$work/lib"
CFLAGS="-O2 -Wall -Wextra"
cc $CFLAGS -o "$bin/pingpong" "$top/bench/pingpong.c" || exit 1
cc $CFLAGS -o "$bin/mutex" "$here/mutex.c" -pthread || exit 1
if has udlm; then
  ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
  cc $CFLAGS -I"$top/include" -o "$bin/udlm" "$here/udlm.c" -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1
  # The library must never start a daemon of its own here.
  printf '#!/bin/sh\necho "compare: a library call tried to start udlmd" >&2\nexit 1\n' > "$bin/no-daemon"
  chmod +x "$bin/no-daemon"
fi
if has redis; then cc $CFLAGS -o "$bin/redis" "$here/redis.c" || exit 1; fi
if has etcd; then cc $CFLAGS -o "$bin/etcd" "$here/etcd.c" || exit 1; fi
if has zookeeper; then cc $CFLAGS -o "$bin/zk" "$here/zk.c" -lzookeeper_mt -pthread || exit 1; fi

# ---------------------------------------------------------------- helpers
# val FILE NAME KEY: KEY's value on the "result NAME ..." line of FILE
val() {
  awk -v n="$2" -v k="$3" '$1 == "result" && $2 == n { for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }' "$1"
}
fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "?"; else if (v + 0 >= 1000) printf "%.0f", v; else if (v + 0 >= 10) printf "%.1f", v; else printf "%.2f", v }'; }
# Thousands separators for the table.
num() { fmt "$1" | sed ':a; s/^\([0-9]\{1,\}\)\([0-9]\{3\}\)/\1,\2/; ta'; }
# A rate: whole numbers, with separators.
rate() { awk -v v="$1" 'BEGIN { if (v == "") print "?"; else printf "%.0f", v }' | sed ':a; s/^\([0-9]\{1,\}\)\([0-9]\{3\}\)/\1,\2/; ta'; }

# run_once LABEL OUT cmd...: one run of a client, its output in OUT. A run
# that fails is tried once more, and the failure is written in the notes of
# the table; a second failure fails the figure.
run_once() {
  local label=$1 out=$2; shift 2
  local try rc
  for try in 1 2; do
    say "  $label$( [ $try = 2 ] && echo ', again')"
    # In the background with wait, so that a signal ends the run at once
    # (cleanup stops this client too).
    timeout 300 "$@" > "$out" 2> "$out.err" &
    client=$!
    wait "$client"
    rc=$?
    client=
    [ $rc = 0 ] && return 0
    say "$label failed (exit $rc):"; tail -3 "$out.err" >&2
    # The whole of what the failed client said goes to OUT/logs.
    cp "$out.err" "$work/failed-$(basename "$out")-try$try.log" 2>/dev/null
    echo "- $label failed (exit $rc: $(grep -v '^$' "$out.err" | tail -1 | cut -c1-200)); $( [ $try = 1 ] && echo "run again" || echo "failed again, no figure")" >> "$work/notes"
  done
  return 1
}

# pick OUT NAME:KEY: of the runs OUT.1 .. OUT.REPEAT, copy the one whose KEY
# is the median to OUT; OUT.runs gets every run's KEY in order of size.
pick() {
  local out=$1 metric=$2 i vals=()
  for i in $(seq 1 "$REPEAT"); do
    [ -f "$out.$i" ] || return 1
    vals+=("$(val "$out.$i" "${metric%%:*}" "${metric#*:}") $i")
  done
  local sorted sel
  sorted=$(printf '%s\n' "${vals[@]}" | sort -g)
  sel=$(echo "$sorted" | sed -n "$(( (REPEAT + 1) / 2 ))p" | cut -d' ' -f2)
  cp "$out.$sel" "$out"
  echo "$sorted" | cut -d' ' -f1 | paste -sd' ' > "$out.runs"
}

# workloads SYS R cmd...: round R of the three workloads, with client
# command cmd (the client binary and its TARGET): $work/SYS.{lat,own,one}.R
workloads() {
  local sys=$1 r=$2; shift 2
  run_once "$sys: latency, 1 client" "$work/$sys.lat.$r" "$@" latency "$ITERS" "$WARMUP" "$LAT_SECS" || return 1
  run_once "$sys: $OWN_CLIENTS clients, own names" "$work/$sys.own.$r" "$@" own "$OWN_CLIENTS" "$SECS" || return 1
  run_once "$sys: $ONE_CLIENTS clients, one name" "$work/$sys.one.$r" "$@" one "$ONE_CLIENTS" "$SECS" || return 1
}

# failed SYS: a system that failed; the others still run
failed_systems=
failed() { failed_systems="$failed_systems $1"; say "$1: failed, going on with the others"; }
is_failed() { [[ " $failed_systems " == *" $1 "* ]]; }

# wait_for SECONDS cmd...: retry cmd every 0.2 s until it succeeds
wait_for() {
  local secs=$1; shift
  for _ in $(seq 1 $((secs * 5))); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

# Each start_SYS starts that system's servers afresh (new data directories)
# and defines how its client reaches them; stop_all stops them.

# udlm: three udlmd on 127.0.0.1-3, one run directory and node id each (as
# in bench/run.sh). The lockspace "compare" is statically mastered on node
# 2 (nodir=1 + master), so every name the clients lock on node 1 is
# mastered on another node: each acquire and release crosses the network.
start_udlm() {
  rm -rf "$work"/udlm[123]
  cat > "$work/udlm.conf" <<CONF
cluster_name=compare
node id=1 addr=127.0.0.1 port=$base
node id=2 addr=127.0.0.2 port=$base
node id=3 addr=127.0.0.3 port=$base
lockspace name=compare nodir=1
master ls=compare node=2
CONF
  local k
  for k in 1 2 3; do
    mkdir -p "$work/udlm$k"
    DLM_RUN_DIR=$work/udlm$k DLM_NODEID=$k DLM_CONF=$work/udlm.conf "$rel/udlmd" --daemonize || {
      say "udlmd (node $k) did not start"; cat "$work/udlm$k/udlmd.log" >&2; return 1; }
    pids+=("$(tr -dc 0-9 < "$work/udlm$k/udlmd.pid"):udlmd")
  done
  for k in 1 2 3; do
    wait_for 20 sh -c "[ \$(grep -c 'is up' '$work/udlm$k/udlmd.log') -ge 2 ]" || { say "udlm node $k: peers not up"; return 1; }
  done
}
# udlm_client ID: the command, in array ucmd, that runs the udlm client
# against node ID (env, not a function: run_once runs it under timeout)
udlm_client() {
  ucmd=(env -u DLM_EMBEDDED DLM_RUN_DIR="$work/udlm$1" DLM_CONF="$work/udlm.conf" DLM_NODEID="$1"
    DLM_DAEMON="$bin/no-daemon" LD_LIBRARY_PATH="$work/lib" "$bin/udlm" compare)
}
run_udlm() {
  udlm_client 1
  workloads udlm "$1" "${ucmd[@]}" || failed udlm
  # For reference, not the comparison: the same clients on node 2, the
  # master, as a client of Redis talks to the server that holds the lock.
  udlm_client 2
  workloads udlm_local "$1" "${ucmd[@]}" || failed udlm_local
  local k
  for k in 1 2 3; do cp "$work/udlm$k/udlmd.log" "$work/udlmd$k.log"; done
}

# Redis: one server, no config file: Redis's defaults, on loopback, without
# snapshots (udlm keeps its locks in memory only; a snapshot's fork would
# also disturb the timings).
start_redis() {
  rport=$((base + 1))
  rm -rf "$work/redis"; mkdir -p "$work/redis"
  start_bg redis-server "$work/redis.log" redis-server --bind 127.0.0.1 --port "$rport" --dir "$work/redis" \
    --save '' --appendonly no --daemonize no
  wait_for 20 redis-cli -h 127.0.0.1 -p "$rport" ping || { say "redis did not start"; cat "$work/redis.log" >&2; return 1; }
}
run_redis() { workloads redis "$1" "$bin/redis" "127.0.0.1:$rport" || failed redis; }

# etcd: three members, defaults otherwise (the write-ahead log is fsynced
# on every commit).
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints="$endpoints" "$@"; }
start_etcd() {
  local k cluster=
  endpoints=
  for k in 1 2 3; do cluster="$cluster${cluster:+,}m$k=http://127.0.0.1:$((base + 10 + k))"; done
  for k in 1 2 3; do
    endpoints="$endpoints${endpoints:+,}127.0.0.1:$((base + 20 + k))"
    rm -rf "$work/etcd$k"
    start_bg etcd "$work/etcd$k.log" etcd --name "m$k" --data-dir "$work/etcd$k" \
      --listen-client-urls "http://127.0.0.1:$((base + 20 + k))" --advertise-client-urls "http://127.0.0.1:$((base + 20 + k))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 10 + k))" --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + k))" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token compare \
      --logger zap --log-outputs stderr --log-level warn
  done
  wait_for 30 etcdctl_ endpoint health || { say "etcd did not start"; tail -5 "$work/etcd1.log" >&2; return 1; }
  # The clients talk to the leader: a follower would forward each request
  # to it, one more hop (the best case for etcd).
  leader=$(etcdctl_ endpoint status -w table | awk -F'|' '
    NR <= 3 { for (i = 1; i <= NF; i++) if ($i ~ /IS LEADER/) col = i }
    col && $col ~ /true/ { gsub(/ /, "", $2); print $2 }')
  [ -n "$leader" ] || { say "etcd: no leader found"; return 1; }
}
run_etcd() { workloads etcd "$1" "$bin/etcd" "$leader" || failed etcd; }

# ZooKeeper: ZK_SERVERS servers (an ensemble when more than one).
# zk_mode PORT: the server's mode (leader, follower, standalone) from the
# srvr four-letter command
zk_mode() {
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && cat <&3" 2>/dev/null | sed -n 's/^Mode: //p'
}
start_zookeeper() {
  # The Debian package's jar names its dependencies in its manifest.
  local zkjar=/usr/share/java/zookeeper.jar zklog= k j ok
  # Its warnings in the log (slf4j-simple comes with the package's
  # dependencies); without a binding slf4j would drop them.
  [ -f /usr/share/java/slf4j-simple.jar ] && zklog=:/usr/share/java/slf4j-simple.jar
  for k in $(seq 1 "$ZK_SERVERS"); do
    rm -rf "$work/zk$k"; mkdir -p "$work/zk$k"
    echo "$k" > "$work/zk$k/myid"
    {
      echo "tickTime=2000"
      echo "initLimit=10"
      echo "syncLimit=5"
      echo "dataDir=$work/zk$k"
      echo "clientPort=$((base + 30 + k))"
      echo "clientPortAddress=127.0.0.1"
      echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=srvr"
      if [ "$ZK_SERVERS" -gt 1 ]; then
        for j in $(seq 1 "$ZK_SERVERS"); do echo "server.$j=127.0.0.1:$((base + 40 + j)):$((base + 50 + j))"; done
      fi
    } > "$work/zk$k/zoo.cfg"
    # Small heaps, so that three JVMs fit; otherwise ZooKeeper's defaults
    # (the transaction log is fsynced before a write is acknowledged).
    start_bg QuorumPeerMain "$work/zookeeper$k.log" java -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -Dorg.slf4j.simpleLogger.showDateTime=true -cp "$zkjar$zklog" \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zk$k/zoo.cfg"
  done
  zkleader=
  for _ in $(seq 1 150); do
    for k in $(seq 1 "$ZK_SERVERS"); do
      case "$(zk_mode $((base + 30 + k)))" in leader|standalone) zkleader=127.0.0.1:$((base + 30 + k));; esac
    done
    if [ -n "$zkleader" ]; then
      # Every server of the ensemble answers (followers have joined).
      ok=0
      for k in $(seq 1 "$ZK_SERVERS"); do [ -n "$(zk_mode $((base + 30 + k)))" ] && ok=$((ok + 1)); done
      [ $ok = "$ZK_SERVERS" ] && break
    fi
    sleep 0.2
  done
  [ -n "$zkleader" ] || { say "zookeeper did not start"; tail -5 "$work/zookeeper1.log" >&2; return 1; }
  # A freshly formed ensemble can report its modes some seconds before it
  # commits a write (a write then waits out the client's timeout): wait
  # until a lock can be taken, each try cut short after 5 s.
  wait_for 60 timeout 5 "$bin/zk" "$zkleader" latency 1 0 1 || { say "zookeeper takes no writes"; return 1; }
}
# Like etcd: the clients talk to the leader.
run_zookeeper() { workloads zookeeper "$1" "$bin/zk" "$zkleader" || failed zookeeper; }

# ---------------------------------------------------------------- load
# Every process shares the machine's CPUs, so other work skews the figures:
# wait a while for the machine to quieten first.
load1() { cut -d' ' -f1 /proc/loadavg; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
waited=0
while ! below "$(load1)" "$MAX_LOAD" && [ $waited -lt "$LOAD_WAIT" ]; do
  [ $waited = 0 ] && say "load average $(cut -d' ' -f1-3 /proc/loadavg) is not below $MAX_LOAD; waiting up to $LOAD_WAIT s"
  sleep 10; waited=$((waited + 10))
done
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# ---------------------------------------------------------------- rounds
# REPEAT rounds; in each, every system is started afresh, measured and
# stopped in turn, so that a change in the machine's load during the run
# falls on every system alike rather than on one.
for r in $(seq 1 "$REPEAT"); do
  say "round $r of $REPEAT: floors"
  run_once "TCP loopback ping-pong" "$work/floor.tcp.$r" "$bin/pingpong" tcp 20000 2000 127.0.0.2 127.0.0.1 || exit 1
  run_once "pthread mutex" "$work/floor.mutex.$r" "$bin/mutex" 20000000 || exit 1
  for sys in udlm redis etcd zookeeper; do
    has "$sys" || continue
    is_failed "$sys" && continue
    say "round $r of $REPEAT: $sys (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$r $sys $(cut -d' ' -f1 /proc/loadavg)" >> "$work/loads"
    if "start_$sys"; then "run_$sys" "$r"; else failed "$sys"; fi
    stop_all
  done
done
pick "$work/floor.tcp" rtt_tcp:p50
pick "$work/floor.mutex" mutex:ns_per_pair
for sys in udlm udlm_local redis etcd zookeeper; do
  is_failed "$sys" && continue
  pick "$work/$sys.lat" latency:p50 && pick "$work/$sys.own" own:pairs_per_s && pick "$work/$sys.one" one:grants_per_s
done

# ---------------------------------------------------------------- report
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
fs=$(df -PT "$work" | awk 'NR == 2 { print $2 }')
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$top" diff --quiet HEAD -- src compat 2>/dev/null || commit="$commit (src/compat modified)"
# runs OUT [FORMAT]: " (runs: a; b; c)", every round's value of a figure
runs() { [ "$REPEAT" -gt 1 ] && [ -f "$1.runs" ] && echo " (runs: $(for v in $(cat "$1.runs"); do "${2:-num}" "$v"; echo; done | paste -sd';' | sed 's/;/; /g'))"; }

if [ "${UDLM_WAIT:-0}" = 1 ]; then how="dlm_ls_lock_wait + AST thread"; else how="dlm_ls_lock + poll + dlm_dispatch"; fi
recipe_udlm="libdlm EX lock/unlock ($how); 3 nodes, client on node 1, master node 2"
recipe_udlm_local="the same, client on node 2 (the master): for reference"
recipe_redis="SET NX PX + compare-and-delete Lua (EVALSHA); 1 server, no persistence; RESP over TCP"
recipe_etcd="v3 lock API (lease per client, /v3/lock/lock + unlock) via the JSON gateway; 3 members, client on the leader"
if [ "$ZK_SERVERS" -gt 1 ]; then zkset="$ZK_SERVERS-server ensemble"; else zkset="one server (a 3-server ensemble needs 2 CPUs)"; fi
recipe_zookeeper="ephemeral-sequential recipe, watch the predecessor (libzookeeper_mt); $zkset, client on the leader"

table=$work/table.md
{
  echo "# udlm compared with Redis, etcd and ZooKeeper"
  echo
  echo "- date: $started to $(date -u '+%H:%M:%S UTC'); udlm commit $commit"
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); data directories on $fs"
  echo "- load average at the start / end: $load_start$( [ $waited -gt 0 ] && echo " (after waiting $waited s)") / $(cut -d' ' -f1-3 /proc/loadavg)"
  below "${load_start%% *}" "$MAX_LOAD" || echo "- **the machine was busy**: the 1-minute load average was not below $MAX_LOAD when the runs began; expect lower figures than on an idle machine"
  echo "- 1-minute load average as each system started, rounds 1..$REPEAT: $(for sys in udlm redis etcd zookeeper; do
      l=$(awk -v s="$sys" '$2 == s { printf "%s%s", sep, $3; sep = ", " }' "$work/loads" 2>/dev/null); [ -n "$l" ] && printf '%s %s; ' "$sys" "$l"; done | sed 's/; $//')"
  echo "- versions: redis-server $(pkgver redis-server), etcd-server $(pkgver etcd-server), zookeeper $(pkgver zookeeper), libzookeeper-mt $(pkgver libzookeeper-mt2), java $(java -version 2>&1 | sed -n '1s/.*"\(.*\)".*/\1/p')"
  echo "- runs: latency $ITERS pairs after $WARMUP warm-up (at most ${LAT_SECS} s); multi-client ${SECS} s after 0.5 s warm-up; each figure the median of $REPEAT rounds"
  echo
  echo "| system | recipe, set-up | 1 client, acquire+release p50 / p99 (µs) | $OWN_CLIENTS clients, own names: pairs/s | $ONE_CLIENTS clients, one name: handovers/s |"
  echo "|---|---|---|---|---|"
  echo "| floor: TCP loopback round trip | 64 B ping-pong, TCP_NODELAY, 127.0.0.1 → 127.0.0.2 | $(fmt "$(val "$work/floor.tcp" rtt_tcp p50)") / $(fmt "$(val "$work/floor.tcp" rtt_tcp p99)") | — | — |"
  echo "| floor: in-process mutex | pthread_mutex_lock + unlock, uncontended | $(val "$work/floor.mutex" mutex ns_per_pair) ns | — | — |"
  csv=$work/results.csv
  echo "system,recipe,lat_p50_us,lat_p99_us,lat_n,own_pairs_per_s,one_handovers_per_s,one_changes_per_s,lat_p50_runs,own_runs,one_runs" > "$csv"
  echo "tcp_rtt,\"TCP loopback ping-pong\",$(val "$work/floor.tcp" rtt_tcp p50),$(val "$work/floor.tcp" rtt_tcp p99),$(val "$work/floor.tcp" rtt_tcp n),,,,\"$(cat "$work/floor.tcp.runs")\",," >> "$csv"
  echo "mutex,\"pthread mutex\",$(awk -v v="$(val "$work/floor.mutex" mutex ns_per_pair)" 'BEGIN { print v / 1000 }'),,,,,,,," >> "$csv"
  for sys in udlm udlm_local redis etcd zookeeper; do
    rv=recipe_$sys
    if [[ " $failed_systems " == *" $sys "* ]]; then
      echo "| $sys | ${!rv} | failed (notes below) | | |"
      continue
    fi
    [ -f "$work/$sys.one" ] || continue
    label=$sys
    case $sys in udlm) label="**udlm** (remote master)";; udlm_local) label="udlm, local master (reference)";; esac
    echo "| $label | ${!rv} | $(num "$(val "$work/$sys.lat" latency p50)") / $(num "$(val "$work/$sys.lat" latency p99)")$(runs "$work/$sys.lat") | $(rate "$(val "$work/$sys.own" own pairs_per_s)")$(runs "$work/$sys.own" rate) | $(rate "$(val "$work/$sys.one" one grants_per_s)")$(runs "$work/$sys.one" rate) |"
    echo "$sys,\"${!rv}\",$(val "$work/$sys.lat" latency p50),$(val "$work/$sys.lat" latency p99),$(val "$work/$sys.lat" latency n),$(val "$work/$sys.own" own pairs_per_s),$(val "$work/$sys.one" one grants_per_s),$(val "$work/$sys.one" one changes_per_s),\"$(cat "$work/$sys.lat.runs")\",\"$(cat "$work/$sys.own.runs")\",\"$(cat "$work/$sys.one.runs")\"" >> "$csv"
  done
  echo
  echo "Handovers: acquisitions per second with $ONE_CLIENTS clients looping on one name; the lock changed hands on"
  for sys in udlm udlm_local redis etcd zookeeper; do
    [ -f "$work/$sys.one" ] || continue
    echo "  $sys: $(val "$work/$sys.one" one changes) of $(val "$work/$sys.one" one grants) acquisitions (fewest/most by one client: $(val "$work/$sys.one" one min_client)/$(val "$work/$sys.one" one max_client)); mutual exclusion violated: $(val "$work/$sys.one" one violations) times"
  done
  if [ -f "$work/notes" ]; then echo; echo "Failures:"; cat "$work/notes"; fi
} > "$table"
cat "$table"
cp "$table" "$work/results.csv" "$OUT/"

# The chart (gnuplot from the distribution), from a plain data file: one
# row per system, the floors passed as variables.
{
  echo "# system lat_p50_us lat_p99_us own_pairs_per_s one_handovers_per_s"
  for sys in udlm udlm_local redis etcd zookeeper; do
    [ -f "$work/$sys.one" ] || continue
    case $sys in udlm) label="udlm (remote master)";; udlm_local) label="udlm (local master)";; *) label=$sys;; esac
    echo "\"$label\" $(val "$work/$sys.lat" latency p50) $(val "$work/$sys.lat" latency p99) $(val "$work/$sys.own" own pairs_per_s) $(val "$work/$sys.one" one grants_per_s)"
  done
} > "$OUT/chart.dat"
if command -v gnuplot > /dev/null; then
  if gnuplot -e "dat='$OUT/chart.dat'; png='$OUT/compare.png'; rtt=$(val "$work/floor.tcp" rtt_tcp p50); when='$(date -u +%Y-%m-%d)'; machine='$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed "s/^ *//; s/'//g")'" "$here/chart.gp" 2> "$work/gnuplot.log"; then
    say "chart: $OUT/compare.png"
  else
    say "gnuplot failed:"; cat "$work/gnuplot.log" >&2
  fi
fi
say "results: $OUT/results.csv, $OUT/table.md"
