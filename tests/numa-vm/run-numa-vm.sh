#!/usr/bin/env bash
# run-numa-vm.sh: boot a 4-node (or NUMA_VM_NODES-node) NUMA guest under QEMU
# (TCG) and run the allocator's placement tests (numa_vm_test) and workload
# shapes (numa_shapes) inside it.
#
#   run-numa-vm.sh --prog NUMA_VM_TEST --lib LIBMIMALLOC_NUMA_SO [--shapes NUMA_SHAPES]
#                  [--cache DIR] [--tests "MODE..."] [--timeout SECONDS]
#   run-numa-vm.sh --skip REASON          (prints the reason, exits 77)
#
# meson runs it as the test 'numa-vm' (suite 'numa-vm'); see README.md here.
# Exit status: 0 when every in-guest check passed, 1 when one failed (or the
# guest did not finish), 77 (skipped) when QEMU, busybox-static, cpio or the
# Debian kernel cannot be had, or the host has too little free memory.
#
# Environment: NUMA_VM_CACHE (cache dir, default --cache or ./numa-vm-cache),
# NUMA_VM_TESTS (modes to run, default all), NUMA_VM_TIMEOUT (seconds for the
# guest run, default 280), NUMA_VM_TEST_TIMEOUT (seconds per test mode,
# default 60), NUMA_VM_PRE='shell command' (run in the guest before the
# tests, for debugging), NUMA_VM_EXTRA='FILE...' (more programs copied to
# /t with the libraries ldd lists, for NUMA_VM_PRE), NUMA_VM_NO_INSTALL=1
# (never call apt-get), NUMA_SHAPES_STRICT=1 (issue 13's open peak targets fail
# the shapes; README), NUMA_VM_MIMALLOC (Debian's mimalloc 2.0.9 for the
# shapes, default /usr/lib/<multiarch>/libmimalloc.so.2; absent: not run).
#
# The guest: 4 nodes (NUMA_VM_NODES), one vCPU (NUMA_VM_CPUS_PER_NODE) and 4 GiB each; distances 10 on the diagonal,
# 20 between nodes 0-2 and 1-3, 30 otherwise (node 0's nearest is node 2, not
# node 1); one 1 GiB and eight 2 MiB hugetlb pages reserved per node on the
# kernel command line. Debian's own kernel (linux-image-amd64), downloaded
# with apt-get download and unpacked into the cache, never installed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG= LIB= SHAPES= CACHE="${NUMA_VM_CACHE:-}" TESTS="${NUMA_VM_TESTS:-}"
ALL_TESTS="vm-sanity topology placement on-node remote-free spill huge-reserve stats thread-stacks"
# numa_shapes' modes (issue 13's workload shapes), run when --shapes is given
SHAPE_TESTS="shape-steady shape-reuse-exit shape-reuse-live shape-migrate-alt shape-migrate-old shape-churn shape-db shape-blocks256k"
NODES="${NUMA_VM_NODES:-4}" CPUS_PER_NODE="${NUMA_VM_CPUS_PER_NODE:-1}"
MEM_PER_NODE=4096 TEST_TIMEOUT="${NUMA_VM_TEST_TIMEOUT:-60}"
# TCG runs every vCPU on the host's 2 cores: a bigger guest takes longer
TMO="${NUMA_VM_TIMEOUT:-$((280 * NODES * CPUS_PER_NODE / 4))}"

VM_NAME=numa-vm
# shellcheck source-path=SCRIPTDIR source=../vm-common/vm.sh
. "$here/../vm-common/vm.sh"  # skip, die, now, since, vm_install, vm_qemu

while [ $# -gt 0 ]; do
  case "$1" in
    --prog) PROG="$2"; shift 2 ;;
    --lib) LIB="$2"; shift 2 ;;
    --shapes) SHAPES="$2"; shift 2 ;;
    --cache) CACHE="${CACHE:-$2}"; shift 2 ;;
    --tests) TESTS="$2"; shift 2 ;;
    --timeout) TMO="$2"; shift 2 ;;
    --skip) skip "$2" ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -n "$PROG" ] && [ -x "$PROG" ] || die "--prog: test program '$PROG' not found"
