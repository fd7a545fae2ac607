#!/usr/bin/env bash
# A throwaway systemd booted as PID 1 of fresh namespaces over a copy-on-write overlay of `/`.
# Used by the integration tests, `make demo` and `make bench`.
#
#   sandbox.sh up NAME      boot one in the background; prints "PID CGROUP" once it has booted
#   sandbox.sh down PID CGROUP
#                           stop it, kill whatever is left in its cgroup, remove the cgroup
#   sandbox.sh run NAME     (for test harnesses) print the CGROUP line, then become the
#                           sandbox's launcher in the foreground; it is SIGKILLed, and with it
#                           every process of the sandbox, if the caller dies without `down`
#   sandbox.sh wait CGROUP  print the PID of the sandbox's systemd once it has booted
#   sandbox.sh sweep        tear down every sandbox left behind (say, by a killed test run)
#   sandbox.sh link PID_A IF_A ADDR_A PID_B IF_B ADDR_B
#                           join two booted sandboxes (by their systemd's host PID) with a
#                           veth pair, IF_A/ADDR_A (e.g. 10.99.0.1/24) in A, IF_B/ADDR_B in B,
#                           both up. The pair is created inside the two network namespaces
#                           and never exists on the host; it goes away with either sandbox.
#
# Never boot systemd on the real root: its boot-time tmpfiles rules empty /tmp. Everything
# systemd writes here lands in a tmpfs upper layer that disappears with the namespace.
set -euo pipefail

CGROOT=/sys/fs/cgroup/unified
[ -f "$CGROOT/cgroup.procs" ] || CGROOT=/sys/fs/cgroup
PREFIX=fm-sandbox
TARGET=fm-sandbox.target

die() { echo "sandbox: $*" >&2; exit 1; }

# Units that touch kernel-wide state: a container must not run them.
MASKED=(systemd-sysctl.service systemd-binfmt.service systemd-modules-load.service
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-timesyncd.service systemd-random-seed.service
  systemd-pstore.service systemd-firstboot.service systemd-repart.service
  systemd-hwdb-update.service kmod-static-nodes.service proc-sys-fs-binfmt_misc.automount
  proc-sys-fs-binfmt_misc.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount
  systemd-remount-fs.service getty.target console-getty.service)

# Runs as PID 1 of the new namespaces: build the root, then become systemd.
init() {
  local name=$1
  mount --make-rprivate /
  # /run of the host is a plain directory on /, so a tmpfs over it is private to this namespace.
  mount -t tmpfs -o mode=755 fm-sandbox /run
  mkdir -p /run/upper /run/work /run/root
  mount -t overlay overlay -o lowerdir=/,upperdir=/run/upper,workdir=/run/work /run/root
  local r=/run/root
  mount -t proc proc "$r/proc"
  mount -t sysfs -o ro sysfs "$r/sys"
  mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
  mount -t tmpfs -o mode=755,nosuid tmpfs "$r/dev"
  local d
  for d in null zero full random urandom tty; do
    touch "$r/dev/$d"
    mount --bind "/dev/$d" "$r/dev/$d"
  done
  mkdir -p "$r/dev/pts" "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
  ln -s pts/ptmx "$r/dev/ptmx"
  touch "$r/dev/console"
  mount --bind /dev/null "$r/dev/console"
  mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$r/run"
  mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  mkdir -p "$r/run/systemd/system"
  cat >"$r/run/systemd/system/$TARGET" <<EOF
[Unit]
Description=failover-manager test sandbox
Wants=systemd-journald.socket systemd-journald.service dbus.socket
After=systemd-journald.socket dbus.socket
AllowIsolate=yes
EOF
  for d in "${MASKED[@]}"; do ln -sf /dev/null "$r/run/systemd/system/$d"; done
  echo "$name" >"$r/etc/hostname"
  mkdir -p "$r/.oldroot"
  cd "$r"
  pivot_root . .oldroot
  umount -l /.oldroot
  rmdir /.oldroot 2>/dev/null || true
  exec env -i container="$name" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit="$TARGET"
}

