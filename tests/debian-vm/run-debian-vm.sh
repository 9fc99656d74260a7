#!/usr/bin/env bash
# run-debian-vm.sh: the debian-vm suite. A QEMU guest (TCG) boots Debian 12
# with systemd as PID 1; the .debs under test are installed in it the way an
# operator does, the guest reboots, and the checks of guest/stages.sh run at
# each boot (install; the shipped example config booted; pages reserved,
# every server on the allocator, then apt purge). See README.md here.
#
#   run-debian-vm.sh (--debs DIR | --source TREE) [--cache DIR] [--timeout SECONDS]
#   run-debian-vm.sh --shell [--cache DIR]   boot the last run's disk with a root shell on this terminal
#   run-debian-vm.sh --skip REASON           print the reason, exit 77
#
# --debs DIR: the .debs to install (libmimalloc-numa0 and mimalloc-numa-tools,
# or whatever non -dev packages DIR has). --source TREE: build them first from
# the source tree TREE into <cache>/debs (packaging/build-debs when the tree
# has it, else dpkg-buildpackage in a scratch copy with packaging/debian as
# ./debian, as tests/packaging does).
#
# Exit status: 0 when every check passed, 1 when one failed or the scenario
# did not finish, 77 (meson: skipped) with a reason when QEMU, mmdebstrap,
# root, the network to the Debian mirror, or enough free memory or disk is
# missing.
#
# Environment: DEBIAN_VM_CACHE (cache directory; default --cache, else
# ./debian-vm-cache), DEBIAN_VM_BOOT_TIMEOUT (seconds per boot, default 420),
# DEBIAN_VM_NO_INSTALL=1 (never call apt-get on the host), DEBIAN_VM_MIRROR
# (mmdebstrap MIRROR arguments instead of the host's apt sources),
# DEBIAN_VM_PRE_<STAGE>='shell command' (run in the guest at the start of
# stage install, example or servers, after the boot finished; debugging),
# DEBIAN_VM_RESERVE_PAGES and DEBIAN_VM_PAGE_SIZE (the [reserve] written for
# the third boot: per_node, default 8; page_size, default 2M).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEBS= SOURCE= CACHE="${DEBIAN_VM_CACHE:-}" BOOT_TMO="${DEBIAN_VM_BOOT_TIMEOUT:-420}" SHELL_MODE=0
MAX_BOOTS=4   # install, example, servers (+1 to see a stage repeat itself)

VM_NAME=debian-vm
# shellcheck source-path=SCRIPTDIR source=../vm-common/vm.sh
. "$here/../vm-common/vm.sh"  # skip, die, now, since, vm_install

while [ $# -gt 0 ]; do
  case "$1" in
    --debs) DEBS="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --cache) CACHE="${CACHE:-$2}"; shift 2 ;;
    --timeout) BOOT_TMO="$2"; shift 2 ;;
    --shell) SHELL_MODE=1; shift ;;
    --skip) skip "$2" ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
CACHE="${CACHE:-$PWD/debian-vm-cache}"
mkdir -p "$CACHE" || die "cannot create $CACHE"
CACHE="$(cd "$CACHE" && pwd)"
RUN="$CACHE/run"

T0=$(now)
timings=()

if [ "$SHELL_MODE" = 1 ]; then
  img=$(ls -d "$CACHE"/image-* 2>/dev/null | head -1)
  [ -n "$img" ] || die "no image in $CACHE: run the suite once first"
  mkdir -p "$RUN/share"
  echo "debian-vm: root shell on the console of $RUN/overlay.qcow2 (Ctrl-A x quits QEMU; 'poweroff' in the guest)"
  exec "$here/boot.sh" --shell --image "$img" --overlay "$RUN/overlay.qcow2" --share "$RUN/share"
fi
[ -n "$DEBS" ] || [ -n "$SOURCE" ] || die "--debs DIR or --source TREE is required (see --help)"

# ---- 1. host: architecture, memory, disk, packages -------------------------------
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m); the guest is x86_64 under TCG"
[ "$(id -u)" = 0 ] || skip "needs root (mmdebstrap --mode=root builds the image; the .debs are built with dpkg-buildpackage)"
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
[ "${avail_mib:-0}" -ge 4096 ] || skip "host has ${avail_mib} MiB available; the guest needs about 3.5 GiB"
free_mib=$(df -Pm "$CACHE" | awk 'NR == 2 { print $4 }')
need_mib=2048
ls "$CACHE"/image-*/disk.raw >/dev/null 2>&1 || need_mib=6144
[ "${free_mib:-0}" -ge "$need_mib" ] || skip "$CACHE has ${free_mib} MiB free; the image and a run need ${need_mib} MiB"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v xz >/dev/null || need+=(xz-utils)
command -v dpkg-architecture >/dev/null || need+=(dpkg-dev)  # mmdebstrap's eatmydata hook; dpkg-buildpackage
[ -z "$SOURCE" ] || command -v dh >/dev/null || need+=(debhelper)
vm_install "$CACHE/apt.log" DEBIAN_VM_NO_INSTALL "${need[@]}"
# The guest needs 9p (virtfs) in QEMU: Debian's qemu-system-x86 has it.
qemu-system-x86_64 -device help 2>/dev/null | grep -q virtio-9p-pci || skip "this QEMU has no virtio-9p-pci (virtfs)"
timings+=("host packages $(since "$T0") s")

