#!/usr/bin/env bash
# capi-tests/run.sh - build and run the C conformance scenarios against udlm.
#
# usage: capi-tests/run.sh [--header ours|ref] [--libdir DIR] [--filter SUBSTR]
#                          [-j N] [--embedded] [--timeout SEC] [--keep]
#        capi-tests/run.sh --abi      [--libdir DIR]   compare libdlm.h constants/layout
#        capi-tests/run.sh --symbols  [--libdir DIR]   compare exported symbols + SONAME
#
#   --header ours   (default) compile with -I <repo>/include (udlm's libdlm.h),
#                   link against udlm's libraries
#   --header ref    compile against /usr/include/libdlm.h and link against
#                   Debian's real libdlm (the drop-in proof); run with udlm's
#                   libraries first in LD_LIBRARY_PATH
#   --libdir DIR    directory with libdlm.so, libdlm_lt.so and udlmd
#                   (default <repo>/target/release)
#   --filter SUBSTR only scenarios whose file name contains SUBSTR
#   -j N            run N scenario binaries at once (default 1)
#   --embedded      DLM_EMBEDDED=1 (node inside the process); scenarios marked
#                   "// PROC: multi" are skipped
#   --timeout SEC   per-scenario timeout (default 30; 90 for PROC: multi)
#   --keep          keep the work directory (binaries, outputs)
#
# Each scenario (cases/*.c) declares "// LIB: both|dlm|lt" (default both):
#   dlm  -> built with -pthread -D_REENTRANT, linked with -ldlm
#   lt   -> built with -DUDLM_TEST_LT=1 (no _REENTRANT), linked with -ldlm_lt
#   both -> built and run once each way.
# Exit status of a scenario: 0 pass, 77 skipped, anything else (or a timeout)
# fail. The last line printed is "N passed, N failed[, N skipped]".
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HEADER=ours
LIBDIR=$REPO/target/release
FILTER=
JOBS=1
EMBEDDED=0
TIMEOUT=30
MODE=run
KEEP=0
SYSLIB=/usr/lib/x86_64-linux-gnu

die() { echo "run.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --header) HEADER=${2:-}; shift 2;;
        --header=*) HEADER=${1#*=}; shift;;
        --libdir) LIBDIR=${2:-}; shift 2;;
        --libdir=*) LIBDIR=${1#*=}; shift;;
        --filter) FILTER=${2:-}; shift 2;;
        --filter=*) FILTER=${1#*=}; shift;;
        -j) JOBS=${2:-1}; shift 2;;
        -j*) JOBS=${1#-j}; shift;;
        --embedded) EMBEDDED=1; shift;;
        --timeout) TIMEOUT=${2:-30}; shift 2;;
        --keep) KEEP=1; shift;;
        --abi) MODE=abi; shift;;
        --symbols) MODE=symbols; shift;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
        *) die "unknown argument: $1 (see --help)";;
    esac
done
case "$HEADER" in ours|ref) ;; *) die "--header must be ours or ref";; esac
[ "$JOBS" -ge 1 ] 2>/dev/null || die "-j needs a positive number"
LIBDIR=$(cd "$LIBDIR" 2>/dev/null && pwd) || die "library directory not found: $LIBDIR"

