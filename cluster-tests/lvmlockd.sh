#!/usr/bin/env bash
# The real lvmlockd (Debian's lvm2-lockd, unmodified, written for the
# kernel DLM) on udlm: a shared volume group on one loop device, used by 2
# and then 3 "hosts" on this machine (issue #11).
#
# A host is a network namespace (udlmd talks to the other hosts over veth
# links, node K is 10.79.0.K) plus, for every command run "on" it, a private
# mount namespace in which its own directories are bound over /run (for
# lvmlockd's compiled-in socket and pid file) and over /sys/kernel/config
# (udlmd's configfs-compatible view, <run dir>/configfs, as udlmd(8) says
# to expose it). lvmlockd loads udlm's libdlm_lt.so.3 through
# LD_LIBRARY_PATH. The kernel here has no device-mapper, so LV activation is
# off (lvm.conf activation=0): every lock is still taken.
#
# Checked, for 2 and for 3 hosts (one "PASS"/"FAIL" line each):
#   vgcreate --shared; vgchange --lock-start on every host, checked with
#   lvmlockctl -i and with spaces/lvm_vg1/nodes/ in every host's view;
#   lvcreate; an LV lock held EX by one host refused to the others (EX and
#   SH), SH on two hosts, SH->EX refused; the VG's version counter passed
#   through the VG lock's LVB; lvmlockd killed with an LV lock held: the
#   orphan keeps the LV locked, the restarted lvmlockd (no adoption) cannot
#   start the VG (EEXIST) until `udlm leave`, after which another host gets
#   the LV and host 1 starts the VG again; a restarted udlmd under a running
#   lvmlockd: its locks fail, lock stop and start bring the VG back; vgremove refused
#   while another host is joined, allowed after it leaves; kill -9 of one
#   host's lvmlockd and udlmd while it holds an LV EX: the others get the
#   lock only after its lease (and get it then).
#
# Prints "N passed, N failed" and exits non-zero on a failure; prints
# "SKIP: ..." and exits 0 where it cannot run (not root, no loop device, no
# namespaces). Installs lvm2 and lvm2-lockd with apt-get when missing.
# Environment: LIBDIR (where udlmd, udlm and libdlm_lt.so are; default
# target/release), HOSTS ("2 3" by default), VERBOSE=1, KEEP=1 (keep the
# work directory and print its path).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