# ---- 2. the .debs ----------------------------------------------------------------------
build_debs() {  # TREE OUT
  local tree="$1" out="$2" scratch
  rm -rf "$out" && mkdir -p "$out"
  if [ -x "$tree/packaging/build-debs" ]; then
    "$tree/packaging/build-debs" "$out"
    return
  fi
  # Until the tree has packaging/build-debs: what tests/packaging's deb test does.
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/debian-vm-debs.XXXXXX") || return 1
  mkdir -p "$scratch/src"
  if [ -e "$tree/.git" ] && command -v git >/dev/null; then
    (cd "$tree" && git ls-files -z --cached --others --exclude-standard | grep -zv -e '^debian/' -e '^build' |
       xargs -0 cp -a --parents -t "$scratch/src") || return 1
  else
    (cd "$tree" && tar --exclude='./build*' --exclude=./.git --exclude=./debian -cf - .) | tar -xf - -C "$scratch/src" ||
      return 1
  fi
  cp -a "$tree/packaging/debian" "$scratch/src/debian" || return 1
  (cd "$scratch/src" && env -u LD_PRELOAD -u MIMALLOC_CONFIG -u MAKEFLAGS DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
     dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; rm -rf "$scratch"; return 1; }
  mv "$scratch"/*.deb "$out"/ && rm -rf "$scratch"
}
if [ -z "$DEBS" ]; then
  t=$(now)
  echo "debian-vm: building the .debs from $SOURCE into $CACHE/debs"
  build_debs "$SOURCE" "$CACHE/debs" || die "building the .debs failed (log: $CACHE/debs/build.log)"
  DEBS="$CACHE/debs"
  timings+=("debs $(since "$t") s")
fi
ls "$DEBS"/*.deb >/dev/null 2>&1 || die "no .deb in $DEBS"
DEBS="$(cd "$DEBS" && pwd)"
echo "debian-vm: packages under test: $(cd "$DEBS" && ls *.deb | tr '\n' ' ')"

# ---- 3. the image ------------------------------------------------------------------------
t=$(now)
IMG=$("$here/image.sh" --cache "$CACHE" --debs "$DEBS")
rc=$?
[ "$rc" = 77 ] && skip "$IMG"
[ "$rc" = 0 ] && [ -d "$IMG" ] || die "the image could not be built"
timings+=("image $(since "$t") s")

# ---- 4. the boots ---------------------------------------------------------------------------
rm -rf "$RUN" && mkdir -p "$RUN/share/debs" || die "cannot create $RUN"
cp "$here/guest/stages.sh" "$RUN/share/" && cp "$DEBS"/*.deb "$RUN/share/debs/" || die "cannot fill the share"
rm -f "$RUN"/share/debs/*-dbgsym_*.deb
printf 'RESERVE_PAGES=%d\nPAGE_SIZE=%q\n' "${DEBIAN_VM_RESERVE_PAGES:-8}" "${DEBIAN_VM_PAGE_SIZE:-2M}" \
  >"$RUN/share/scenario.conf"
for s in install example servers; do
  v="DEBIAN_VM_PRE_${s^^}"
  [ -z "${!v:-}" ] || printf '%s\n' "${!v}" >"$RUN/share/pre-$s.sh"
done
CONSOLE="$RUN/console.log" AGENT="$RUN/agent.log"
: >"$CONSOLE"; : >"$AGENT"
finished=0 boot_problem=
for ((b = 1; b <= MAX_BOOTS; b++)); do
  t=$(now)
  lines_before=$(wc -l <"$AGENT")
  echo "== boot $b" >>"$CONSOLE"
  "$here/boot.sh" --image "$IMG" --overlay "$RUN/overlay.qcow2" --share "$RUN/share" \
    --console "$CONSOLE" --agent-log "$AGENT" --timeout "$BOOT_TMO" 2>"$RUN/boot$b.txt"
  brc=$?
  new=$(tail -n +$((lines_before + 1)) "$AGENT" | tr -d '\r')
  stage=$(echo "$new" | sed -n 's/^@@ STAGE //p' | head -1)
  timings+=("boot $b (${stage:-no stage}) $(since "$t") s")
  echo "debian-vm: boot $b: stage ${stage:-none}, $(cat "$RUN/boot$b.txt")"
  if echo "$new" | grep -q '^@@ END'; then finished=1; break; fi
  if ! echo "$new" | grep -q '^@@ NEXT reboot'; then
    if [ "$brc" = 124 ]; then boot_problem="boot $b (stage ${stage:-none}) did not finish within $BOOT_TMO s"
    else boot_problem="boot $b (stage ${stage:-none}) ended (qemu exit $brc) before its stage did"; fi
    break
  fi
done
[ "$finished" = 1 ] || [ -n "$boot_problem" ] || boot_problem="the scenario did not end after $MAX_BOOTS boots"

# ---- 5. results ---------------------------------------------------------------------------------
echo "---- the agent's output (second serial port, $AGENT) ----"
tr -d '\r' <"$AGENT"
echo "---- end of the agent's output ----"
if [ -n "$boot_problem" ]; then
  echo "---- the end of the console ($CONSOLE) ----"
  tr -d '\r' <"$CONSOLE" | tail -n 80
  echo "---- end of the console ----"
fi
out=$(tr -d '\r' <"$AGENT")
pass=$(grep -c '^ok - ' <<<"$out")
fail=$(grep -c '^not ok - ' <<<"$out")
echo "debian-vm: results"
grep -E '^(not )?ok - ' <<<"$out" | sed 's/^/  /'
for s in install example servers; do
  grep -qx "@@ STAGE $s" <<<"$out" && continue
  echo "  not ok - stage $s did not run"
  fail=$((fail + 1))
done
if [ -n "$boot_problem" ]; then
  echo "  not ok - $boot_problem (console: $CONSOLE)"
  fail=$((fail + 1))
fi
timings+=("total $(since "$T0") s")
echo "debian-vm: timings: $(IFS=';'; echo "${timings[*]}" | sed 's/;/; /g')"
echo "debian-vm: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
