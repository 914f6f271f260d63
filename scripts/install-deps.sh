#!/usr/bin/env bash
# Installs the system packages the tests and the demo need, if missing:
# Debian's libdlm (the reference header and library the drop-in proof builds
# against), dlm_tool, cbindgen (pinned: Debian bookworm's 0.24.3), a C compiler,
# iproute2 (network namespaces and veth pairs for cluster-tests/partition.sh),
# corosync and its client libraries' headers (cluster-tests/corosync.sh builds
# udlmd with --features corosync and runs corosync only inside namespaces).
set -euo pipefail
need=()
for pkg in libdlm-dev dlm-controld cbindgen gcc make mandoc pkg-config iproute2 \
    corosync libcpg-dev libquorum-dev libcmap-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
