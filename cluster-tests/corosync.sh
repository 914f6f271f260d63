#!/usr/bin/env bash
# corosync as udlm's membership and quorum source (src/node/corosync.rs):
# a real corosync cluster of 3 nodes on one machine, each node in a network
# namespace (its corosync, with its own /run and /var/lib/corosync, and its
# udlmd built with the `corosync` feature), the namespaces joined by a
# bridge on 10.78.<n>.0/24. udlm's config has no node lines: the nodes come
# from corosync. Then node 3's corosync stops (udlm's own connections stay
# up): node 3 loses quorum and fences itself, the others recover its lock
# without it; its corosync comes back: node 3 rejoins and locks again.
#
# Needs root, ip netns and corosync with its development libraries (the
# script installs corosync, libcpg-dev, libquorum-dev and libcmap-dev with
# apt-get when missing); prints "SKIP: why" and exits 0 where they cannot
# be had. Builds udlmd with `--features corosync` into
# $COROSYNC_TARGET_DIR (default target/corosync).
#
# Prints one "PASS name" / "FAIL name" line per step and "N passed, N
# failed"; exits non-zero on any failure. KEEP=1 keeps the work directory.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || exit 1
cstarget=${COROSYNC_TARGET_DIR:-$top/target/corosync}
pass=0 fail=0
lease_ms=3000
skip() { echo "SKIP: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "corosync.sh needs root (network namespaces)"
command -v ip > /dev/null || skip "no ip command (iproute2)"
if ! command -v corosync > /dev/null || [ ! -e /usr/include/corosync/cpg.h ] ||
   [ ! -e /usr/include/corosync/quorum.h ] || [ ! -e /usr/include/corosync/cmap.h ]; then
  echo "installing corosync, libcpg-dev, libquorum-dev, libcmap-dev"
  { command -v apt-get > /dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y corosync libcpg-dev libquorum-dev libcmap-dev > /dev/null 2>&1; } ||
    skip "corosync and its development libraries cannot be installed here (apt-get install corosync libcpg-dev libquorum-dev libcmap-dev failed)"
fi
# (A corosync the package may have started on the host is not ours: ours
# run inside the namespaces, where each udlmd reaches only its own.)
echo "building udlmd with --features corosync"
CARGO_TARGET_DIR=$cstarget cargo build --release --quiet -p udlm --features corosync \
  --bin udlmd --bin udlm --manifest-path "$top/Cargo.toml" || { echo "FAIL build with --features corosync"; exit 1; }
csbin=$cstarget/release

work=$(mktemp -d)
tag=$$
net=10.78.$((tag % 250))
br=ucb$tag
made_ns=()
declare -A CSPID

ns() { echo "ucs$tag-$1"; }

cleanup() {
  local k p
  for k in 1 2 3; do
    p=$(cat "$work/n$k/udlmd.pid" 2>/dev/null) && kill "$p" 2>/dev/null
    p=$(cat "$work/cs$k.pid" 2>/dev/null) && kill "$p" 2>/dev/null
  done
  for p in "$work"/sync/pid-*; do [ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null; done
  sleep 0.5
  for k in 1 2 3; do
    p=$(cat "$work/n$k/udlmd.pid" 2>/dev/null) && kill -KILL "$p" 2>/dev/null
    p=$(cat "$work/cs$k.pid" 2>/dev/null) && kill -KILL "$p" 2>/dev/null
  done
  for n in "${made_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  ip link del "$br" 2>/dev/null
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

indent() { sed 's/^/    /'; }
now_ms() { date +%s%3N; }
failed() {
  echo "FAIL $1"; fail=$((fail + 1))
  for k in 1 2 3; do
    echo "  node $k: udlmd.log:"; grep -v '^udlm-net' "$work/n$k/udlmd.log" 2>/dev/null | tail -15 | indent
  done
  echo "$pass passed, $fail failed"
  exit 1
}
passed() { echo "PASS $1"; pass=$((pass + 1)); }

mkdir -p "$work/lib" "$work/sync"
cp "$rel/libdlm.so" "$work/lib/libdlm.so.3" || exit 1
cc -O1 -g -Wall -I"$top/include" -o "$work/holdlock" "$top/cluster-tests/holdlock.c" \
   -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT || exit 1

ip link add "$br" type bridge 2>/dev/null && ip link set "$br" up ||
  skip "cannot create a bridge and network namespaces (ip link add type bridge failed)"
for k in 1 2 3; do
  ip netns add "$(ns $k)" || skip "cannot create network namespaces (ip netns add failed)"
  made_ns+=("$(ns $k)")
  ip -n "$(ns $k)" link set lo up
  ip link add "uc$tag$k" type veth peer name eth0 netns "$(ns $k)" || skip "cannot create veth links"
  ip link set "uc$tag$k" master "$br" up
  ip -n "$(ns $k)" addr add "$net.$k/24" dev eth0
  ip -n "$(ns $k)" link set eth0 up
done

for k in 1 2 3; do
  mkdir -p "$work/cs$k-state" "$work/n$k"
  {
    echo "totem {"
    echo "  version: 2"
    echo "  cluster_name: udlmcs$tag"
    echo "  transport: knet"
    echo "  crypto_cipher: none"
    echo "  crypto_hash: none"
    echo "  token: 1000"
    echo "}"
    echo "nodelist {"
    for j in 1 2 3; do
      echo "  node {"
      echo "    ring0_addr: $net.$j"
      echo "    nodeid: $j"
      echo "  }"
    done
    echo "}"
    echo "quorum {"
    echo "  provider: corosync_votequorum"
    echo "}"
    echo "logging {"
    echo "  to_stderr: yes"
    echo "  to_syslog: no"
    echo "  to_logfile: no"
    echo "}"
  } > "$work/cs$k.conf"
done
# udlm's config: no node lines, those come from corosync.
printf 'cluster_name=cstest\nport=%s\nheartbeat_ms=200\npeer_timeout_ms=1000\nlease_ms=%s\n' \
  $((20000 + RANDOM % 20000)) "$lease_ms" > "$work/dlm.conf"

start_corosync() { # k: in the node's namespace, with a private /run and state directory
  ( ip netns exec "$(ns $1)" unshare -m bash -c \
      "mount -t tmpfs none /run && mount --bind '$work/cs$1-state' /var/lib/corosync &&
       echo \$\$ > '$work/cs$1.pid' && exec corosync -f -c '$work/cs$1.conf'" \
      >> "$work/cs$1.log" 2>&1 & )
  for _ in $(seq 50); do [ -s "$work/cs$1.pid" ] && return 0; sleep 0.1; done
  return 1
}
start_udlmd() { # k
  ip netns exec "$(ns $1)" env DLM_RUN_DIR="$work/n$1" DLM_CONF="$work/dlm.conf" \
    timeout 10 "$csbin/udlmd" --daemonize
}
u() { # k args...
  local k=$1; shift
  ip netns exec "$(ns $k)" env DLM_RUN_DIR="$work/n$k" timeout 10 "$csbin/udlm" "$@"
}
hold() { # k res mode mark
  ( ip netns exec "$(ns $1)" env DLM_RUN_DIR="$work/n$1" LD_LIBRARY_PATH="$work/lib" SYNC_DIR="$work/sync" \
      DLM_DAEMON="$csbin/udlmd" timeout -k 2 120 "$work/holdlock" hold "$2" "$3" "$4" > "$work/hold-$4.txt" 2>&1
    exit $? ) 2>/dev/null &
}
try() { # k res mode -> 0 granted, 11 busy
  ip netns exec "$(ns $1)" env DLM_RUN_DIR="$work/n$1" LD_LIBRARY_PATH="$work/lib" \
    DLM_DAEMON="$csbin/udlmd" timeout 20 "$work/holdlock" try "$2" "$3"
}
wait_file() { local end=$((SECONDS + $2)); while [ ! -e "$1" ]; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done; }
quorate_cs() { # k: corosync in node k is quorate with 3 nodes
  ip netns exec "$(ns $1)" corosync-quorumtool -s 2>/dev/null | grep -q "^Quorate: *Yes"
}
# formed SECONDS k...: those nodes run generation members = exactly them
formed() {
  local end=$((SECONDS + $1)); shift
  local all k s
  all=$(echo "$@" | tr ' ' ',')
  while :; do
    for k in "$@"; do
      s=$(u "$k" --json status 2>/dev/null | tr -d ' \n\t')
      [[ $s == *"\"members\":[$all],\"state\":\"running\""* ]] || break
      [ "$k" = "${*: -1}" ] && return 0
    done
    if [ $SECONDS -ge $end ]; then
      echo "  nodes $* did not form a udlm cluster; node $k says:"; u "$k" status 2>&1 | indent; return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------
name="3 corosync nodes in namespaces; udlm takes its nodes, quorum and liveness from them"
for k in 1 2 3; do start_corosync $k || { echo "  corosync $k did not start"; cat "$work/cs$k.log"; failed "$name"; }; done
for _ in $(seq 100); do quorate_cs 1 && quorate_cs 3 && break; sleep 0.2; done
quorate_cs 1 || { echo "  corosync is not quorate:"; ip netns exec "$(ns 1)" corosync-quorumtool -s 2>&1 | indent; failed "$name"; }
for k in 1 2 3; do start_udlmd $k || failed "$name"; done
formed 20 1 2 3 || failed "$name"
s=$(u 1 status)
echo "$s" | grep '^membership:' | indent
[[ $s == *"membership: corosync"*"quorum: corosync votequorum"* ]] || { echo "$s" | indent; failed "$name"; }
[[ $s == *"$net.3:"* ]] || { echo "  node 3's address does not come from corosync:"; echo "$s" | indent; failed "$name"; }
out=$(u 1 reload 2>&1) || { echo "  udlm reload: $out"; failed "$name"; }
[[ $out == *"nodes added:   none"*"nodes removed: none"*"nodes moved:   none"* ]] ||
  { echo "  a reload with corosync's unchanged node list changed something:"; echo "$out" | indent; failed "$name"; }
passed "$name"

# ---------------------------------------------------------------------------
name="node 3 leaves corosync: it fences itself, the others recover its lock (udlm's connections stay up)"
hold 3 r ex a; wait_file "$work/sync/granted-a" 10 || { cat "$work/hold-a.txt"; failed "$name"; }
hold 1 r ex b
sleep 0.5
[ -e "$work/sync/granted-b" ] && { echo "  node 1 got r beside node 3"; failed "$name"; }
pa=$(cat "$work/sync/pid-a")
t0=$(now_ms)
kill "$(cat "$work/cs3.pid")"
t_a="" t_b=""
for _ in $(seq 300); do
  [ -z "$t_a" ] && ! kill -0 "$pa" 2>/dev/null && t_a=$(now_ms)
  [ -z "$t_b" ] && [ -e "$work/sync/granted-b" ] && t_b=$(now_ms)
  [ -n "$t_a" ] && [ -n "$t_b" ] && break
  sleep 0.05
done
[ -n "$t_a" ] || { echo "  node 3's holder was not ended"; failed "$name"; }
[ -n "$t_b" ] || { echo "  node 1's request was not granted"; failed "$name"; }
echo "  corosync of node 3 stopped at 0 ms; node 3's holder ended at $((t_a - t0)) ms; node 1 granted at $((t_b - t0)) ms"
[ "$t_a" -le "$t_b" ] || { echo "  node 1 was granted r before node 3's holder was gone"; failed "$name"; }
s=$(u 1 --json status | tr -d ' \n\t')
[[ $s =~ \{\"id\":3,[^}]*\"connected\":true ]] || { echo "  udlm's connection to node 3 dropped (the test wants it up)"; failed "$name"; }
formed 10 1 2 || failed "$name"
grep -q "not quorate" "$work/n3/udlmd.log" || { echo "  node 3 never said it lost quorum"; failed "$name"; }
passed "$name"

# ---------------------------------------------------------------------------
name="node 3's corosync comes back: node 3 rejoins udlm and locks"
touch "$work/sync/release-b"
start_corosync 3 || failed "$name"
formed 30 1 2 3 || failed "$name"
hold 3 r2 ex c; wait_file "$work/sync/granted-c" 10 || { cat "$work/hold-c.txt"; failed "$name"; }
try 1 r2 ex; rc=$?
[ $rc = 11 ] || { echo "  node 1 got r2 (status $rc) while node 3 holds it"; failed "$name"; }
touch "$work/sync/release-c"
passed "$name"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
