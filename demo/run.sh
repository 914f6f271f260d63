#!/usr/bin/env bash
# The udlm demo: a three-node cluster on this machine (each node a udlmd on
# 127.0.0.<id>, configured by one dlm.conf), and on each node an unmodified
# libdlm program. They pass an EX lock around; whoever holds it adds one to a
# counter kept in the lock's value block, which travels between the nodes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$top/target/release
work=$(mktemp -d)
stop() {
  for p in "$work"/node*/udlmd.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT
mkdir -p "$work/lib" "$work/sync"
ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
cc -O2 -Wall -I"$top/include" -o "$work/baton" "$top/demo/baton.c" -L"$work/lib" -l:libdlm.so.3 -pthread -D_REENTRANT
port=$((20000 + RANDOM % 20000))
cat > "$work/dlm.conf" <<CONF
# a three-node udlm cluster on loopback
cluster_name=demo
node id=1 addr=127.0.0.1 port=$port
node id=2 addr=127.0.0.2 port=$port
node id=3 addr=127.0.0.3 port=$port
CONF
echo "Starting three udlm nodes (127.0.0.1, .2, .3, port $port) from this config:"
sed 's/^/    /' "$work/dlm.conf"
for k in 1 2 3; do
  mkdir -p "$work/node$k"
  DLM_RUN_DIR=$work/node$k DLM_NODEID=$k DLM_CONF=$work/dlm.conf "$rel/udlmd" --daemonize
done
echo
echo "On each node a player joins lockspace \"demo\" and passes the EX lock \"baton\" around."
echo "The holder adds one to the counter in the lock value block, then converts down to NL,"
echo "which publishes the value to whoever gets the lock next, on whichever node."
echo
pids=()
k=0
for who in alice bob carol; do
  k=$((k + 1))
  DLM_RUN_DIR=$work/node$k DLM_NODEID=$k DLM_CONF=$work/dlm.conf LD_LIBRARY_PATH=$work/lib \
    DEMO_SYNC=$work/sync "$work/baton" "$who@node$k" 4 3 & pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo
if [ $rc = 0 ]; then
  echo "Done: 3 players on 3 nodes, 4 rounds each; the counter reached 12."
else
  echo "A player failed."
fi
exit $rc
