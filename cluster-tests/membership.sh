#!/usr/bin/env bash
# Membership from outside (udlmd(8), CONTROL PROTOCOL), on one machine: a
# running 3-node cluster gains a 4th node and loses it again, has a port
# changed by a reload, refuses bad requests with a sentence, and recovers a
# node killed with SIGKILL well before its lease when told it is fenced.
#
# Nodes as in recovery.sh: each a `udlmd --daemonize` with its own
# DLM_RUN_DIR, DLM_NODEID and config file, on $MEMB_NET.<id> (default
# 127.0.3.x, away from the other scripts' addresses); locks are held and
# waited for by holdlock.c, built against include/libdlm.h and run with
# udlm's libdlm.so.3 first in LD_LIBRARY_PATH. The steps build on each
# other, so the first failure ends the run.
#
# Prints one "PASS name" / "FAIL name" line per step (details indented) and
# "N passed, N failed"; exits non-zero on any failure.
#
# Environment: LIBDIR (where udlmd, udlm and libdlm.so are; target/release),
# MEMB_NET (the first three octets of the nodes' addresses), KEEP=1 (keep
# the work directory, with the node logs), VERBOSE=1 (every lock attempt
# of the fenced step).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || exit 1
net=${MEMB_NET:-127.0.3}
work=$(mktemp -d)
# The refused-user check runs udlm as nobody, who must reach the socket.
chmod 755 "$work"
pass=0 fail=0
lease_ms=3000
declare -A PORT
base=$((20000 + RANDOM % 20000))
for k in 1 2 3 4; do PORT[$k]=$((base + k)); done
bg=()

