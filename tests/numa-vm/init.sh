#!/bin/busybox sh
# /init of the numa-vm guest (tests/numa-vm/init.sh; run-numa-vm.sh copies it
# into the initramfs). Mounts the pseudo file systems, prints the topology,
# runs each test mode named in /t/tests with a timeout, and powers off.
# Markers on the serial console, read by run-numa-vm.sh:
#   @@ TEST <mode>          a mode starts
#   @@ RESULT <name> ...    a verdict (printed by numa_vm_test)
#   @@ EXIT <mode> <rc>     the mode's exit status (143: timed out; 137: SIGKILL, OOM killer)
#   @@ ABORT <mode>: ...    a mode not run (after two timeouts in a row)
#   @@ DONE                 all modes ran
/bin/busybox --install -s /bin
export PATH=/bin:/t
export LD_LIBRARY_PATH=/t/lib   # the allocator under test, whatever RUNPATH the test program has
[ -s /t/shapes-strict ] && export NUMA_SHAPES_STRICT=1   # run-numa-vm.sh: issue 13's open peak targets fail
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
. /t/config                     # TEST_TIMEOUT (seconds per mode)

up() { cut -d' ' -f1 /proc/uptime; }
echo "@@ BOOTED kernel=$(uname -r) uptime=$(up)s"
echo "@@ cmdline: $(cat /proc/cmdline)"
echo "@@ nodes online: $(cat /sys/devices/system/node/online)"
for n in /sys/devices/system/node/node[0-9]*; do
  g=$n/hugepages/hugepages-1048576kB m=$n/hugepages/hugepages-2048kB
  echo "@@ $(basename $n): cpus=$(cat $n/cpulist) $(grep -o 'MemTotal:.*' $n/meminfo | tr -s ' ')" \
       "1G nr=$(cat $g/nr_hugepages) free=$(cat $g/free_hugepages)" \
       "2M nr=$(cat $m/nr_hugepages) distances=[$(cat $n/distance)]"
done
if [ -x /bin/numactl ]; then numactl --hardware; fi
# The allocator's own placement is measured, not the kernel's later moves
if [ -w /proc/sys/kernel/numa_balancing ]; then echo 0 >/proc/sys/kernel/numa_balancing; fi
echo "@@ numa_balancing=$(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo absent)"
if [ -s /t/pre.sh ]; then echo "@@ PRE $(cat /t/pre.sh)"; sh /t/pre.sh; echo "@@ PRE_EXIT $?"; fi

# Leftovers of a mode that timed out (its child processes) are killed, so they
# do not eat the next mode's CPU and memory.
kill_leftovers() {
  for p in /proc/[0-9]*; do
    case "$(cat $p/comm 2>/dev/null)" in numa_vm_test|numa_shapes) kill -9 "${p#/proc/}" 2>/dev/null ;; esac
  done
}
# Runs one mode; after TEST_TIMEOUT seconds it prints where each thread of the
# test processes waits (state, wchan, /proc/.../syscall: number, arguments, sp,
# pc; map pc and a futex address with the maps lines) and kills the mode.
run_mode() {
  case "$1" in
    shape-*) /t/numa_shapes "$1" & ;;   # issue 13's workload shapes (numa_shapes.cpp)
    *) /t/numa_vm_test "$1" & ;;
  esac
  pid=$! ticks=0
  while kill -0 $pid 2>/dev/null; do
    if [ $ticks -ge $((TEST_TIMEOUT * 2)) ]; then
      echo "@@ HANG $1: still running after ${TEST_TIMEOUT}s; its threads:"
      for p in /proc/[0-9]*; do
        case "$(cat $p/comm 2>/dev/null)" in numa_vm_test|numa_shapes) ;; *) continue ;; esac
        for k in $p/task/*; do
          echo "   pid ${p#/proc/} tid ${k##*/} $(grep State: $k/status | tr -s '\t ' ' ') wchan=$(cat $k/wchan) syscall=$(cat $k/syscall)"
        done
      done
      grep -E 'libmimalloc|numa_vm_test|numa_shapes' /proc/$pid/maps | sed 's/^/   /'
      kill -TERM $pid
      sleep 1
      kill -KILL $pid 2>/dev/null
    fi
    sleep 0.5
    ticks=$((ticks + 1))
  done
  wait $pid
}
hung=0
for t in $(cat /t/tests); do
  if [ $hung -ge 2 ]; then
    echo "@@ ABORT $t: not run, two modes in a row timed out (the allocator hangs?)"
    continue
  fi
  echo "@@ TEST $t uptime=$(up)s"
  run_mode "$t"   # 143: timed out; 137: SIGKILL (OOM killer)
  rc=$?
  echo "@@ EXIT $t $rc uptime=$(up)s"
  kill_leftovers
  if [ $rc = 143 ]; then hung=$((hung + 1)); else hung=0; fi
done
echo "@@ DONE uptime=$(up)s"
poweroff -f