# Debian's libdlm-dev (reference header + libraries) when needed
ensure_ref() {
    if [ ! -f /usr/include/libdlm.h ] || [ ! -e $SYSLIB/libdlm.so ] || [ ! -e $SYSLIB/libdlm_lt.so.3 ]; then
        echo "run.sh: installing Debian's libdlm-dev (reference header and libraries)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq libdlm-dev >/dev/null 2>&1 || {
            apt-get update -qq >/dev/null 2>&1
            apt-get install -y -qq libdlm-dev >/dev/null 2>&1
        } || die "cannot install libdlm-dev"
    fi
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/udlm-capi.XXXXXX") || die "mktemp failed"
RUNDIR=
cleanup() {
    if [ -n "$RUNDIR" ] && [ -f "$RUNDIR/udlmd.pid" ]; then
        local pid
        pid=$(tr -dc 0-9 < "$RUNDIR/udlmd.pid" 2>/dev/null)
        if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q udlmd; then
            kill "$pid" 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null
        fi
    fi
    if [ "$KEEP" = 1 ]; then
        echo "run.sh: work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
        [ -n "$RUNDIR" ] && rm -rf "$RUNDIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- --abi
if [ "$MODE" = abi ]; then
    ensure_ref
    [ -f "$REPO/include/libdlm.h" ] || die "no $REPO/include/libdlm.h"
    rc=0
    for h in ref ours; do
        inc=(); [ $h = ours ] && inc=(-I "$REPO/include")
        if ! cc -std=gnu11 -Wall -Werror -D_REENTRANT "${inc[@]}" -o "$WORK/abi_$h" "$HERE/abi_check.c" > "$WORK/abi_$h.cc" 2>&1; then
            echo "FAIL abi_check does not compile against the $h header:"; cat "$WORK/abi_$h.cc"; rc=1; continue
        fi
        "$WORK/abi_$h" > "$WORK/abi_$h.out" || { echo "FAIL abi_check ($h) exited non-zero"; rc=1; }
    done
    if [ $rc = 0 ]; then
        if diff -u "$WORK/abi_ref.out" "$WORK/abi_ours.out" > "$WORK/abi.diff"; then
            echo "PASS abi: $(wc -l < "$WORK/abi_ref.out") items identical (/usr/include/libdlm.h vs include/libdlm.h)"
        else
            echo "FAIL abi: differences (- reference, + udlm):"; cat "$WORK/abi.diff"; rc=1
        fi
    fi
    [ $rc = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
    exit $rc
fi

# ---------------------------------------------------------------- --symbols
if [ "$MODE" = symbols ]; then
    ensure_ref
    command -v nm >/dev/null && command -v readelf >/dev/null || die "needs nm and readelf (binutils)"
    pass=0; fail=0
    for lib in libdlm libdlm_lt; do
        ours=$LIBDIR/$lib.so; ref=$SYSLIB/$lib.so.3
        if [ ! -e "$ours" ]; then echo "FAIL symbols $lib: $ours missing"; fail=$((fail+1)); continue; fi
        nm -D --defined-only "$ref" | awk '$2 ~ /^[TtWiV]$/ {print $3}' | sed 's/@.*//' | sort -u > "$WORK/$lib.ref"
        nm -D --defined-only "$ours" | awk '$2 ~ /^[TtWiV]$/ {print $3}' | sed 's/@.*//' | sort -u > "$WORK/$lib.ours"
        if diff -u "$WORK/$lib.ref" "$WORK/$lib.ours" > "$WORK/$lib.diff"; then
            echo "PASS symbols $lib: $(wc -l < "$WORK/$lib.ref") functions, same set"; pass=$((pass+1))
        else
            echo "FAIL symbols $lib: exported function sets differ (- Debian, + udlm):"
            grep -E '^[-+][^-+]' "$WORK/$lib.diff"; fail=$((fail+1))
        fi
        # data symbols (objects) exported by udlm but not by the reference are suspicious too
        nm -D --defined-only "$ours" | awk '$2 ~ /^[BDGRS]$/ {print $3}' > "$WORK/$lib.data"
        if [ -s "$WORK/$lib.data" ]; then
            echo "FAIL symbols $lib: exports data symbols the reference does not: $(tr '\n' ' ' < "$WORK/$lib.data")"; fail=$((fail+1))
        else
            echo "PASS symbols $lib: no exported data symbols"; pass=$((pass+1))
        fi
        so_ref=$(readelf -d "$ref" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
        so_ours=$(readelf -d "$ours" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
        if [ "$so_ref" = "$so_ours" ] && [ -n "$so_ours" ]; then
            echo "PASS soname $lib: $so_ours"; pass=$((pass+1))
        else
            echo "FAIL soname $lib: udlm has '${so_ours:-<none>}', reference '$so_ref'"; fail=$((fail+1))
        fi
        if readelf -V "$ours" 2>/dev/null | grep -q 'Version definition'; then
            echo "FAIL symbols $lib: udlm defines symbol versions (the reference exports unversioned symbols)"; fail=$((fail+1))
        else
            echo "PASS symbols $lib: no symbol version definitions"; pass=$((pass+1))
        fi
    done
    # libudlm.so.1 (include/udlm.h): exactly the calls the header declares
    ext=$LIBDIR/libudlmext.so
    sed -n 's/^int \(udlm_[a-z_]*\)(.*/\1/p' "$REPO/include/udlm.h" | sort -u > "$WORK/udlm.want"
    nm -D --defined-only "$ext" 2>/dev/null | awk '$2 ~ /^[TtWiVBDGRS]$/ {print $3}' | sort -u > "$WORK/udlm.ours"
    so=$(readelf -d "$ext" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
    if [ -s "$WORK/udlm.want" ] && diff -u "$WORK/udlm.want" "$WORK/udlm.ours" > "$WORK/udlm.diff" && [ "$so" = libudlm.so.1 ]; then
        echo "PASS symbols libudlm: $(tr '\n' ' ' < "$WORK/udlm.ours")(SONAME $so), as include/udlm.h declares"; pass=$((pass+1))
    else
        echo "FAIL symbols libudlm: SONAME '${so:-<none>}', exports differ from include/udlm.h (- header, + library):"
        grep -E '^[-+][^-+]' "$WORK/udlm.diff"; fail=$((fail+1))
    fi
    echo "$pass passed, $fail failed"
    [ $fail = 0 ]
    exit
fi

# ---------------------------------------------------------------- scenarios
for l in libdlm.so libdlm_lt.so; do
    [ -e "$LIBDIR/$l" ] || die "$LIBDIR/$l not found (build udlm first or pass --libdir)"
done
LIBLINK=$WORK/lib
mkdir -p "$LIBLINK" "$WORK/bin" "$WORK/out"
ln -s "$LIBDIR/libdlm.so" "$LIBLINK/libdlm.so.3"
ln -s "$LIBDIR/libdlm_lt.so" "$LIBLINK/libdlm_lt.so.3"
ln -s "$LIBDIR/libdlm.so" "$LIBLINK/libdlm.so"
ln -s "$LIBDIR/libdlm_lt.so" "$LIBLINK/libdlm_lt.so"
# libudlm (include/udlm.h's calls), for scenarios marked "// NEEDS: libudlm"
if [ -e "$LIBDIR/libudlmext.so" ]; then
    ln -s "$LIBDIR/libudlmext.so" "$LIBLINK/libudlm.so.1"
    ln -s "$LIBDIR/libudlmext.so" "$LIBLINK/libudlm.so"
fi

if [ "$HEADER" = ref ]; then
    ensure_ref
    INC=()
    LINKDIR=$SYSLIB
else
    [ -f "$REPO/include/libdlm.h" ] || die "$REPO/include/libdlm.h not found"
    INC=(-I "$REPO/include")
    LINKDIR=$LIBLINK
fi

RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/udlm-run.XXXXXX") || die "mktemp failed"
export DLM_RUN_DIR=$RUNDIR
export DLM_DAEMON=$LIBDIR/udlmd
export LD_LIBRARY_PATH=$LIBLINK${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Deadlock detection looks after 1 s instead of 5 (the node started on
# demand inherits it; x_deadlock_* scenarios read it to size their waits).
export UDLM_DEADLOCK_DETECT_MS=${UDLM_DEADLOCK_DETECT_MS:-1000}
if [ "$EMBEDDED" = 1 ]; then export DLM_EMBEDDED=1; else unset DLM_EMBEDDED; fi
[ -x "$DLM_DAEMON" ] || [ "$EMBEDDED" = 1 ] || echo "run.sh: warning: $DLM_DAEMON is not an executable" >&2

CFLAGS_BASE=(-O1 -g -Wall -Werror)

# which library do the test binaries really load? (must be udlm's, also with
# --header ref where they are linked against Debian's libdlm)
cat > "$WORK/which.c" <<'WHICH'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <libdlm.h>
int main(void)
{
    Dl_info i;
    char *r;
    if (!dladdr((void *)dlm_ls_lock, &i) || !i.dli_fname) return 1;
    r = realpath(i.dli_fname, NULL);
    printf("%s\n", r ? r : i.dli_fname);
    return 0;
}
WHICH
for l in dlm dlm_lt; do
    cc -O1 "${INC[@]}" -o "$WORK/which_$l" "$WORK/which.c" -L"$LINKDIR" -l$l -ldl > "$WORK/which_$l.log" 2>&1 \
        || { cat "$WORK/which_$l.log"; die "cannot build the library probe against lib$l"; }
    got=$("$WORK/which_$l") || die "library probe for lib$l failed to run"
    want=$(realpath "$LIBDIR/lib$l.so")
    [ "$got" = "$want" ] || die "test binaries linked with -l$l load $got, not udlm's $want"
    echo "capi-tests: -l$l binaries load $got"
done

# list of jobs: "name lib multi"
JOBLIST=()
for f in "$HERE"/cases/*.c; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .c)
    case "$name" in *"$FILTER"*) ;; *) continue;; esac
    lib=$(sed -n 's,^// *LIB: *\([a-z]*\).*,\1,p' "$f" | head -1)
    multi=0; grep -q '^// *PROC: *multi' "$f" && multi=1
    case "${lib:-both}" in
        both) JOBLIST+=("$name dlm $multi" "$name lt $multi");;
        dlm) JOBLIST+=("$name dlm $multi");;
        lt) JOBLIST+=("$name lt $multi");;
        *) JOBLIST+=("$name badlib $multi");;
    esac
done
[ ${#JOBLIST[@]} -gt 0 ] || die "no scenario matches '$FILTER'"

echo "capi-tests: ${#JOBLIST[@]} runs, header=$HEADER, libdir=$LIBDIR$([ "$EMBEDDED" = 1 ] && echo ', embedded'), DLM_RUN_DIR=$RUNDIR"

# run one scenario build; writes $WORK/out/<name>.<lib>.res (PASS|FAIL|SKIP)
run_one() {
    local name=$1 lib=$2 multi=$3
    local src=$HERE/cases/$name.c bin=$WORK/bin/$name.$lib out=$WORK/out/$name.$lib
    local res=FAIL rc tmo
    local cflags=("${CFLAGS_BASE[@]}")
    : > "$out.log"
    case "$lib" in
        dlm) cflags+=(-pthread -D_REENTRANT); libflag=-ldlm;;
        lt)  cflags+=(-DUDLM_TEST_LT=1); grep -q '^// *NEEDS: *pthread' "$src" && cflags+=(-pthread); libflag=-ldlm_lt;;
        *)   echo "bad // LIB: line" > "$out.log"; echo FAIL > "$out.res"; report "$name" "$lib"; return;;
    esac
    if [ "$EMBEDDED" = 1 ] && [ "$multi" = 1 ]; then
        echo "skipped: multi-process scenario in embedded mode" > "$out.log"
        echo SKIP > "$out.res"; report "$name" "$lib"; return
    fi
    local extra=()
    grep -q '^// *NEEDS: *libudlm' "$src" && extra=(-L"$LIBLINK" -ludlm)
    if ! cc "${cflags[@]}" "${INC[@]}" -o "$bin" "$src" -L"$LINKDIR" $libflag "${extra[@]}" > "$out.log" 2>&1; then
        { echo "(compile failed)"; } >> "$out.log"
        echo FAIL > "$out.res"; report "$name" "$lib"; return
    fi
    tmo=$TIMEOUT; [ "$multi" = 1 ] && [ "$tmo" -lt 90 ] && tmo=90
    ( cd "$WORK" && exec timeout -k 5 "$tmo" "$bin" ) < /dev/null >> "$out.log" 2>&1
    rc=$?
    case $rc in
        0) res=PASS;;
        77) res=SKIP;;
        124|137) res=FAIL; echo "(killed: timeout after ${tmo}s)" >> "$out.log";;
        *) res=FAIL; echo "(exit status $rc)" >> "$out.log";;
    esac
    echo $res > "$out.res"
    report "$name" "$lib"
}

report() {
    local name=$1 lib=$2 out=$WORK/out/$1.$2 res
    res=$(cat "$out.res")
    {
        echo "$res $name [$lib]"
        if [ "$res" = FAIL ]; then
            sed -e 's/^/    | /' "$out.log" | head -120
        elif [ "$res" = SKIP ]; then
            grep -m1 -i 'skip' "$out.log" | sed -e 's/^/    | /'
        fi
    } > "$out.report"
    cat "$out.report"
}

running=0
for j in "${JOBLIST[@]}"; do
    set -- $j
    if [ "$JOBS" -le 1 ]; then
        run_one "$1" "$2" "$3"
    else
        run_one "$1" "$2" "$3" &
        running=$((running+1))
        if [ $running -ge "$JOBS" ]; then wait -n; running=$((running-1)); fi
    fi
done
wait

pass=0; fail=0; skip=0; failed=()
for j in "${JOBLIST[@]}"; do
    set -- $j
    case $(cat "$WORK/out/$1.$2.res" 2>/dev/null || echo FAIL) in
        PASS) pass=$((pass+1));;
        SKIP) skip=$((skip+1));;
        *) fail=$((fail+1)); failed+=("$1 [$2]");;
    esac
done
if [ $fail -gt 0 ]; then
    echo "failed: ${failed[*]}" | fold -s -w 160
fi
if [ $skip -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
