#!/usr/bin/env bash
# The udlm demo: three unmodified libdlm programs pass an EX lock and a
# counter in its lock value block around, through udlm's libdlm.so.3 and
# its node daemon (started on demand by the library).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rel=$top/target/release
work=$(mktemp -d)
trap 'kill $(cat "$work/run/udlmd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/lib" "$work/run"
ln -s "$rel/libdlm.so" "$work/lib/libdlm.so.3"
cc -O2 -Wall -I"$top/include" -o "$work/baton" "$top/demo/baton.c" -L"$work/lib" -l:libdlm.so.3 -pthread
export LD_LIBRARY_PATH=$work/lib DLM_RUN_DIR=$work/run DLM_DAEMON=$rel/udlmd
echo "Three processes share lockspace \"demo\" and pass the EX lock \"baton\" around."
echo "Each holder adds one to the counter kept in the lock value block."
echo
pids=()
for who in alice bob carol; do
  "$work/baton" "$who" 4 & pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo
if [ $rc = 0 ]; then
  echo "Done: 3 players x 4 rounds; the last holder saw counter 12."
else
  echo "A player failed."
fi
exit $rc
