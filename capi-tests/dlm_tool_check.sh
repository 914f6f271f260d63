#!/usr/bin/env bash
# Drop-in proof with a real consumer: Debian's prebuilt dlm_tool (package
# dlm-controld, linked against libdlm.so.3) joins and leaves a lockspace on
# udlm. A second leave must fail, showing the first really removed it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
libdir=$(cd "${LIBDIR:-$top/target/release}" && pwd)
command -v dlm_tool >/dev/null || { echo "dlm_tool: not installed (package dlm-controld)"; exit 1; }
work=$(mktemp -d)
trap 'kill $(cat "$work/run/udlmd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/lib" "$work/run"
ln -s "$libdir/libdlm.so" "$work/lib/libdlm.so.3"
export LD_LIBRARY_PATH=$work/lib DLM_RUN_DIR=$work/run DLM_DAEMON=$libdir/udlmd
pass=0 fail=0
check() { # description, expected exit (0 or nonzero), command...
  local what=$1 want=$2; shift 2
  local rc=0; timeout 20 "$@" >"$work/out" 2>&1 || rc=$?
  if { [ "$want" = 0 ] && [ $rc = 0 ]; } || { [ "$want" != 0 ] && [ $rc != 0 ] && [ $rc != 124 ]; }; then
    echo "PASS dlm_tool $what"; pass=$((pass+1))
  else
    echo "FAIL dlm_tool $what (exit $rc)"; cat "$work/out"; fail=$((fail+1))
  fi
}
check "join" 0 dlm_tool join udlm_tool_ls
check "leave" 0 dlm_tool leave udlm_tool_ls
check "leave again fails" 1 dlm_tool leave udlm_tool_ls
echo "$pass passed, $fail failed"
[ $fail = 0 ]
