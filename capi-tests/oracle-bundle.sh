#!/usr/bin/env bash
# oracle-bundle.sh CASE.c > /tmp/CASE.c
# Print CASE.c with ../common.h inlined, so that the single-file oracle
# harness (shared/oracle/run-in-vm.sh) can compile it. The oracle compiles with
# -pthread (which defines _REENTRANT) and links -ldlm, i.e. the threaded build;
# add -c "-O0 -g -Wall -DUDLM_TEST_LT=1" to get the lt return-value checks
# (the library is still the threaded libdlm then; use oracle-multi.sh to run
# real libdlm_lt builds).
#   capi-tests/oracle-bundle.sh capi-tests/cases/c16_noqueue_eagain_no_bast.c > /tmp/c16_noqueue_eagain_no_bast.c
#   shared/oracle/run-in-vm.sh /tmp/c16_noqueue_eagain_no_bast.c
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 case.c" >&2; exit 2; }
awk -v common="$HERE/common.h" '
    /^#include "\.\.\/common\.h"/ {
        while ((getline line < common) > 0) print line
        close(common)
        next
    }
    { print }
' "$1"
