#!/usr/bin/env bash
# install-tests/udlm_tool.sh: every udlm subcommand against a live node.
#
# Starts a udlmd of its own (DLM_RUN_DIR in a temporary directory), lets
# holder.c (built against include/libdlm.h, linked with the built
# libdlm.so) take a known set of locks, then checks `udlm status`, `ls`,
# `lockdump` and `config check`, in text and with --json, their errors and
# exit statuses, and (as root) the access rules: a lockspace's mode decides
# who may dump it, the runtime directory's permissions who may ask at all.
# Uses the binaries in target/release (UDLM_BIN_DIR to change).
# Prints "N passed, N failed"; exits 1 if anything failed.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${UDLM_BIN_DIR:-$repo/target/release}
udlm=$bin/udlm
work=$(mktemp -d /tmp/udlm-tool-test.XXXXXX)
chmod 0755 "$work"
run=$work/run
pass=0
fail=0
pidfiles=()
holder_pid=

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# t NAME WANT_STATUS COMMAND...: runs the command; ok when it exits with
# WANT_STATUS. Its stdout and stderr are left in $out and $err.
out=
err=
t() {
    local name=$1 want=$2 status
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    status=$?
    out=$(cat "$work/out")
    err=$(cat "$work/err")
    if [ "$status" = "$want" ]; then ok "$name"; else
        bad "$name (exit status $status, expected $want)"
        sed 's/^/     | out: /' "$work/out" | head -10
        sed 's/^/     | err: /' "$work/err" | head -10
    fi
}
# has NAME TEXT PATTERN: ok when TEXT has a line matching the extended
# regular expression PATTERN.
has() {
    if printf '%s\n' "$2" | grep -Eq -- "$3"; then ok "$1"; else
        bad "$1"
        echo "     | no line matches: $3"
        printf '%s\n' "$2" | sed 's/^/     | /' | head -20
    fi
}
# is_json NAME TEXT: ok when TEXT is one JSON document (python3 checks it
# when it is there).
is_json() {
    if command -v python3 >/dev/null && python3 -c 'import json' 2>/dev/null; then
        if printf '%s' "$2" | python3 -c 'import json, sys; json.load(sys.stdin)' 2>"$work/json.err"; then ok "$1"; else
            bad "$1"
            sed 's/^/     | /' "$work/json.err"
        fi
    else
        case "$2" in "{"*"}") ok "$1 (shape only: no python3)" ;; *) bad "$1" ;; esac
    fi
}