[ -z "$LIB" ] || [ -f "$LIB" ] || die "--lib: '$LIB' not found"
[ -z "$SHAPES" ] || [ -x "$SHAPES" ] || die "--shapes: '$SHAPES' not found"
case "$NODES" in [2-8]) ;; *) die "NUMA_VM_NODES=$NODES: 2 to 8 nodes" ;; esac
case "$CPUS_PER_NODE" in [1-4]) ;; *) die "NUMA_VM_CPUS_PER_NODE=$CPUS_PER_NODE: 1 to 4" ;; esac
CACHE="${CACHE:-$PWD/numa-vm-cache}"
if [ "$NODES" -gt 4 ]; then
  # huge-reserve faults a 1 GiB page per node (8 GiB of host memory on 8
  # nodes): left out of the bigger guest unless asked for
  ALL_TESTS="${ALL_TESTS/ huge-reserve/}"
fi
[ -z "$SHAPES" ] || ALL_TESTS="$ALL_TESTS $SHAPE_TESTS"
TESTS="${TESTS:-$ALL_TESTS}"
case " $TESTS " in *" vm-sanity "*) ;; *) TESTS="vm-sanity $TESTS" ;; esac
mkdir -p "$CACHE" || die "cannot create $CACHE"
CACHE="$(cd "$CACHE" && pwd)"

T0=$(now)

# ---- 1. host: architecture, memory, packages --------------------------------
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m), the guest is x86_64 under TCG"
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
[ "${avail_mib:-0}" -ge 7168 ] || skip "host has ${avail_mib} MiB available; the guest needs about 6 GiB (4 GiB of it for 1 GiB pages)"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
installed busybox-static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  [ "${NUMA_VM_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" = 0 ] || skip "missing ${need[*]} and not root to install them"
  vm_install "$CACHE/apt.log" NUMA_VM_NO_INSTALL "${need[@]}"
fi
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || skip "no $BUSYBOX (busybox-static)"
T_PKG=$(since "$T0")