skip() { echo "SKIP: lvmlockd test: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "not root (namespaces, loop devices and lvm need root)"
for c in ip unshare nsenter losetup; do
  command -v $c > /dev/null || skip "no $c command"
done
if ! command -v lvmlockd > /dev/null || ! command -v lvmlockctl > /dev/null; then
  echo "installing lvm2 and lvm2-lockd"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq lvm2 lvm2-lockd > /dev/null 2>&1 ||
    { apt-get update -qq > /dev/null 2>&1 && apt-get install -y -qq lvm2 lvm2-lockd > /dev/null 2>&1; }
  command -v lvmlockd > /dev/null || skip "lvm2-lockd is not installed and could not be"
fi

rel=$(cd "${LIBDIR:-$top/target/release}" && pwd) || exit 1
for f in udlmd udlm libdlm_lt.so; do
  [ -f "$rel/$f" ] || { echo "lvmlockd test: $rel/$f is missing (build first)"; exit 1; }
done

work=$(mktemp -d /tmp/udlm-lvm.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/lib" "$work/bin"
# Copies, so a rebuild during the run does not mix versions; the library
# under its SONAME, which is what lvmlockd asks the loader for.
cp "$rel/libdlm_lt.so" "$work/lib/libdlm_lt.so.3"
cp "$rel/udlmd" "$rel/udlm" "$work/bin/"
pass=0 fail=0
nsp="udlml$$-"
made_ns=()
loop=""
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
  [ -n "$loop" ] && losetup -d "$loop" 2> /dev/null
  for p in "${made_ns[@]}"; do ip netns del "$p" 2> /dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# check NAME CONDITION-STATUS [DETAILS]: details are shown on a failure.
check() {
  if [ "$2" = 0 ]; then ok "$1"; else bad "$1"; [ -n "${3:-}" ] && sed 's/^/    /' <<< "$3"; fi
  [ -n "${VERBOSE:-}" ] && [ -n "${3:-}" ] && [ "$2" = 0 ] && sed 's/^/    /' <<< "$3"
  return 0
}

# ----- what this machine offers ---------------------------------------------
truncate -s 300M "$work/disk.img" || skip "cannot create the disk image"
loop=$(losetup -f --show "$work/disk.img" 2> /dev/null) || { loop=""; skip "no loop device (losetup -f failed)"; }
ip netns add "${nsp}probe" 2> /dev/null || skip "cannot create a network namespace"
ip netns del "${nsp}probe"
unshare -m --propagation private true 2> /dev/null || skip "cannot create a mount namespace"

# The helper that runs a command "on host N" (see the top of this file).
cat > "$work/bin/hostrun" << 'EOF'
#!/bin/bash
# hostrun WORK RUN N cmd...: run cmd as host N of run RUN.
W=$1 R=$2 N=$3; shift 3
H=$W/$R/host$N
if [ -z "${UDLM_IN_HOST:-}" ]; then
  export UDLM_IN_HOST=1
  exec nsenter --net=/run/netns/$(cat "$W/$R/ns$N") unshare -m --propagation private "$0" "$W" "$R" "$N" "$@"
fi
mount -t tmpfs udlmsys /sys/kernel || exit 97
mkdir -p /sys/kernel/config && mount --bind "$H/dlm/configfs" /sys/kernel/config || exit 97
mount --bind "$H/run" /run || exit 97
export LVM_SYSTEM_DIR=$H/etc LVM_SUPPRESS_FD_WARNINGS=1 DM_DISABLE_UDEV=1
export DLM_CONF=$W/$R/dlm.conf DLM_NODEID=$N DLM_RUN_DIR=$H/dlm DLM_DAEMON=$W/bin/udlmd
exec "$@"
EOF
chmod +x "$work/bin/hostrun"

# ----- one run: NH hosts -----------------------------------------------------
run_hosts() {
  local NH=$1 R="run$1" k j
  local base="$work/$R"
  mkdir -p "$base"
  local lease_ms=2000
  {
    echo "cluster_name=udlmtest"
    echo "heartbeat_ms=200"
    echo "peer_timeout_ms=1000"
    echo "lease_ms=$lease_ms"
    [ "$NH" = 2 ] && echo "two_node=1"
    for k in $(seq 1 "$NH"); do echo "node id=$k addr=10.79.$NH.$k port=21064"; done
  } > "$base/dlm.conf"
  for k in $(seq 1 "$NH"); do
    local ns="${nsp}$NH-$k" H="$base/host$k"
    ip netns add "$ns" || { bad "$NH hosts: network namespace"; return; }
    made_ns+=("$ns")
    echo "$ns" > "$base/ns$k"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.79.$NH.$k/32" dev lo
    mkdir -p "$H/dlm/configfs" "$H/run/lvm" "$H/run/lock/lvm" "$H/etc/backup" "$H/etc/archive"
    cat > "$H/etc/lvm.conf" << EOF
global {
	use_lvmlockd = 1
	event_activation = 0
	activation = 0
}
devices {
	filter = [ "a|^$loop\$|", "r|.*|" ]
	use_devicesfile = 0
	obtain_device_list_from_udev = 0
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
backup {
	backup_dir = "$H/etc/backup"
	archive_dir = "$H/etc/archive"
}
EOF
  done
  for k in $(seq 1 "$NH"); do
    for j in $(seq $((k + 1)) "$NH"); do
      local a="${nsp}$NH-$k" b="${nsp}$NH-$j"
      ip link add "v${NH}${k}${j}_$$" netns "$a" type veth peer name "v${NH}${j}${k}_$$" netns "$b" ||
        { bad "$NH hosts: veth link"; return; }
      ip -n "$a" link set "v${NH}${k}${j}_$$" up
      ip -n "$b" link set "v${NH}${j}${k}_$$" up
      ip -n "$a" route add "10.79.$NH.$j/32" dev "v${NH}${k}${j}_$$"
      ip -n "$b" route add "10.79.$NH.$k/32" dev "v${NH}${j}${k}_$$"
    done
  done
  # A fresh disk for this run.
  dd if=/dev/zero of="$loop" bs=1M count=16 conv=fsync status=none

  on() { local n=$1; shift; "$work/bin/hostrun" "$work" "$R" "$n" "$@"; }
  view() { echo "$base/host$1/dlm/configfs/dlm/cluster"; }
  nodes_of() { ls "$(view "$1")/spaces/$2/nodes" 2> /dev/null | sort -n | tr '\n' ' ' | sed 's/ $//'; }
  local udlmd_pid=() lvmlockd_pid=()
  start_udlmd() {
    # Started directly, not through the function `on`: $! must be the
    # daemon itself (hostrun ends in exec), not a subshell around it.
    "$work/bin/hostrun" "$work" "$R" "$1" "$work/bin/udlmd" -f >> "$base/udlmd$1.log" 2>&1 &
    udlmd_pid[$1]=$!
    pids+=($!)
  }
  start_lvmlockd() {
    "$work/bin/hostrun" "$work" "$R" "$1" env LD_LIBRARY_PATH="$work/lib" lvmlockd -D \
      >> "$base/lvmlockd$1.log" 2>&1 < /dev/null &
    lvmlockd_pid[$1]=$!
    pids+=($!)
  }
  # wait_for SECONDS COMMAND...: until COMMAND succeeds; status 1 on timeout.
  wait_for() {
    local t=$(($(date +%s) + $1)); shift
    until "$@" > /dev/null 2>&1; do
      [ "$(date +%s)" -ge "$t" ] && return 1
      sleep 0.2
    done
  }
  running() { on "$1" "$work/bin/udlm" status 2> /dev/null | grep -q "running"; }
  ls_started() { on "$1" lvmlockctl -i 2> /dev/null | grep -q "^LS dlm lvm_$2"; }
  nodes_are() { [ "$(nodes_of "$1" "$2")" = "$3" ]; }
  # The VG lock's version, as lvmlockctl -i shows it under lvm_vg1.
  vg_ver() {
    on "$1" lvmlockctl -i 2> /dev/null |
      awk '/^LS / { inls = ($3 == "lvm_vg1") } inls && /^LK VG/ { for (i = 1; i < NF; i++) if ($i == "ver") { print $(i + 1); exit } }'
  }

  local all
  all=$(seq -s ' ' 1 "$NH")
  for k in $(seq 1 "$NH"); do start_udlmd "$k"; done
  local up=0
  for k in $(seq 1 "$NH"); do
    wait_for 20 test -s "$(view "$k")/cluster_name" && wait_for 20 running "$k" && up=$((up + 1))
  done
  check "$NH hosts: every udlmd up, its view has cluster_name and comms/" \
    "$([ "$up" = "$NH" ] && [ "$(cat "$(view 1)/cluster_name")" = udlmtest ] &&
      [ "$(ls "$(view 1)/comms" | sort -n | tr '\n' ' ')" = "$all " ] &&
      [ "$(cat "$(view 2)/comms/2/local")" = 1 ] && [ "$(cat "$(view 2)/comms/1/local")" = 0 ]; echo $?)" \
    "$(tail -n 5 "$base"/udlmd*.log)"
  for k in $(seq 1 "$NH"); do start_lvmlockd "$k"; done
  for k in $(seq 1 "$NH"); do wait_for 10 on "$k" lvmlockctl -i; done

  local out st
  out=$(on 1 vgcreate --shared vg1 "$loop" 2>&1); st=$?
  check "$NH hosts: vgcreate --shared on host 1" \
    "$([ $st = 0 ] && grep -q 'successfully created' <<< "$out"; echo $?)" "$out"
  wait_for 15 ls_started 1 vg1
  for k in $(seq 2 "$NH"); do
    on "$k" vgchange --lock-start vg1 > "$base/start$k.out" 2>&1
  done
  local started=0
  for k in $(seq 1 "$NH"); do wait_for 15 ls_started "$k" vg1 && started=$((started + 1)); done
  check "$NH hosts: vgchange --lock-start on every host (lvmlockctl -i lists LS dlm lvm_vg1)" \
    "$([ $started = "$NH" ]; echo $?)" "$(for k in $all; do echo "host $k:"; on "$k" lvmlockctl -i 2>&1 | head -5; done)"
  local viewok=0
  for k in $(seq 1 "$NH"); do wait_for 5 nodes_are "$k" lvm_vg1 "$all" && viewok=$((viewok + 1)); done
  check "$NH hosts: every view lists nodes $all under spaces/lvm_vg1/nodes" \
    "$([ $viewok = "$NH" ]; echo $?)" "$(for k in $all; do echo "host $k: $(nodes_of "$k" lvm_vg1)"; done)"
  out=$(on "$NH" vgs --noheadings -o vg_name,lock_type,lock_args vg1 2>&1)
  check "$NH hosts: host $NH sees vg1 as dlm 1.0.0:udlmtest" \
    "$(grep -q 'vg1 *dlm *1.0.0:udlmtest' <<< "$out"; echo $?)" "$out"

  out=$(on 1 lvcreate -an -Zn -Wn -L 16M -n lv1 vg1 2>&1); st=$?
  check "$NH hosts: lvcreate on host 1" "$st" "$out"

  # LV locks (activation is off, but the lock is taken as if activating).
  out=$(on 1 lvchange -aey vg1/lv1 2>&1); st=$?
  check "$NH hosts: host 1 takes lv1 EX" "$st" "$out"
  local refused=0 o2=""
  for k in $(seq 2 "$NH"); do
    for m in -aey -asy; do
      out=$(on "$k" lvchange $m vg1/lv1 2>&1); st=$?
      o2+="host $k $m: exit $st: $out"$'\n'
      [ $st != 0 ] && grep -q 'locked by other host' <<< "$out" && refused=$((refused + 1))
    done
  done
  check "$NH hosts: lv1 EX on host 1 refused to the others (EX and SH: LV locked by other host)" \
    "$([ $refused = $((2 * (NH - 1))) ]; echo $?)" "$o2"
  on 1 lvchange -an vg1/lv1 > /dev/null 2>&1
  local s2 s1 x1
  on 2 lvchange -asy vg1/lv1 > /dev/null 2>&1; s2=$?
  on 1 lvchange -asy vg1/lv1 > /dev/null 2>&1; s1=$?
  out=$(on 1 lvchange -aey vg1/lv1 2>&1); x1=$?
  check "$NH hosts: SH on hosts 1 and 2 at once, SH->EX on host 1 refused" \
    "$([ $s2 = 0 ] && [ $s1 = 0 ] && [ $x1 != 0 ]; echo $?)" "sh2=$s2 sh1=$s1 ex1=$x1: $out"
  on 1 lvchange -an vg1/lv1 > /dev/null 2>&1
  on 2 lvchange -an vg1/lv1 > /dev/null 2>&1

  # The VG's version counter travels in the VG lock's LVB.
  on 2 lvs vg1 > /dev/null 2>&1
  local v_before v1 v2
  v_before=$(vg_ver 2)
  on 1 lvcreate -an -Zn -Wn -L 8M -n lv2 vg1 > "$base/lvcreate2.out" 2>&1
  on 2 lvs vg1 > "$base/lvs2.out" 2>&1
  v1=$(vg_ver 1); v2=$(vg_ver 2)
  check "$NH hosts: the VG version passes through the LVB (host 2 before $v_before, after: host 1 $v1, host 2 $v2)" \
    "$([ -n "$v1" ] && [ "$v1" = "$v2" ] && [ "${v_before:-0}" -lt "$v2" ] && grep -q lv2 "$base/lvs2.out"; echo $?)" \
    "$(cat "$base/lvcreate2.out" "$base/lvs2.out"; on 1 lvmlockctl -i 2>&1)"

  # lvmlockd dies holding lv1 EX (PERSISTENT): the orphan keeps it locked;
  # udlm leave (dlm_tool leave) drops the lockspaces with their orphans.
  on 1 lvchange -aey vg1/lv1 > /dev/null 2>&1
  kill -9 "${lvmlockd_pid[1]}"; wait "${lvmlockd_pid[1]}" 2> /dev/null
  out=$(on 2 lvchange -aey vg1/lv1 2>&1); st=$?
  local spaces_after_kill
  spaces_after_kill=$(ls "$(view 1)/spaces" | tr '\n' ' ')
  check "$NH hosts: lvmlockd of host 1 killed: its orphan EX still refuses lv1 to host 2; its lockspaces stay ($spaces_after_kill)" \
    "$([ $st != 0 ] && grep -q 'locked by other host' <<< "$out" && grep -q lvm_vg1 <<< "$spaces_after_kill"; echo $?)" "$out"
  # Restarted without adoption, lvmlockd cannot start the VG: its
  # dlm_new_lockspace(NEWEXCL) finds the lockspaces still there (EEXIST).
  start_lvmlockd 1
  wait_for 10 on 1 lvmlockctl -i
  on 1 vgchange --lock-start vg1 > "$base/restart0.out" 2>&1
  sleep 1
  check "$NH hosts: lvmlockd restarted on host 1 without adoption: lock start refused (EEXIST), nothing started" \
    "$(! ls_started 1 vg1 && grep -q 'add_lockspace_dlm lvm_vg1 adopt 0 error' "$base/lvmlockd1.log"; echo $?)" \
    "$(cat "$base/restart0.out"; grep -i 'error' "$base/lvmlockd1.log" | tail -5)"
  local l1 l2
  out=$(on 1 "$work/bin/udlm" leave lvm_vg1 2>&1); l1=$?
  out+=$(on 1 "$work/bin/udlm" leave lvm_global 2>&1); l2=$?
  wait_for 5 nodes_are 2 lvm_vg1 "$(seq -s ' ' 2 "$NH")"
  local nodes2
  nodes2=$(nodes_of 2 lvm_vg1)
  out+=$'\n'$(on 2 lvchange -aey vg1/lv1 2>&1); st=$?
  check "$NH hosts: udlm leave on host 1: gone from host 2's view ($nodes2), host 2 now gets lv1 EX" \
    "$([ $l1 = 0 ] && [ $l2 = 0 ] && [ $st = 0 ] && [ ! -e "$(view 1)/spaces/lvm_vg1" ] &&
      [ "$nodes2" = "$(seq -s ' ' 2 "$NH")" ]; echo $?)" "$out"
  on 2 lvchange -an vg1/lv1 > /dev/null 2>&1
  on 1 vgchange --lock-start vg1 > "$base/restart1.out" 2>&1
  wait_for 15 ls_started 1 vg1; st=$?
  check "$NH hosts: after udlm leave, host 1's lvmlockd starts vg1 again" "$st" "$(cat "$base/restart1.out")"

  # vgremove counts the hosts in spaces/lvm_vg1/nodes.
  out=$(on 1 vgremove -y vg1 2>&1); st=$?
  check "$NH hosts: vgremove on host 1 refused while other hosts are joined" \
    "$([ $st != 0 ] && grep -q 'not stopped on other hosts' <<< "$out"; echo $?)" "$out"
  on 2 vgchange --lock-stop vg1 > "$base/stop2.out" 2>&1
  local rest
  rest=$(seq -s ' ' 1 "$NH" | sed 's/\b2 //; s/ 2$//')
  wait_for 5 nodes_are 1 lvm_vg1 "$rest"
  check "$NH hosts: host 2 stops vg1: host 1's view lists $rest" \
    "$([ "$(nodes_of 1 lvm_vg1)" = "$rest" ] && [ ! -e "$(view 2)/spaces/lvm_vg1" ]; echo $?)" \
    "host 1: $(nodes_of 1 lvm_vg1); host 2: $(ls "$(view 2)/spaces" 2>&1)"
  if [ "$NH" -gt 2 ]; then
    out=$(on 1 vgremove -y vg1 2>&1); st=$?
    check "$NH hosts: vgremove still refused while host 3 is joined" \
      "$([ $st != 0 ] && grep -q 'not stopped on other hosts' <<< "$out"; echo $?)" "$out"
  fi
  on 2 vgchange --lock-start vg1 > /dev/null 2>&1
  wait_for 15 ls_started 2 vg1
  wait_for 5 nodes_are 1 lvm_vg1 "$all"; st=$?
  check "$NH hosts: host 2 starts vg1 again" "$st" "$(nodes_of 1 lvm_vg1)"

  # (The refused vgremove above removed the LVs before it found the VG
  # busy.)
  on 1 lvcreate -an -Zn -Wn -L 16M -n lvk vg1 > "$base/lvcreate3.out" 2>&1

  # Host 2's udlmd restarts under its running lvmlockd: a rebooted node.
  # lvmlockd's handles fail (they do not hang), and a lock stop and start
  # brings the VG back.
  kill -9 "${udlmd_pid[2]}"; { wait "${udlmd_pid[2]}"; } 2> /dev/null
  start_udlmd 2
  wait_for 20 running 2
  local r0 r1 r2
  r0=$(date +%s)
  out=$(timeout 60 "$work/bin/hostrun" "$work" "$R" 2 lvchange -aey vg1/lvk 2>&1); r1=$?
  r2=$(($(date +%s) - r0))
  check "$NH hosts: host 2's udlmd restarted: its lvmlockd's lock request fails (exit $r1 after $r2 s), no hang" \
    "$([ $r1 != 0 ] && [ $r1 != 124 ]; echo $?)" "$out"
  out=$(timeout 60 "$work/bin/hostrun" "$work" "$R" 2 vgchange --lock-stop vg1 2>&1)
  out+=$'\n'$(timeout 60 "$work/bin/hostrun" "$work" "$R" 2 vgchange --lock-start vg1 2>&1)
  wait_for 15 ls_started 2 vg1 && wait_for 5 nodes_are 1 lvm_vg1 "$all"; st=$?
  if [ $st = 0 ]; then
    on 2 lvchange -aey vg1/lvk > "$base/restart2.out" 2>&1; st=$?
    on 2 lvchange -an vg1/lvk >> "$base/restart2.out" 2>&1
  fi
  check "$NH hosts: then --lock-stop and --lock-start on host 2 bring vg1 back (LV lock works)" "$st" \
    "$out$(cat "$base/restart2.out" 2> /dev/null)$(on 2 lvmlockctl -i 2>&1)"

  # Host NH dies (lvmlockd and udlmd, kill -9) holding an LV's lock EX:
  # the others get it only once its lease has run out.
  out=$(on "$NH" lvchange -aey vg1/lvk 2>&1); st=$?
  check "$NH hosts: host $NH takes lvk EX" "$st" "$(cat "$base/lvcreate3.out"; echo "$out")"
  # Timed from just before the kill: the lease cannot start earlier.
  local t0 got="" tries=0 log=""
  t0=$(date +%s%N)
  kill -9 "${lvmlockd_pid[$NH]}" "${udlmd_pid[$NH]}"
  { wait "${lvmlockd_pid[$NH]}"; wait "${udlmd_pid[$NH]}"; } 2> /dev/null
  # Host 1 asks again and again. While udlm waits out the lease its request
  # is either refused (before the loss is noticed) or held, as the kernel
  # DLM holds requests during recovery; none may succeed before the lease.
  while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 30000 ]; do
    tries=$((tries + 1))
    on 1 lvchange -aey vg1/lvk > "$base/kill.out" 2>&1; st=$?
    local at=$(( ($(date +%s%N) - t0) / 1000000 ))
    log+="try $tries ended at $at ms: exit $st"$'\n'
    if [ $st = 0 ]; then got=$at; break; fi
    sleep 0.1
  done
  check "$NH hosts: host $NH killed holding lvk EX: host 1 gets it after ${got:-never} ms, not before the lease (${lease_ms} ms)" \
    "$([ -n "$got" ] && [ "$got" -ge "$lease_ms" ]; echo $?)" "$log$(cat "$base/kill.out")"
  local left
  left=$(seq -s ' ' 1 $((NH - 1)))
  wait_for 10 nodes_are 1 lvm_vg1 "$left"; st=$?
  check "$NH hosts: host $NH gone from host 1's view ($(nodes_of 1 lvm_vg1))" "$st"
  on 1 lvchange -an vg1/lvk > /dev/null 2>&1
  for k in $(seq 2 $((NH - 1))); do on "$k" vgchange --lock-stop vg1 > /dev/null 2>&1; done
  wait_for 5 nodes_are 1 lvm_vg1 1
  out=$(on 1 vgremove -y vg1 2>&1); st=$?
  check "$NH hosts: vgremove on host 1 once the others left" \
    "$([ $st = 0 ] && grep -q 'successfully removed' <<< "$out"; echo $?)" "$out"

  # Teardown: lvmlockd stops on SIGTERM (twice), then udlmd.
  for k in $(seq 1 $((NH - 1))); do
    timeout 10 "$work/bin/hostrun" "$work" "$R" "$k" lvmlockctl --stop-lockspaces --wait 1 > /dev/null 2>&1
    kill -TERM "${lvmlockd_pid[$k]}" 2> /dev/null; sleep 0.3; kill -TERM "${lvmlockd_pid[$k]}" 2> /dev/null
  done
  for k in $(seq 1 $((NH - 1))); do
    wait_for 5 bash -c "! kill -0 ${lvmlockd_pid[$k]}" || kill -9 "${lvmlockd_pid[$k]}" 2> /dev/null
    kill -TERM "${udlmd_pid[$k]}" 2> /dev/null
  done
  for k in $(seq 1 "$NH"); do
    wait "${udlmd_pid[$k]}" 2> /dev/null
    wait "${lvmlockd_pid[$k]}" 2> /dev/null
  done
  # A node that stops empties its view (no cluster_name: "no DLM running"),
  # keeping the top directory for a bind mount.
  check "$NH hosts: udlmd stopped on host 1: its view is empty, its top directory still there" \
    "$([ -d "$base/host1/dlm/configfs" ] && [ -z "$(ls -A "$base/host1/dlm/configfs")" ]; echo $?)" \
    "$(find "$base/host1/dlm/configfs" | head)"
  if [ -n "${VERBOSE:-}" ]; then tail -n 20 "$base"/*.log; fi
}

start=$(date +%s)
for nh in ${HOSTS:-2 3}; do run_hosts "$nh"; done
echo "lvmlockd test: $pass passed, $fail failed ($(($(date +%s) - start)) s)"
[ "$fail" = 0 ]