cleanup() {
  local p
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done
  for p in "$work"/n*/udlmd.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  sleep 0.3
  for p in "$work"/n*/udlmd.pid; do [ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/lib" "$work/bin" "$work/sync"
chmod 777 "$work/sync"
for f in udlmd udlm libdlm.so; do
  [ -f "$rel/$f" ] || { echo "no $rel/$f: build first (cargo build --release --workspace)"; exit 1; }
done
cp "$rel/libdlm.so" "$work/lib/libdlm.so.3" && cp "$rel/udlmd" "$rel/udlm" "$work/bin/" || exit 1
cc -O1 -g -Wall -I"$top/include" -o "$work/bin/holdlock" "$top/cluster-tests/holdlock.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1

indent() { sed 's/^/    /'; }
now_ms() { date +%s%3N; }

failed() { # name: report, show the logs, stop
  echo "FAIL $1"; fail=$((fail + 1))
  for l in "$work"/n*/udlmd.log; do [ -f "$l" ] && { echo "  ${l#$work/}:"; tail -25 "$l" | indent; }; done
  echo "$pass passed, $fail failed"
  exit 1
}
passed() { echo "PASS $1"; pass=$((pass + 1)); }

write_conf() { # nodes... > file
  echo "cluster_name=membtest"
  echo "heartbeat_ms=200"
  echo "peer_timeout_ms=1000"
  echo "lease_ms=$lease_ms"
  for k in "$@"; do echo "node id=$k addr=$net.$k port=${PORT[$k]}"; done
}

start() { # k: the node's udlmd, with its own config file n<k>.conf
  mkdir -p "$work/n$1"; chmod 755 "$work/n$1"
  DLM_RUN_DIR=$work/n$1 DLM_NODEID=$1 DLM_CONF=$work/n$1.conf timeout 10 "$work/bin/udlmd" --daemonize ||
    { echo "  node $1 did not start"; return 1; }
}

stop() { # k: SIGTERM (the node says it leaves), wait until it is gone
  local p; p=$(cat "$work/n$1/udlmd.pid")
  kill "$p"
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p"
}

u() { # k args...: udlm on node k
  local k=$1; shift
  DLM_RUN_DIR=$work/n$k timeout 10 "$work/bin/udlm" "$@"
}

# expect_refusal NAME WORDS k args...: udlm fails (status 1) and its
# sentence contains WORDS
expect_refusal() {
  local what=$1 words=$2 out rc; shift 2
  out=$(u "$@" 2>&1); rc=$?
  if [ $rc != 1 ] || [[ $out != *"$words"* ]]; then
    echo "  $what: expected a refusal saying '$words', got status $rc: $out"
    return 1
  fi
  echo "  $what: $out"
}

# The subshell (its stderr to /dev/null, not exec'ing the last command)
# keeps bash's "Killed" notice for a SIGKILLed holder quiet.
hold() { # k res mode mark: in the background, until release-<mark>
  ( DLM_RUN_DIR=$work/n$1 DLM_NODEID=$1 LD_LIBRARY_PATH=$work/lib SYNC_DIR=$work/sync \
      DLM_DAEMON=$work/bin/udlmd timeout -k 2 120 "$work/bin/holdlock" hold "$2" "$3" "$4" \
      > "$work/hold-$4.txt" 2>&1
    exit $? ) 2>/dev/null &
  bg+=($!)
  printf -v "HOLD_$4" %s "$!"
}

try() { # k res mode -> 0 granted, 11 busy
  DLM_RUN_DIR=$work/n$1 DLM_NODEID=$1 LD_LIBRARY_PATH=$work/lib DLM_DAEMON=$work/bin/udlmd \
    timeout 20 "$work/bin/holdlock" try "$2" "$3"
}

wait_file() { # file seconds
  local end=$((SECONDS + $2))
  while [ ! -e "$1" ]; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}

# formed SECONDS k...: each listed node sees the others connected, exactly
# them as members, and no recovery under way
formed() {
  local end=$((SECONDS + $1)); shift
  local all k j s ok
  all=$(echo "$@" | tr ' ' ',')
  while :; do
    ok=1
    for k in "$@"; do
      s=$(u "$k" --json status 2>/dev/null | tr -d ' \n\t')
      [[ $s == *"\"members\":[$all],\"state\":\"running\""* ]] || { ok=0; break; }
      for j in "$@"; do
        [ "$j" = "$k" ] && continue
        [[ $s =~ \{\"id\":$j,[^}]*\"connected\":true ]] || { ok=0; break 2; }
      done
    done
    [ $ok = 1 ] && return 0
    if [ $SECONDS -ge $end ]; then
      echo "  nodes $* did not form a cluster within the time; node $k says:"; u "$k" status 2>&1 | indent
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------
name="3 nodes start; locks held on nodes 1 and 2, a request waits on node 3"
for k in 1 2 3; do write_conf 1 2 3 > "$work/n$k.conf"; done
write_conf 1 2 3 4 > "$work/n4.conf"
for k in 1 2 3; do start $k || failed "$name"; done
formed 20 1 2 3 || failed "$name"
hold 1 r1 ex a; wait_file "$work/sync/granted-a" 10 || failed "$name"
hold 2 r2 ex b; wait_file "$work/sync/granted-b" 10 || failed "$name"
hold 3 r1 pr c
sleep 0.5
[ -e "$work/sync/granted-c" ] && { echo "  node 3's PR was granted beside node 1's EX"; failed "$name"; }
u 1 status | grep -q '^membership: config file' ||
  { echo "  udlm status shows no membership line:"; u 1 status | indent; failed "$name"; }
passed "$name"

# ---------------------------------------------------------------------------
name="node 4 added at runtime joins; held locks and the waiting request survive"
# Nodes 1 and 3 are told first and node 4 starts: the generation that
# takes it in waits on node 2 until node 2 is told too.
for k in 1 3; do
  out=$(u $k node add 4 "$net.4" "${PORT[4]}" 2>&1) || { echo "  node add on node $k: $out"; failed "$name"; }
done
echo "  $out"
start 4 || failed "$name"
sleep 1
u 2 node add 4 "$net.4" "${PORT[4]}" > /dev/null || failed "$name"
formed 20 1 2 3 4 || failed "$name"
[ -e "$work/sync/granted-c" ] && { echo "  node 3's waiting PR was granted although node 1 holds EX"; failed "$name"; }
try 4 r1 ex; rc=$?
[ $rc = 11 ] || { echo "  node 4 got r1 (status $rc): node 1's EX was lost"; failed "$name"; }
try 4 r2 ex; rc=$?
[ $rc = 11 ] || { echo "  node 4 got r2 (status $rc): node 2's EX was lost"; failed "$name"; }
touch "$work/sync/release-a"
wait_file "$work/sync/granted-c" 10 ||
  { echo "  node 3's waiting request was not granted after node 1 released r1"; failed "$name"; }
hold 4 r4 ex d
wait_file "$work/sync/granted-d" 10 || { echo "  node 4 could not lock r4"; cat "$work/hold-d.txt"; failed "$name"; }
try 1 r4 ex; rc=$?
[ $rc = 11 ] || { echo "  node 1 got r4 (status $rc) while node 4 holds it"; failed "$name"; }
u 1 node list | indent
passed "$name"

# ---------------------------------------------------------------------------
name="bad requests are refused with a sentence saying why"
rc=0
expect_refusal "duplicate id" "already configured" 1 node add 2 "$net.9" || rc=1
expect_refusal "bad address" "bad address" 1 node add 5 300.1.2.3 || rc=1
expect_refusal "address taken" "already listens at" 1 node add 5 "$net.2" "${PORT[2]}" || rc=1
expect_refusal "unknown id" "not configured" 1 node remove 9 || rc=1
expect_refusal "local node" "is this node" 1 node remove 1 || rc=1
expect_refusal "running node" "is running" 1 node remove 4 || rc=1
expect_refusal "fenced but connected" "is not dead" 1 node fenced 4 || rc=1
expect_refusal "fenced, the local node" "is this node" 1 node fenced 1 || rc=1
out=$(u 1 --json node remove 9 2>/dev/null)
[[ $out == '{"error":"node 9 is not configured'* ]] || { echo "  --json refusal: $out"; rc=1; }
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  out=$(DLM_RUN_DIR=$work/n1 setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$work/bin/udlm" node list 2>&1); r=$?
  if [ $r != 1 ] || [[ $out != *"permission denied: only root and the user udlmd runs as"* ]]; then
    echo "  another user: status $r: $out"; rc=1
  else
    echo "  another user: $out"
  fi
else
  echo "  (not root: the refusal of another user is not tried)"
fi
[ $rc = 0 ] || failed "$name"
passed "$name"

# ---------------------------------------------------------------------------
name="node 4 killed with SIGKILL, declared fenced: recovery well before the lease"
p4=$(cat "$work/n4/udlmd.pid")
t0=$(now_ms)
kill -KILL "$p4" "$(cat "$work/sync/pid-d")" 2>/dev/null
# Until node 1 has seen the connection drop, it refuses (node 4 is connected).
for _ in $(seq 100); do
  out=$(u 1 node fenced 4 2>&1) && break
  sleep 0.02
done
t_fenced=$(now_ms)
echo "  $out"
got=""
for _ in $(seq 200); do
  try 1 r4 ex; rc=$?
  [ -n "${VERBOSE:-}" ] && echo "  try at $(( $(now_ms) - t0 )) ms: $rc"
  [ $rc = 0 ] && { got=$(now_ms); break; }
  sleep 0.02
done
[ -n "$got" ] || { echo "  node 1 never got r4 after node 4 was fenced"; failed "$name"; }
echo "  kill -9 at 0 ms; told fenced at $((t_fenced - t0)) ms; node 4's EX on r4 recovered at $((got - t0)) ms (lease_ms $lease_ms)"
[ $((got - t0)) -lt $((lease_ms * 2 / 3)) ] || { echo "  recovery did not come well before the lease"; failed "$name"; }
passed "$name"

# ---------------------------------------------------------------------------
name="dead node 4 removed on every node; the survivors keep their locks"
for k in 1 2 3; do
  out=$(u $k node remove 4 2>&1) || { echo "  node remove on node $k: $out"; failed "$name"; }
done
echo "  $out"
u 1 --json node list | grep -q '"id":4' && { echo "  node 4 is still listed"; failed "$name"; }
formed 20 1 2 3 || failed "$name"
try 1 r2 ex; rc=$?
[ $rc = 11 ] || { echo "  node 1 got r2 (status $rc): node 2's EX was lost"; failed "$name"; }
try 1 r1 ex; rc=$?
[ $rc = 11 ] || { echo "  node 1 got r1 (status $rc): node 3's PR was lost"; failed "$name"; }
passed "$name"

# ---------------------------------------------------------------------------
name="reload (udlm reload and SIGHUP) moves node 3 to another port"
touch "$work/sync/release-b" "$work/sync/release-c"
{ wait "$HOLD_b" "$HOLD_c"; } 2>/dev/null
stop 3
PORT[3]=$((base + 13))
for k in 1 2 3; do write_conf 1 2 3 > "$work/n$k.conf"; done
out=$(u 1 reload 2>&1) || { echo "  udlm reload: $out"; failed "$name"; }
echo "$out" | indent
[[ $out == *"nodes moved:   3"* ]] || { echo "  the reload did not move node 3"; failed "$name"; }
kill -HUP "$(cat "$work/n2/udlmd.pid")"
for _ in $(seq 50); do grep -q "SIGHUP: config reloaded" "$work/n2/udlmd.log" && break; sleep 0.1; done
grep "SIGHUP" "$work/n2/udlmd.log" | indent
grep -q 'SIGHUP: config reloaded.*"changed":\[3\]' "$work/n2/udlmd.log" || { echo "  SIGHUP did not reload node 2"; failed "$name"; }
start 3 || failed "$name"
formed 20 1 2 3 || failed "$name"
u 1 --json node list | grep -q "\"id\":3,\"address\":\"$net.3\",\"port\":${PORT[3]}" ||
  { echo "  node list does not show the new port:"; u 1 --json node list | indent; failed "$name"; }
hold 3 r5 ex e
wait_file "$work/sync/granted-e" 10 || { echo "  node 3 could not lock r5"; cat "$work/hold-e.txt"; failed "$name"; }
try 1 r5 ex; rc=$?
[ $rc = 11 ] || { echo "  node 1 got r5 (status $rc) while node 3 holds it"; failed "$name"; }
touch "$work/sync/release-e"
passed "$name"

# ---------------------------------------------------------------------------
name="a reload that would move this node itself is refused, nothing changed"
sed "s/^node id=1 .*/node id=1 addr=$net.1 port=$((base + 21))/" "$work/n1.conf" > "$work/n1.new" &&
  mv "$work/n1.new" "$work/n1.conf"
expect_refusal "own port" "cannot change while it runs" 1 reload || failed "$name"
write_conf 1 2 3 > "$work/n1.conf"
formed 10 1 2 3 || failed "$name"
passed "$name"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