# Host PID of the namespace's PID 1: the process in the cgroup whose innermost PID is 1.
find_pid1() {
  local cg=$1 p
  for p in $(cat "$cg/cgroup.procs" "$cg/init.scope/cgroup.procs" 2>/dev/null); do
    if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$p/status" 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

new_cgroup() {
  [ "$(id -u)" = 0 ] || die "needs root"
  local cg="$CGROOT/$PREFIX-$1-$$-$RANDOM"
  mkdir "$cg"
  echo "$cg"
}

# Joins the cgroup, then becomes the launcher: the new cgroup namespace is rooted there, and
# --kill-child takes PID 1 (so the whole PID namespace) down when the launcher dies.
launch() {
  # The caller: SANDBOX_CALLER (its PID, given by the tests and the drills), else our parent.
  local cg=$1 attached=$2 caller=${SANDBOX_CALLER:-$PPID}
  echo $$ >"$cg/cgroup.procs"
  local guard=()
  # The death signal holds only from when setpriv sets it: a caller that died before then has
  # left this process to another parent, so the same process then checks that its parent is
  # still the caller (and ends) before it becomes the launcher.
  [ "$attached" = attached ] &&
    guard=(setpriv --pdeathsig KILL sh -c '[ "$PPID" = "$1" ] || exit 1; shift; exec "$@"' guard "$caller")
  exec "${guard[@]}" unshare --kill-child=KILL --fork --pid --mount --uts --ipc --net --cgroup \
    --mount-proc "$SELF" __init "$(basename "$cg")"
}

wait_ready() {
  local cg=$1 pid="" state
  for _ in $(seq 1 200); do
    # PID 1 runs this script first; it is ready only once it has become systemd and booted.
    [ -n "$pid" ] || pid=$(find_pid1 "$cg" || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ]; then
      state=$(nsenter -t "$pid" -a systemctl is-system-running 2>/dev/null || true)
      case "$state" in
        running | degraded)
          echo "$pid"
          return 0
          ;;
      esac
    fi
    [ -d "$cg" ] || die "sandbox $cg went away while booting"
    sleep 0.05
  done
  die "systemd in $cg did not boot within 10 s (state: ${state:-none})"
}

up() {
  local cg pid
  cg=$(new_cgroup "$1")
  setsid "$SELF" __launch "$cg" detached </dev/null >/dev/null 2>&1 &
  if ! pid=$(wait_ready "$cg"); then
    down "$(find_pid1 "$cg" || echo 0)" "$cg" || true
    die "boot failed"
  fi
  echo "$pid $cg"
}

# Remove a cgroup tree bottom-up after killing everything in it.
remove_cgroup() {
  local cg=$1
  [ -d "$cg" ] || return 0
  for _ in $(seq 1 100); do
    [ -f "$cg/cgroup.kill" ] && echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
    find "$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "$cg" 2>/dev/null && return 0
    sleep 0.05
  done
  die "could not remove $cg"
}

down() {
  local pid=$1 cg=$2
  case "$cg" in "$CGROOT/$PREFIX"-*) ;; *) die "not a sandbox cgroup: $cg" ;; esac
  if [ "$pid" != 0 ] && [ -d "/proc/$pid" ]; then
    timeout 5 nsenter -t "$pid" -a systemctl exit >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.05
    done
  fi
  remove_cgroup "$cg"
}

link() {
  local pa=$1 ia=$2 aa=$3 pb=$4 ib=$5 ab=$6
  [ -d "/proc/$pa" ] && [ -d "/proc/$pb" ] || die "link: no such sandbox PID"
  # Created from inside A's namespace with its peer placed straight into B's: no name on the
  # host, so parallel tests cannot collide.
  nsenter -t "$pa" -n ip link add "$ia" type veth peer name "$ib" netns "$pb"
  nsenter -t "$pa" -n ip addr add "$aa" dev "$ia"
  nsenter -t "$pb" -n ip addr add "$ab" dev "$ib"
  nsenter -t "$pa" -n ip link set lo up
  nsenter -t "$pb" -n ip link set lo up
  nsenter -t "$pa" -n ip link set "$ia" up
  nsenter -t "$pb" -n ip link set "$ib" up
}

sweep() {
  local cg
  for cg in "$CGROOT/$PREFIX"-*; do
    [ -d "$cg" ] || continue
    down "$(find_pid1 "$cg" || echo 0)" "$cg"
  done
}

SELF=$(readlink -f "$0")
case "${1:-}" in
  up) up "${2:?name}" ;;
  down) down "${2:?pid}" "${3:?cgroup}" ;;
  run)
    cg=$(new_cgroup "${2:?name}")
    echo "$cg"
    launch "$cg" attached
    ;;
  wait) wait_ready "${2:?cgroup}" ;;
  sweep) sweep ;;
  link) link "${2:?pid}" "${3:?ifname}" "${4:?addr}" "${5:?pid}" "${6:?ifname}" "${7:?addr}" ;;
  __launch) launch "$2" "$3" ;;
  __init) init "${2:?name}" ;;
  *) die "usage: sandbox.sh up NAME | down PID CGROUP | run NAME | wait CGROUP | sweep | link ..." ;;
esac