# ---- 2. the guest kernel: Debian's, unpacked into the cache -----------------
KDIR="$CACHE/kernel"
fetch_kernel() {
  ls "$KDIR"/boot/vmlinuz-* >/dev/null 2>&1 && return 0
  local kpkg deb
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [ -z "$kpkg" ] && [ "$(id -u)" = 0 ] && [ "${NUMA_VM_NO_INSTALL:-0}" != 1 ]; then
    apt-get update -qq >/dev/null 2>&1
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  [ -n "$kpkg" ] || { echo "apt knows no linux-image-amd64 package"; return 1; }
  rm -rf "$CACHE/dl" && mkdir -p "$CACHE/dl"
  (cd "$CACHE/dl" && apt-get download "$kpkg" >"$CACHE/dl/log" 2>&1) || { echo "apt-get download $kpkg failed (no network?)"; return 1; }
  deb=$(ls "$CACHE/dl/${kpkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "apt-get download $kpkg gave no .deb"; return 1; }
  # only the kernel image and its config, not the 400 MB of modules
  rm -rf "$KDIR.new" && mkdir -p "$KDIR.new"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR.new" --wildcards './boot/vmlinuz-*' './boot/config-*' ||
    { echo "cannot unpack $deb"; return 1; }
  # Under TCG, decompressing the xz bzImage costs seconds per boot; the
  # vmlinux inside has a PVH entry note and QEMU boots it directly.
  local vmlinuz off
  vmlinuz=$(ls "$KDIR.new"/boot/vmlinuz-* | head -1)
  off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$vmlinuz" | head -1 | cut -d: -f1)
  if [ -n "$off" ] && command -v xz >/dev/null; then
    tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$KDIR.new/vmlinux" 2>/dev/null
    [ "$(head -c 4 "$KDIR.new/vmlinux" | tail -c 3)" = ELF ] || rm -f "$KDIR.new/vmlinux"
  fi
  rm -rf "$KDIR" && mv "$KDIR.new" "$KDIR" && rm -rf "$CACHE/dl"
}
exec 9>"$CACHE/.kernel.lock"
flock 9
why=$(fetch_kernel) || skip "cannot get the guest kernel: $why"
flock -u 9
KERNEL="$KDIR/vmlinux"
[ -s "$KERNEL" ] || KERNEL=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
T_KERNEL=$(since "$T0")

# ---- 3. initramfs -----------------------------------------------------------
R="$CACHE/root"
rm -rf "$R" && mkdir -p "$R"/{bin,dev,proc,sys,tmp,t/lib} || die "cannot create $R"
cp "$BUSYBOX" "$R/bin/busybox"
copy_libs() {  # the libraries ldd lists for $1, at the same paths (not the allocator: /t/lib has it)
  ldd "$1" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]*ld-linux/ { print $1 }' | while read -r l; do
    case "$(basename "$l")" in libmimalloc-numa.so*) continue ;; esac
    mkdir -p "$R$(dirname "$l")" && cp -L "$l" "$R$l"
  done
}
cp "$here/init.sh" "$R/init" && chmod +x "$R/init"
cp "$PROG" "$R/t/numa_vm_test" && copy_libs "$PROG"
[ -z "$SHAPES" ] || { cp "$SHAPES" "$R/t/numa_shapes" && copy_libs "$SHAPES"; }
if [ -n "$LIB" ]; then
  soname=$(readelf -d "$LIB" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
  cp -L "$LIB" "$R/t/lib/${soname:-libmimalloc-numa.so.0}"
else  # the one ldd finds
  l=$(ldd "$PROG" | awk '/libmimalloc-numa/ && /=> \// { print $3 }')
  [ -n "$l" ] && cp -L "$l" "$R/t/lib/$(basename "$l")"
fi
# Debian's mimalloc 2.0.9, numa_shapes' third allocator (issue 13 gap 4's peer), when the host has it
MIMALLOC_SO="${NUMA_VM_MIMALLOC:-/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/libmimalloc.so.2}"
if [ -n "$SHAPES" ] && [ -f "$MIMALLOC_SO" ]; then cp -L "$MIMALLOC_SO" "$R/t/lib/libmimalloc.so.2"
elif [ -n "$SHAPES" ]; then echo "numa-vm: $MIMALLOC_SO absent (tools/dev deps installs libmimalloc2.0): the shapes run without mimalloc 2.0.9"; fi
if command -v numactl >/dev/null; then cp "$(command -v numactl)" "$R/bin/" && copy_libs "$(command -v numactl)"; fi
for f in ${NUMA_VM_EXTRA:-}; do cp "$f" "$R/t/" && copy_libs "$f"; done
echo "$TESTS" >"$R/t/tests"
echo "TEST_TIMEOUT=$TEST_TIMEOUT" >"$R/t/config"
[ -z "${NUMA_VM_PRE:-}" ] || printf '%s\n' "$NUMA_VM_PRE" >"$R/t/pre.sh"
[ "${NUMA_SHAPES_STRICT:-}" != 1 ] || echo 1 >"$R/t/shapes-strict"   # open peak targets fail (README)
(cd "$R" && find . | cpio -o -H newc --quiet) >"$CACHE/initramfs.cpio" || die "cpio failed"
T_INITRD=$(since "$T0")

# ---- 4. QEMU ----------------------------------------------------------------
numa=() hp1=() hp2=()
for ((i = 0; i < NODES; i++)); do
  cpus=$((i * CPUS_PER_NODE)); [ "$CPUS_PER_NODE" = 1 ] || cpus="$cpus-$((i * CPUS_PER_NODE + CPUS_PER_NODE - 1))"
  numa+=(-object "memory-backend-ram,id=m$i,size=${MEM_PER_NODE}M" -numa "node,nodeid=$i,cpus=$cpus,memdev=m$i")
  hp1+=("$i:1") hp2+=("$i:8")
done
# Distances not monotone in the index: 0-2 and 1-3 are near (20), the rest 30.
for ((i = 0; i < NODES; i++)); do for ((j = i + 1; j < NODES; j++)); do
  numa+=(-numa "dist,src=$i,dst=$j,val=$(( (j - i) == 2 ? 20 : 30 ))")
done; done
append="console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off init_on_alloc=0"
append+=" hugepagesz=1G hugepages=$(IFS=,; echo "${hp1[*]}") hugepagesz=2M hugepages=$(IFS=,; echo "${hp2[*]}")"
LOG="$CACHE/serial.log"
rm -f "$LOG"
# -cpu max: pdpe1gb (1 GiB pages); -erms,-fsrm: the guest clears pages with rep stosq, faster under TCG.
# max-ram-below-4g=1G + (1+3) GiB per node: every node keeps a free aligned 1 GiB block at boot.
qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max,-erms,-fsrm
      -machine q35,max-ram-below-4g=1G -smp "$((NODES * CPUS_PER_NODE))" -m $((MEM_PER_NODE * NODES))M "${numa[@]}"
      -display none -no-reboot -monitor none -serial "file:$LOG"
      -kernel "$KERNEL" -initrd "$CACHE/initramfs.cpio" -append "$append")