cleanup() {
    exec 3>&- 2>/dev/null
    [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
    local f pid
    for f in "${pidfiles[@]}"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    rm -rf "$work"
}
trap cleanup EXIT

for f in udlm udlmd libdlm.so; do
    [ -e "$bin/$f" ] || { echo "udlm_tool.sh: $bin/$f is missing (run make)" >&2; exit 1; }
done
mkdir -p "$work/lib"
ln -s "$bin/libdlm.so" "$work/lib/libdlm.so.3"
if ! cc -Wall -Wextra -I"$repo/include" -o "$work/holder" "$repo/install-tests/holder.c" \
    -L"$work/lib" -l:libdlm.so.3 >"$work/cc.log" 2>&1; then
    cat "$work/cc.log"
    echo "udlm_tool.sh: holder.c does not build" >&2
    exit 1
fi
: >"$work/empty.conf"
export DLM_RUN_DIR=$run DLM_CONF=$work/empty.conf LD_LIBRARY_PATH=$work/lib DLM_DAEMON=$bin/udlmd
unset DLM_NODEID DLM_EMBEDDED

echo "== with no node running"
t "status with no node: exit 1" 1 "$udlm" status
has "it says that no node is running" "$err" "^udlm: no udlm node is running here: nothing answers at $run/udlmd.sock"
t "ls with no node: exit 1" 1 "$udlm" ls
if [ -e "$run/udlmd.sock" ]; then bad "udlm does not start a node"; else ok "udlm does not start a node"; fi

echo "== a node, and holder's locks"
pidfiles+=("$run/udlmd.pid")
"$bin/udlmd" --daemonize || { echo "udlm_tool.sh: udlmd does not start" >&2; exit 1; }
t "ls with no lockspace: exit 0" 0 "$udlm" ls
has "it says so" "$out" "^no lockspaces on this node$"
t "ls --json with no lockspace" 0 "$udlm" ls --json
has "it is an empty list" "$out" '^\{"lockspaces":\[\]\}$'

mkfifo "$work/in"
"$work/holder" tooltest <"$work/in" >"$work/holder.out" 2>&1 &
holder_pid=$!
exec 3>"$work/in"
for _ in $(seq 100); do grep -q '^ready' "$work/holder.out" && break; sleep 0.1; done
read -r _ A B C D <"$work/holder.out"
if [ -n "${D:-}" ]; then ok "holder took its locks ($A $B $C $D)"; else
    bad "holder took its locks"
    cat "$work/holder.out"
    A=x B=x C=x D=x
fi

echo "== udlm status"
t "status: exit 0" 0 "$udlm" status
# (An empty config: a one-node cluster with no address to listen on.)
has "status: node id" "$out" '^node: +1$'
has "status: cluster name" "$out" '^cluster: +udlm$'
has "status: quorum" "$out" '^quorum: +yes \(1 of 1 configured node seen\)$'
has "status: this node in the node list" "$out" '^ +1 +- +this node$'
has "status: the lockspace, its members and how it is mastered" "$out" '^ +tooltest +1 +directory$'
t "status --json: exit 0" 0 "$udlm" --json status
is_json "status --json is JSON" "$out"
has "status --json has the node, quorum and lockspace" "$out" \
    '^\{"node_id":1,"address":null,"cluster_name":"udlm",.*"quorum":\{"have":true,"members_seen":1,"configured":1\},"lockspaces":\[\{"name":"tooltest","members":\[1\],"mastering":"directory","extensions":\[\]\}\],"membership":\{"source":"config",.*\},"recovery":\{"generation":0,"coordinator":1,"members":\[1\],"state":"running","quorate":true,"live":\[1\],"fencing":\[\]\}\}$'

echo "== udlm ls"
t "ls: exit 0" 0 "$udlm" ls
has "ls: header" "$out" '^NAME +HANDLES +LOCKS +RESOURCES$'
has "ls: tooltest with 1 handle, 4 locks, 2 resources" "$out" '^tooltest +1 +4 +2$'
t "ls --json: exit 0" 0 "$udlm" ls --json
is_json "ls --json is JSON" "$out"
has "ls --json: the counts" "$out" '"name":"tooltest","handles":1,"locks":4,"resources":2'

echo "== udlm lockdump"
lvb=75646c6d2d746f6f6c2d74657374000000000000000000000000000000000000
t "lockdump: exit 0" 0 "$udlm" lockdump tooltest
has "lockdump: header" "$out" '^lockspace "tooltest": 2 resources$'
has "lockdump: res1 with its master" "$out" '^resource "res1" \(hex 72657331\), master node 1$'
has "lockdump: the binary name, escaped and in hex" "$out" '^resource "\\x01z" \(hex 017a\), master node 1$'
has "lockdump: the LVB in hex" "$out" "^  lvb: $lvb\$"
has "lockdump: A granted PR, VALBLK|CONVERT, holder's pid, node 1" "$out" "^  granted +$A +PR +- +0xc +$holder_pid +1\$"
has "lockdump: B converting PR to EX" "$out" "^  converting +$B +PR +EX +0x4 +$holder_pid +1\$"
has "lockdump: C waiting for EX" "$out" "^  waiting +$C +- +EX +0x0 +$holder_pid +1\$"
has "lockdump: D granted NL" "$out" "^  granted +$D +NL +- +0x0 +$holder_pid +1\$"
t "lockdump --json: exit 0" 0 "$udlm" lockdump --json tooltest
is_json "lockdump --json is JSON" "$out"
has "lockdump --json: res1's LVB and queues" "$out" \
    "\"name\":\"res1\",\"name_hex\":\"72657331\",\"master\":1,\"lvb\":\"$lvb\",\"lvb_valid\":true,\"granted\":\\[\\{\"id\":$A,\"granted\":\"PR\",\"requested\":null,\"flags\":\"0xc\",\"pid\":$holder_pid,\"node\":1\\}\\],\"converting\":\\[\\{\"id\":$B,\"granted\":\"PR\",\"requested\":\"EX\""
has "lockdump --json: the binary name" "$out" '"name":"\\u0001z","name_hex":"017a"'
t "lockdump LS RESOURCE (the query call): exit 0" 0 "$udlm" lockdump tooltest res1
has "lockdump LS RESOURCE: master, LVB and count" "$out" "^resource 'res1' of lockspace 'tooltest': master node 1, LVB $lvb, 3 lock\\(s\\)\$"
has "lockdump LS RESOURCE: B converting PR to EX" "$out" "^  converting +node 1 lock $B +granted PR requested EX flags 0x4 pid $holder_pid\$"
has "lockdump LS RESOURCE: C waiting for EX" "$out" "^  waiting +node 1 lock $C +granted - +requested EX flags 0x0 pid $holder_pid\$"
t "lockdump --json LS RESOURCE: exit 0" 0 "$udlm" lockdump --json tooltest res1
is_json "lockdump --json LS RESOURCE is JSON" "$out"
has "lockdump --json LS RESOURCE: C" "$out" "\\{\"node\":1,\"id\":$C,\"queue\":\"waiting\",\"granted\":null,\"requested\":\"EX\""
t "lockdump of a resource nobody masters: exit 1" 1 "$udlm" lockdump tooltest nosuchres
has "it says the resource has no locks" "$err" "no node masters 'nosuchres' in 'tooltest': it has no locks"
t "lockdump of a lockspace that does not exist: exit 1" 1 "$udlm" lockdump nosuch
has "it says there is no such lockspace" "$err" '^udlm: there is no lockspace named "nosuch" on this node'
[ -z "$out" ] && ok "and prints nothing on stdout" || bad "and prints nothing on stdout"
t "lockdump with a 65-byte name: exit 2" 2 "$udlm" lockdump "$(printf 'x%.0s' $(seq 65))"
has "it says how long a name may be" "$err" "a lockspace name is 1 to 64 bytes long"

echo "== access"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
    t "nobody may ask for the status" 0 as_nobody env DLM_RUN_DIR="$run" "$udlm" status
    t "nobody may not dump root's 0600 lockspace: exit 1" 1 as_nobody env DLM_RUN_DIR="$run" "$udlm" lockdump tooltest
    has "it says the lockspace's mode does not let them" "$err" '^udlm: permission denied: lockspace "tooltest" was created with a mode'
    # A second node in a directory only root may enter.
    pidfiles+=("$work/run2/udlmd.pid")
    mkdir -m 0700 "$work/run2"
    # (3>&-: the daemon must not keep holder's input open.)
    DLM_RUN_DIR=$work/run2 "$bin/udlmd" --daemonize 3>&-
    t "nobody may not reach a socket in root's 0700 directory: exit 1" 1 as_nobody env DLM_RUN_DIR="$work/run2" "$udlm" status
    has "it says the socket refuses" "$err" "^udlm: permission denied: you may not connect to the node's socket $work/run2/udlmd.sock"
else
    echo "(not root or no setpriv: access checks skipped)"
fi

echo "== after holder ends"
exec 3>&-
wait "$holder_pid"
hs=$?
holder_pid=
[ "$hs" = 0 ] && ok "holder released its lockspace" || { bad "holder released its lockspace"; cat "$work/holder.out"; }
t "ls: exit 0" 0 "$udlm" ls
has "the lockspace is gone" "$out" "^no lockspaces on this node$"

echo "== udlm config check"
cat >"$work/good.conf" <<'EOF'
cluster_name=lab
port=21064
mark=3
node id=1 addr=127.0.0.1
node id=2 addr=127.0.0.2 port=21070
lockspace locks nodir=1
master locks node=1 weight=2
EOF
printf 'bogus=1\nnode id=x addr=10.0.0.1\n\nport=99999\n' >"$work/bad.conf"
t "a good file: exit 0" 0 env DLM_NODEID=1 "$udlm" config check "$work/good.conf"
has "it says OK, with what it found" "$out" "^$work/good.conf: OK with 1 warning: cluster \"lab\", 2 nodes, 1 lockspace line, 1 master line; this host is node 1\$"
has "the warning names its line" "$err" "^$work/good.conf:3: warning: 'mark' is a dlm_controld setting; udlm ignores it\$"
t "a bad file: exit 1" 1 "$udlm" config check "$work/bad.conf"
has "error on line 1" "$err" "^$work/bad.conf:1: error: unknown setting 'bogus'"
has "error on line 2" "$err" "^$work/bad.conf:2: error: .*'x'"
has "error on line 4" "$err" "^$work/bad.conf:4: error: .*99999"
has "and a summary" "$err" "^udlm: $work/bad.conf: 3 errors; udlmd would not start with it\.\$"
t "a bad file with --json: exit 1" 1 "$udlm" config check --json "$work/bad.conf"
is_json "config check --json is JSON" "$out"
has "it lists the errors with their lines" "$out" '^\{"file":".*bad\.conf","ok":false,"errors":\[\{"file":"[^"]*","line":1,"message":"unknown setting .bogus."\},\{[^}]*"line":2,[^}]*\},\{[^}]*"line":4,'
t "a good file with --json: exit 0" 0 env DLM_NODEID=2 "$udlm" --json config check "$work/good.conf"
is_json "config check --json (good) is JSON" "$out"
has "it has the nodes and the local node" "$out" '"ok":true,.*"nodes":\[\{"id":1,"addr":"127\.0\.0\.1","port":21064\},\{"id":2,"addr":"127\.0\.0\.2","port":21070\}\].*"local_node_id":2\}$'
t "a file that does not exist: exit 1" 1 "$udlm" config check "$work/nope.conf"
has "it says it cannot read it" "$err" "^$work/nope.conf: error: cannot read the config file"
t "no FILE: DLM_CONF is checked" 1 env DLM_CONF="$work/bad.conf" "$udlm" config check
has "the errors name DLM_CONF's file" "$err" "^$work/bad.conf:1: error:"
if [ ! -e /etc/dlm/dlm.conf ]; then
    t "no FILE, no DLM_CONF, no /etc/dlm/dlm.conf: a one-node cluster" 0 env -u DLM_CONF "$udlm" config check
    has "it says so" "$out" "^no config file \(a one-node cluster\): OK"
fi

echo "== command line"
t "--help: exit 0" 0 "$udlm" --help
has "it prints the usage" "$out" "^usage: udlm \[--json\] COMMAND"
t "-h: exit 0" 0 "$udlm" -h
t "help: exit 0" 0 "$udlm" help
has "help prints the commands" "$out" "^  lockdump LOCKSPACE"
t "no command: exit 2" 2 "$udlm"
has "it says a command is missing" "$err" "^udlm: a command is missing"
t "an unknown command: exit 2" 2 "$udlm" frobnicate
has "it names the command" "$err" "^udlm: unknown command 'frobnicate'"
t "an unknown option: exit 2" 2 "$udlm" status --frob
t "lockdump without a lockspace: exit 2" 2 "$udlm" lockdump
t "status with an extra argument: exit 2" 2 "$udlm" status extra
t "config without check: exit 2" 2 "$udlm" config
t "config check with two files: exit 2" 2 "$udlm" config check a b

echo
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
