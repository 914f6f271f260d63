#!/usr/bin/env bash
# install-tests/run.sh: `make install` the way a user does, then use it.
#
#  1. make install PREFIX=<tmp>/usr: the exact file list, the links, the
#     SONAMEs, the daemon path baked into both libraries, the .pc files, the
#     systemd unit, the man pages (also through man(1));
#  2. C programs built with `cc $(pkg-config --cflags --libs libdlm)` (and
#     libdlm_lt) run against the installed libraries with NO DLM_DAEMON: the
#     library must start the installed udlmd by itself; the installed udlm
#     talks to it;
#  3. installing again over it changes nothing; make uninstall leaves exactly
#     the files that were there before (a few foreign ones on purpose);
#  4. DESTDIR=<tmp>/stage staging: the same list under the stage, paths in
#     the files without the stage, uninstall from the stage;
#  5. make install refuses libraries built for another PREFIX.
#
# The builds use their own cargo target directory (target/install-test/cargo
# unless UDLM_INSTALL_TEST_DIR says otherwise), so target/release keeps the
# default PREFIX that the other tests use, and the prefix path is the same
# at every run so that cargo rebuilds only what changed.
# Prints "N passed, N failed"; exits 1 if anything failed.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${UDLM_INSTALL_TEST_DIR:-$repo/target/install-test}
export CARGO_TARGET_DIR=$root/cargo
prefix=$root/usr
stage=$root/stage
work=$(mktemp -d /tmp/udlm-install-test.XXXXXX)
make_=(make --no-print-directory -C "$repo")
pass=0
fail=0
daemons=()

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { # check NAME COMMAND...: ok when the command succeeds
    local name=$1
    shift
    if "$@" >"$work/check.out" 2>&1; then ok "$name"; else
        bad "$name"
        sed 's/^/     | /' "$work/check.out" | head -20
    fi
}

stop_daemons() {
    local pidfile pid
    for pidfile in "${daemons[@]}"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    daemons=()
}
cleanup() {
    stop_daemons
    rm -rf "$work" "$prefix" "$stage" "$root/other"
}
trap cleanup EXIT

for tool in cc pkg-config readelf strings; do
    command -v $tool >/dev/null || { echo "install-tests: $tool is missing (make deps installs it)" >&2; exit 1; }
done

