#!/usr/bin/env bash
# Every single-node rule must hold when the master is another node: runs the
# capi-tests scenarios on node 1 of a two-node cluster whose config masters
# every resource of every lockspace on node 2 (`lockspace name=* nodir=1`,
# `master ls=* node=2`).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$(cd "${LIBDIR:-$top/target/release}" && pwd)
work=$(mktemp -d)
trap 'kill $(cat "$work"/n*/udlmd.pid 2>/dev/null) 2>/dev/null; sleep 0.3; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
cat > "$work/dlm.conf" <<CONF
cluster_name=remote_master
heartbeat_ms=200
peer_timeout_ms=2000
node id=1 addr=127.0.0.1 port=$port
node id=2 addr=127.0.0.2 port=$port
lockspace name=* nodir=1
master ls=* node=2
CONF
mkdir -p "$work/n2"
DLM_RUN_DIR=$work/n2 DLM_NODEID=2 DLM_CONF=$work/dlm.conf "$rel/udlmd" --daemonize || exit 1
export DLM_CONF=$work/dlm.conf DLM_NODEID=1 UDLM_REMOTE_MASTER=1
bash "$top/capi-tests/run.sh" --libdir "$rel" "$@"