echo "numa-vm: $NODES nodes, $CPUS_PER_NODE vCPU(s) each"
echo "numa-vm: kernel $(ls "$KDIR"/boot/vmlinuz-* | xargs basename) ($(basename "$KERNEL")), tests: $TESTS"
echo "numa-vm: ${qemu[*]}"
T1=$(now)
vm_qemu "$TMO" "$CACHE/qemu.out" "${qemu[@]}"
qrc=$QEMU_RC peak=$QEMU_PEAK_KB timed_out=$QEMU_TIMED_OUT
T_VM=$(since "$T1")

# ---- 5. results -------------------------------------------------------------
echo "---- serial console ($LOG) ----"
tr -d '\r' <"$LOG" 2>/dev/null
echo "---- end of serial console ----"
if [ "$qrc" != 0 ] && [ "$timed_out" = 0 ]; then
  echo "numa-vm: qemu exited with status $qrc:"
  cat "$CACHE/qemu.out"
fi
tr -d '\r' <"$LOG" 2>/dev/null | awk -v timed_out="$timed_out" -v tmo="$TMO" -v tests="$TESTS" -v ttmo="$TEST_TIMEOUT" '
  function add(name, v, text) {
    if (!(name in verdict)) { order[++n] = name; verdict[name] = v; summary[name] = text }
    else if (v == "FAIL" && verdict[name] != "FAIL") { verdict[name] = v; summary[name] = text }
  }
  /^@@ TEST / { cur = $3; started[cur] = 1; nres[cur] = 0 }
  /^@@ RESULT / && cur != "" {   # (not those of NUMA_VM_PRE commands)
    text = $0; sub(/^@@ RESULT [^ ]+ [A-Z]+ ?/, "", text)
    add($3, $4, text); nres[cur]++
  }
  /^@@ EXIT / {
    t = $3; rc = $4; ended[t] = 1
    if (rc == 143) add(t, "FAIL", "timed out after " ttmo " s (a hang?), exit status 143")
    else if (rc == 137) add(t, "FAIL", "killed by SIGKILL (the OOM killer? see the kernel messages), exit status 137")
    else if (rc != 0 && rc != 1) add(t, "FAIL", "exit status " rc " (crashed?)")
    else if (nres[t] == 0) add(t, "FAIL", "printed no verdict (exit status " rc ")")
    cur = ""
  }
  /^@@ ABORT / { t = $3; sub(/:$/, "", t); started[t] = ended[t] = 1; text = $0; sub(/^@@ ABORT [^ ]+ /, "", text); add(t, "FAIL", text) }
  /^@@ DONE/ { done = 1 }
  END {
    nt = split(tests, mode, " ")
    for (i = 1; i <= nt; i++) {
      t = mode[i]
      if (!(t in started)) add(t, "FAIL", "not run (the guest stopped before)")
      else if (!(t in ended)) add(t, "FAIL", "did not finish")
    }
    if (!done) add("vm", "FAIL", timed_out ? "the guest did not finish within " tmo " s" : "the guest stopped before the end of the tests")
    pass = fail = 0
    print "numa-vm: results"
    for (i = 1; i <= n; i++) {
      v = verdict[order[i]]
      if (v == "PASS") pass++; else fail++
      printf "  %-4s %-22s %s\n", v, order[i], summary[order[i]]
    }
    printf "numa-vm: %d passed, %d failed\n", pass, fail
    exit (fail == 0 && pass > 0) ? 0 : 1
  }'
rc=$?
if grep -q '^@@ SHAPE ' "$LOG" 2>/dev/null; then
  echo "numa-vm: shapes ($NODES nodes; locality = pages on the allocating thread's node, move_pages)"
  tr -d '\r' <"$LOG" | awk '/^@@ SHAPE / {
    n = split($0, f, " "); row = sprintf("  %-18s %-8s", $3, substr($5, 7))
    for (i = 6; i <= n; i++) if (f[i] ~ /^(locality|small|peak|ops)=/) row = row " " sprintf("%-17s", f[i])
    print row }'
fi
awk -v a="$T_PKG" -v k="$T_KERNEL" -v i="$T_INITRD" -v vm="$T_VM" -v t="$(since "$T0")" -v p="$peak" 'BEGIN {
  printf "numa-vm: timings: packages %.1fs, kernel %.1fs, initramfs %.1fs, guest %.1fs, total %.1fs; qemu peak RSS %d MiB\n",
    a, k - a, i - k, vm, t, p / 1024 }'
exit $rc