# What make install must put under a prefix, relative to it, with the link
# targets: "path" for a file, "path -> target" for a symbolic link.
expected() {
    printf '%s\n' \
        'bin/udlm' 'sbin/udlmd' 'include/libdlm.h' 'include/udlm.h' \
        'lib/libudlm.so.1.0' 'lib/libudlm.so.1 -> libudlm.so.1.0' 'lib/libudlm.so -> libudlm.so.1' \
        'lib/libdlm.so.3.0' 'lib/libdlm.so.3 -> libdlm.so.3.0' 'lib/libdlm.so -> libdlm.so.3' \
        'lib/libdlm_lt.so.3.0' 'lib/libdlm_lt.so.3 -> libdlm_lt.so.3.0' 'lib/libdlm_lt.so -> libdlm_lt.so.3' \
        'lib/pkgconfig/libdlm.pc' 'lib/pkgconfig/libdlm_lt.pc' \
        'lib/systemd/system/udlmd.service' 'share/udlm/install-manifest'
    (cd "$repo/man" && for m in man3/*.3 man5/*.5 man8/*.8; do echo "share/man/$m"; done)
}
expected_sorted() { expected | sort; }
# The same listing of what is under a directory (files and links).
listing() {
    (cd "$1" 2>/dev/null && find . \( -type f -o -type l \) -printf '%P\n' | sort | while read -r p; do
        if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"; else echo "$p"; fi
    done)
}
# Foreign files in the prefix that uninstall must leave alone.
foreign() {
    mkdir -p "$1/lib/pkgconfig" "$1/share/man/man3" "$1/bin"
    echo keep >"$1/lib/libother.so.1"
    echo keep >"$1/lib/pkgconfig/other.pc"
    echo keep >"$1/share/man/man3/other.3"
    echo keep >"$1/bin/other"
}

echo "== make install PREFIX=$prefix (a build for that prefix the first time: about a minute)"
rm -rf "$prefix" "$stage"
foreign "$prefix"
before=$(listing "$prefix")
if "${make_[@]}" install PREFIX="$prefix" >"$work/install.log" 2>&1; then ok "make install PREFIX=... succeeds"; else
    bad "make install PREFIX=... succeeds"
    tail -20 "$work/install.log"
fi
want=$( (expected; echo "$before") | sort)
check "installed files and links are exactly the expected ones" diff <(echo "$want") <(listing "$prefix")
check "the manifest lists every installed file" diff <(expected | sed 's/ -> .*//' | grep -v install-manifest | sed "s|^|$prefix/|" | sort) <(sort "$prefix/share/udlm/install-manifest")
for lib in libdlm libdlm_lt; do
    check "$lib.so.3.0 has SONAME $lib.so.3" \
        bash -c "readelf -d '$prefix/lib/$lib.so.3.0' | grep -q 'SONAME.*\[$lib.so.3\]'"
    check "$lib.so.3.0 starts the installed daemon $prefix/sbin/udlmd" \
        bash -c "strings '$prefix/lib/$lib.so.3.0' | grep -qF '$prefix/sbin/udlmd'"
done
check "the libraries, udlmd and udlm are executable" test -x "$prefix/lib/libdlm.so.3.0" -a -x "$prefix/sbin/udlmd" -a -x "$prefix/bin/udlm"
check "include/libdlm.h is the repository's header" cmp "$repo/include/libdlm.h" "$prefix/include/libdlm.h"
check "the systemd unit runs the installed udlmd -f" grep -qx "ExecStart=$prefix/sbin/udlmd -f" "$prefix/lib/systemd/system/udlmd.service"
check "the systemd unit has no placeholder left" bash -c "! grep -q @ '$prefix/lib/systemd/system/udlmd.service'"
if command -v systemd-analyze >/dev/null; then
    # verify checks the syntax and that ExecStart exists; it may complain
    # about the missing systemd instance of a container, which is not ours.
    check "systemd-analyze verify accepts the unit" bash -c \
        "out=\$(MANPATH='$prefix/share/man' systemd-analyze verify '$prefix/lib/systemd/system/udlmd.service' 2>&1); echo \"\$out\"; ! echo \"\$out\" | grep -i 'udlmd.service' | grep -qiv 'Failed to connect\|System has not been booted\|Failed to setup'"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
unset PKG_CONFIG_LIBDIR
check "pkg-config libdlm: -I, -L, -ldlm -lpthread" bash -c \
    "[ \"\$(echo \$(pkg-config --cflags --libs libdlm))\" = '-I$prefix/include -L$prefix/lib -ldlm -lpthread' ] || { pkg-config --cflags --libs libdlm; false; }"
check "pkg-config libdlm_lt: -ldlm_lt (not -ldlm)" bash -c \
    "[ \"\$(echo \$(pkg-config --cflags --libs libdlm_lt))\" = '-I$prefix/include -L$prefix/lib -ldlm_lt' ] || { pkg-config --cflags --libs libdlm_lt; false; }"
check "pkg-config --validate accepts both files" pkg-config --validate libdlm libdlm_lt
check "pkg-config version of libdlm is 4.0.0" bash -c "[ \"\$(pkg-config --modversion libdlm)\" = 4.0.0 ]"
check "pkg-config's prefix is the install prefix" bash -c "[ \"\$(pkg-config --variable=prefix libdlm)\" = '$prefix' ]"

if command -v man >/dev/null && man -w man >/dev/null 2>&1; then
    check "man finds dlm_lock(3) through the dlm_ls_lockx link" bash -c \
        "MANPATH='$prefix/share/man' MANWIDTH=80 man -P cat 3 dlm_ls_lockx 2>/dev/null | grep -q 'DLM_LOCK(3)'"
    check "man finds dlm.conf(5), udlmd(8) and udlm(8)" bash -c \
        "for p in '5 dlm.conf' '8 udlmd' '8 udlm'; do MANPATH='$prefix/share/man' man -w \$p | grep -q '^$prefix/' || exit 1; done"
fi

# Run C programs against the installed libraries, with no DLM_DAEMON.
run_program() { # run_program LIB EXTRA_CFLAGS
    local lib=$1 cflags=$2 bin=$work/smoke-$1 run=$work/run-$1
    mkdir -p "$run"
    echo "== $lib: cc smoke.c \$(pkg-config --cflags --libs $lib) $cflags"
    # shellcheck disable=SC2046,SC2086
    if cc -Wall -Wextra -o "$bin" "$repo/install-tests/smoke.c" $cflags $(pkg-config --cflags --libs "$lib") \
        >"$work/cc.log" 2>&1; then ok "$lib: smoke.c builds with pkg-config"; else
        bad "$lib: smoke.c builds with pkg-config"
        cat "$work/cc.log"
        return
    fi
    check "$lib: the program links $prefix/lib/$lib.so.3" bash -c \
        "LD_LIBRARY_PATH='$prefix/lib' ldd '$bin' | grep -q '$lib.so.3 => $prefix/lib/$lib.so.3 '"
    if [ "$lib" = libdlm_lt ]; then
        check "libdlm_lt: the program does not link libdlm.so.3" bash -c "! readelf -d '$bin' | grep -q 'libdlm.so.3'"
    fi
    daemons+=("$run/udlmd.pid")
    : >"$work/empty.conf"
    check "$lib: the program runs and the library starts the installed udlmd by itself" \
        env -u DLM_DAEMON -u DLM_EMBEDDED -u DLM_NODEID LD_LIBRARY_PATH="$prefix/lib" DLM_RUN_DIR="$run" \
        DLM_CONF="$work/empty.conf" "$bin" "smoke-$lib"
    check "$lib: the running node is $prefix/sbin/udlmd" bash -c \
        "[ \"\$(readlink /proc/\$(cat '$run/udlmd.pid')/exe)\" = '$prefix/sbin/udlmd' ]"
    check "$lib: the installed udlm reads that node's status" bash -c \
        "DLM_RUN_DIR='$run' '$prefix/bin/udlm' status | grep -q '^quorum: *yes'"
    # (lock_resource leaves the lockspace "default", as libdlm does.)
    check "$lib: the program's lockspace was released (udlm ls)" bash -c \
        "out=\$(DLM_RUN_DIR='$run' '$prefix/bin/udlm' ls) && echo \"\$out\" && ! echo \"\$out\" | grep -q '^smoke-$lib '"
    stop_daemons
}
run_program libdlm "-DTHREADED -D_REENTRANT"
run_program libdlm_lt ""

echo "== install again, then make uninstall PREFIX=$prefix"
check "a second make install succeeds" "${make_[@]}" install PREFIX="$prefix"
check "after the second install the files are the same" diff <(echo "$want") <(listing "$prefix")
check "make uninstall succeeds" "${make_[@]}" uninstall PREFIX="$prefix"
check "after uninstall exactly the files from before are left" diff <(echo "$before") <(listing "$prefix")
check "a second uninstall is harmless" "${make_[@]}" uninstall PREFIX="$prefix"
check "after the second uninstall the foreign files are still there" diff <(echo "$before") <(listing "$prefix")

echo "== make install DESTDIR=$stage PREFIX=$prefix"
rm -rf "$prefix" "$stage"
if "${make_[@]}" install DESTDIR="$stage" PREFIX="$prefix" >"$work/install.log" 2>&1; then
    ok "make install DESTDIR=... succeeds"
else
    bad "make install DESTDIR=... succeeds"
    tail -20 "$work/install.log"
fi
check "nothing was written outside DESTDIR" test ! -e "$prefix"
check "the staged files are exactly the expected ones, under DESTDIR+PREFIX" diff <(expected_sorted) <(listing "$stage$prefix")
check "nothing else is under DESTDIR" bash -c "[ \"\$(cd '$stage' && find . \( -type f -o -type l \) | grep -vc '^\.$prefix/')\" = 0 ]"
check "the staged libraries start PREFIX/sbin/udlmd, not the stage's" bash -c \
    "strings '$stage$prefix/lib/libdlm.so.3.0' | grep -qF '$prefix/sbin/udlmd' && ! strings '$stage$prefix/lib/libdlm.so.3.0' | grep -qF '$stage'"
check "the staged .pc files, unit and manifest do not mention DESTDIR" bash -c \
    "! grep -rlF '$stage' '$stage$prefix/lib/pkgconfig' '$stage$prefix/lib/systemd' '$stage$prefix/share/udlm'"
check "the staged manifest lists the files without DESTDIR" grep -qx "$prefix/lib/libdlm.so.3.0" "$stage$prefix/share/udlm/install-manifest"
check "make uninstall DESTDIR=... succeeds" "${make_[@]}" uninstall DESTDIR="$stage" PREFIX="$prefix"
check "after uninstall nothing is left under DESTDIR" bash -c "[ -z \"\$(cd '$stage' && find . \( -type f -o -type l \))\" ]"

echo "== make install refuses a library built for another PREFIX"
check "make install PREFIX=other (no cargo to rebuild) fails" bash -c \
    "! ${make_[*]} install PREFIX='$root/other' CARGO=udlm-no-such-cargo >'$work/other.log' 2>&1 && grep -q 'built for another PREFIX' '$work/other.log'"
check "and installs nothing" test ! -e "$root/other"

echo
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
