# shellcheck shell=bash disable=SC2034  # the QEMU_* results are read by the scripts that source this
# vm.sh: what the QEMU suites share (tests/numa-vm/run-numa-vm.sh,
# tests/debian-vm/run-debian-vm.sh and boot.sh). Sourced, after VM_NAME is set
# (the prefix of every message: numa-vm, debian-vm, boot).
#
#   skip REASON...        prints "VM_NAME: SKIP: REASON", exits 77 (meson: skipped)
#   die REASON...         prints "VM_NAME: error: REASON", exits 1
#   now, since T0         the time, and the seconds since T0 (one decimal)
#   vm_install LOG NO_INSTALL_VAR PACKAGE...
#                         apt-get installs the packages (an apt-get update
#                         and a second try when the first fails); skips when
#                         the variable named NO_INSTALL_VAR is 1, without
#                         apt-get or when both tries fail (apt's output in LOG)
#   vm_qemu TIMEOUT OUT COMMAND...
#                         runs QEMU (COMMAND) in the background, stdin from
#                         /dev/null, its output into OUT, until it exits or
#                         TIMEOUT seconds (then SIGTERM, SIGKILL 2 s later);
#                         an interrupt of this script kills it too. Sets
#                         QEMU_RC (its exit status), QEMU_PEAK_KB (its peak
#                         RSS, VmHWM) and QEMU_TIMED_OUT (1 when the timeout
#                         ended it).

skip() { echo "$VM_NAME: SKIP: $*"; exit 77; }
die() { echo "$VM_NAME: error: $*"; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

vm_install() {
  local log="$1" var="$2"
  shift 2
  [ $# -gt 0 ] || return 0
  [ "${!var:-0}" = 1 ] && skip "missing $* ($var=1)"
  command -v apt-get >/dev/null || skip "missing $* and no apt-get"
  echo "$VM_NAME: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
    apt-get update -qq >>"$log" 2>&1
    apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 ||
      skip "apt-get install $* failed (no network?), see $log"
  fi
}

vm_qemu() {
  local tmo="$1" out="$2" qpid r deadline
  shift 2
  "$@" </dev/null >"$out" 2>&1 &
  qpid=$!
  # shellcheck disable=SC2064  # the pid is known now
  trap "kill $qpid 2>/dev/null" EXIT
  # shellcheck disable=SC2064
  trap "kill $qpid 2>/dev/null; exit 1" INT TERM
  QEMU_PEAK_KB=0 QEMU_TIMED_OUT=0
  deadline=$((SECONDS + tmo))
  while kill -0 "$qpid" 2>/dev/null; do
    r=$(awk '/^VmHWM/ { print $2 }' "/proc/$qpid/status" 2>/dev/null)
    [ -n "$r" ] && QEMU_PEAK_KB=$r
    if [ "$SECONDS" -ge "$deadline" ]; then
      QEMU_TIMED_OUT=1
      kill "$qpid" 2>/dev/null
      sleep 2
      kill -KILL "$qpid" 2>/dev/null
      break
    fi
    sleep 0.5
  done
  wait "$qpid"
  QEMU_RC=$?
  trap - EXIT INT TERM
}
