#!/bin/bash
# guest/stages.sh: the debian-vm scenario, run in the guest at every boot by
# the agent (guest/agent.sh) from the share; its output is the second serial
# port, which the host reads.
#
# The stage to run is in /var/lib/debian-vm/stage (on the guest's disk, so it
# survives the reboots); none is the first boot. Each stage ends by setting
# the next one and rebooting, the last by powering off:
#
#   install    the fresh image: the pools as they are, the .debs of the share
#              installed with apt-get as an operator does, the shipped example
#              configuration copied as is to /etc/mimalloc-numa.toml,
#              `systemctl enable mi-reserve.service`, `mi-enable postgresql
#              mariadb redis`; reboot
#   example    the example configuration booted: mi-reserve.service ran and
#              succeeded, no page reserved; then a [reserve] of RESERVE_PAGES
#              pages of PAGE_SIZE (scenario.conf) is written; reboot
#   servers    mi-reserve.service succeeded and was active before each
#              server's unit started; the pages reserved; the postmaster, two
#              backends, mariadbd and redis-server have the library mapped and
#              answer a query; mi-enable --check agrees; then `apt-get purge`:
#              the pools as before the install, no file of ours left, the
#              servers restart on glibc; power off
#
# Output: `@@ STAGE name`, then one verdict line per check, `ok - ...` or
# `not ok - ...` with its evidence on the following `#` lines, `@@ TIME name
# seconds`, and `@@ NEXT reboot` or `@@ END`. Verdicts are never skipped: a
# check whose subject is missing (a command not installed) fails, saying so.
set -u
SHARE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE=/var/lib/debian-vm
mkdir -p "$STATE"
export LC_ALL=C.UTF-8 SYSTEMD_PAGER= PAGER=cat DEBIAN_FRONTEND=noninteractive
cd /

# The [reserve] of the third boot (run-debian-vm.sh writes scenario.conf).
RESERVE_PAGES=8 PAGE_SIZE=2M
# shellcheck source=/dev/null
[ -f "$SHARE/scenario.conf" ] && . "$SHARE/scenario.conf"

PG_UNIT=postgresql@15-main.service
SERVER_UNITS=("$PG_UNIT" mariadb.service redis-server.service)
LIBRARY_RE='libmimalloc-numa\.so'

nfail=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; nfail=$((nfail + 1)); }
verdict() { if [ "$1" = 0 ]; then shift; ok "$@"; else shift; notok "$@"; fi; }
evidence() { sed 's/^/#   /'; }
# apt and dpkg output without dpkg's progress counter ("(Reading database ... 5%").
apt_evidence() { sed 's/(Reading database \.\.\. [0-9]*%//g' | tail -n 15 | evidence; }
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/  */ /g; s/ $//' | cut -c1-70; }
t_stage=$SECONDS
mark() { echo "# -- $* ($((SECONDS - t_stage)) s into the stage)"; }

# ---- helpers -------------------------------------------------------------------
prop() { systemctl show -P "$2" "$1" 2>/dev/null; }

pools() {  # one line per huge page size: SIZE total free
  local d
  for d in /sys/kernel/mm/hugepages/hugepages-*; do
    echo "${d##*hugepages-} $(cat "$d/nr_hugepages") $(cat "$d/free_hugepages")"
  done
}
pool_total() {  # SIZE (e.g. 2048kB)
  cat "/sys/kernel/mm/hugepages/hugepages-$1/nr_hugepages" 2>/dev/null || echo "?"
}
page_kb() {
  case "$PAGE_SIZE" in 2M|2MiB) echo 2048kB ;; 1G|1GiB) echo 1048576kB ;; *) echo "$PAGE_SIZE" ;; esac
}

mapped_lib() {  # PID: the library's path if PID has it mapped
  grep -m1 -oE "/[^ ]*$LIBRARY_RE[^ ]*" "/proc/$1/maps" 2>/dev/null
}

our_packages() { cat "$STATE/packages" 2>/dev/null; }

# The units as systemd saw them this boot: active state, result, status, and
# the monotonic times they were started and became active.
unit_evidence() {
  local u
  for u in "$@"; do
    echo "$u: $(systemctl show -p ActiveState -p Result -p ExecMainStatus -p InactiveExitTimestampMonotonic \
      -p ActiveEnterTimestampMonotonic "$u" 2>&1 | tr '\n' ' ')"
  done
}

check_unit_active() {  # UNIT: active, started this boot
  local u="$1" st
  st=$(prop "$u" ActiveState)
  verdict "$([ "$st" = active ] && echo 0 || echo 1)" "$u is active (ActiveState=$st)"
  [ "$st" = active ] || { systemctl status --no-pager -n 20 "$u" 2>&1 | evidence; }
}

check_on_allocator() {  # NAME PID
  local name="$1" pid="$2" lib
  if [ -z "$pid" ] || [ "$pid" = 0 ] || [ ! -d "/proc/$pid" ]; then
    notok "$name runs on the allocator: no such process (pid '${pid}')"
    return
  fi
  lib=$(mapped_lib "$pid")
  if [ -n "$lib" ]; then
    ok "$name (pid $pid, $(cmdline "$pid")) has $lib mapped"
  else
    notok "$name (pid $pid, $(cmdline "$pid")) does not have libmimalloc-numa mapped"
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -E '^(LD_PRELOAD|MIMALLOC_)' | evidence
  fi
}

check_off_allocator() {  # NAME PID
  local name="$1" pid="$2" lib
  if [ -z "$pid" ] || [ "$pid" = 0 ] || [ ! -d "/proc/$pid" ]; then
    notok "$name runs on glibc: no such process (pid '${pid}')"
    return
  fi
  lib=$(mapped_lib "$pid")
  verdict "$([ -z "$lib" ] && echo 0 || echo 1)" "$name (pid $pid) runs without the library${lib:+: $lib is still mapped}"
}

query_postgres() {
  local out rc
  out=$(timeout 60 runuser -u postgres -- psql -X -At -c "SELECT 'answer', 6 * 7" 2>&1)
  rc=$?
  verdict "$([ "$rc" = 0 ] && [ "$out" = "answer|42" ] && echo 0 || echo 1)" \
    "PostgreSQL answers a query (psql: '$out', exit $rc)"
}
query_mariadb() {
  local out rc
  out=$(timeout 60 mariadb -N -B -e "SELECT 'answer', 6 * 7, VERSION()" 2>&1)
  rc=$?
  verdict "$([ "$rc" = 0 ] && [ "${out%%$'\t'*}" = answer ] && echo 0 || echo 1)" \
    "MariaDB answers a query (mariadb -e: '$(echo "$out" | tr '\t\n' '  ')', exit $rc)"
}
query_redis() {
  local ping set get alloc
  ping=$(timeout 30 redis-cli PING 2>&1)
  set=$(timeout 30 redis-cli SET debian-vm:key "value-$1" 2>&1)
  get=$(timeout 30 redis-cli GET debian-vm:key 2>&1)
  alloc=$(timeout 30 redis-cli INFO memory 2>&1 | tr -d '\r' | grep '^mem_allocator:')
  verdict "$([ "$ping" = PONG ] && [ "$set" = OK ] && [ "$get" = "value-$1" ] && echo 0 || echo 1)" \
    "Redis answers PING/SET/GET ('$ping', '$set', '$get'; INFO memory $alloc)"
}

run_mi_enable() {  # ARGS...: runs mi-enable, its output as evidence; returns its status
  if ! command -v mi-enable >/dev/null; then
    echo "mi-enable: command not found (not installed by the packages under test)"
    return 127
  fi
  timeout 120 mi-enable "$@" 2>&1
}

# ---- stage: install ------------------------------------------------------------
stage_install() {
  local init debs=() d out rc
  init=$(readlink /proc/1/exe)
  verdict "$([ "${init##*/}" = systemd ] && echo 0 || echo 1)" "PID 1 is systemd ($init)"
  pools >"$STATE/pools.before"
  echo "# huge page pools before the install (size total free):"
  evidence <"$STATE/pools.before"

  # What an operator installs: the library and the tools; the -dev package
  # is for building. Before the split there is one package.
  if ls "$SHARE"/debs/libmimalloc-numa0_*.deb "$SHARE"/debs/mimalloc-numa-tools_*.deb >/dev/null 2>&1; then
    debs=("$SHARE"/debs/libmimalloc-numa0_*.deb "$SHARE"/debs/mimalloc-numa-tools_*.deb)
  else
    for d in "$SHARE"/debs/*.deb; do
      case "${d##*/}" in *-dev_*|*-dbgsym_*) ;; *) [ -f "$d" ] && debs+=("$d") ;; esac
    done
  fi
  if [ ${#debs[@]} = 0 ]; then
    notok "the packages install: no .deb in the share"
    return 1
  fi
  for d in "${debs[@]}"; do dpkg-deb -f "$d" Package; done >"$STATE/packages"
  # As an operator does: apt-get install ./FILE.deb ... in the directory of
  # the files (a copy: the share is read-only, and apt may want to write).
  local names=()
  mkdir -p /run/debian-vm/debs && cp "${debs[@]}" /run/debian-vm/debs/
  for d in "${debs[@]}"; do names+=("./${d##*/}"); done
  out=$(cd /run/debian-vm/debs && timeout 300 apt-get install -y --no-install-recommends "${names[@]}" 2>&1)
  rc=$?
  verdict "$rc" "apt-get install ${names[*]} (offline; exit $rc)"
  echo "$out" | apt_evidence
  [ "$rc" = 0 ] || return 1
  for d in $(our_packages); do dpkg -L "$d"; done >"$STATE/files"
  echo "# installed: $(our_packages | tr '\n' ' ')($(wc -l <"$STATE/files") paths)"

  # The shipped example, copied as is (unless the package ships the file itself).
  local example
  if [ -e /etc/mimalloc-numa.toml ]; then
    ok "/etc/mimalloc-numa.toml is shipped by the package ($(dpkg -S /etc/mimalloc-numa.toml 2>&1))"
  else
    # README's step: cp /etc/mimalloc-numa.toml.example /etc/mimalloc-numa.toml;
    # failing that, the example among the package's documentation.
    example=$( { grep -x /etc/mimalloc-numa.toml.example "$STATE/files"
                 grep -E '/mimalloc-numa\.toml(\.example)?(\.gz)?$' "$STATE/files" | grep -v '^/etc/'; } | head -1)
    if [ -n "$example" ] && [ -f "$example" ]; then
      case "$example" in *.gz) zcat "$example" ;; *) cat "$example" ;; esac >/etc/mimalloc-numa.toml
      ok "the shipped example $example copied as is to /etc/mimalloc-numa.toml"
    else
      notok "no example configuration among the installed files ($(our_packages | tr '\n' ' '))"
    fi
  fi

  out=$(systemctl enable mi-reserve.service 2>&1)
  rc=$?
  verdict "$rc" "systemctl enable mi-reserve.service (exit $rc)"
  echo "$out" | evidence
  out=$(run_mi_enable postgresql mariadb redis)
  rc=$?
  verdict "$rc" "mi-enable postgresql mariadb redis (exit $rc)"
  echo "$out" | evidence
  echo "example" >"$STATE/stage"
}

# ---- stage: example ------------------------------------------------------------
stage_example() {
  local st res code started
  st=$(prop mi-reserve.service ActiveState)
  res=$(prop mi-reserve.service Result)
  code=$(prop mi-reserve.service ExecMainStatus)
  started=$(prop mi-reserve.service ExecMainStartTimestampMonotonic)
  verdict "$([ "$st" = active ] && [ "$res" = success ] && [ "$code" = 0 ] && [ "${started:-0}" -gt 0 ] && echo 0 || echo 1)" \
    "the shipped example configuration boots cleanly: mi-reserve.service ran (started at ${started:-0} us), exit $code, $st, result $res"
  journalctl -b -o cat --no-pager -u mi-reserve.service 2>&1 | tail -n 15 | evidence
  local before after
  before=$(awk '{ print $1, $2 }' "$STATE/pools.before" | tr '\n' ' ')
  after=$(pools | awk '{ print $1, $2 }' | tr '\n' ' ')
  verdict "$([ "$before" = "$after" ] && echo 0 || echo 1)" \
    "the example reserves no huge page (pools before the install: $before; now: $after)"
  local u
  for u in "${SERVER_UNITS[@]}"; do check_unit_active "$u"; done

  # The configuration for the next boot: the example with a [reserve] table.
  awk -v pages="$RESERVE_PAGES" -v size="$PAGE_SIZE" '
    /^[[:space:]]*\[/ { skip = ($0 ~ /^[[:space:]]*\[reserve\]/) }
    !skip { print }
    END { printf "\n[reserve]\npage_size = \"%s\"\nper_node = %d\n", size, pages }' \
    /etc/mimalloc-numa.toml >/etc/mimalloc-numa.toml.new && mv /etc/mimalloc-numa.toml.new /etc/mimalloc-numa.toml
  echo "# /etc/mimalloc-numa.toml for the next boot ends with:"
  tail -n 3 /etc/mimalloc-numa.toml | evidence
  echo "servers" >"$STATE/stage"
}

# ---- stage: servers, then purge --------------------------------------------------
stage_servers() {
  local st res code active_at u started_at kb expect total
  st=$(prop mi-reserve.service ActiveState)
  res=$(prop mi-reserve.service Result)
  code=$(prop mi-reserve.service ExecMainStatus)
  verdict "$([ "$st" = active ] && [ "$res" = success ] && [ "$code" = 0 ] && echo 0 || echo 1)" \
    "mi-reserve.service succeeded at boot (exit $code, $st, result $res)"
  active_at=$(prop mi-reserve.service ActiveEnterTimestampMonotonic)
  for u in "${SERVER_UNITS[@]}"; do
    started_at=$(prop "$u" InactiveExitTimestampMonotonic)
    verdict "$([ "${active_at:-0}" -gt 0 ] && [ "${started_at:-0}" -gt 0 ] && [ "$active_at" -le "$started_at" ] && echo 0 || echo 1)" \
      "mi-reserve.service was active (at ${active_at:-0} us) before $u started (at ${started_at:-0} us)"
  done
  unit_evidence mi-reserve.service "${SERVER_UNITS[@]}" | evidence
  local errs
  errs=$(journalctl -b -o cat --no-pager -p err -u mi-reserve.service 2>&1)
  verdict "$([ -z "$errs" ] && echo 0 || echo 1)" "the boot journal of mi-reserve.service has no error"
  journalctl -b -o cat --no-pager -u mi-reserve.service 2>&1 | tail -n 15 | evidence

  kb=$(page_kb)
  expect=$(( $(awk -v s="$kb" '$1 == s { print $2 }' "$STATE/pools.before") + RESERVE_PAGES ))
  total=$(pool_total "$kb")
  verdict "$([ "$total" = "$expect" ] && echo 0 || echo 1)" \
    "$RESERVE_PAGES pages of $PAGE_SIZE reserved: nr_hugepages ($kb) is $total, expected $expect"
  pools | evidence
  [ -x /usr/sbin/mi-reserve ] && timeout 30 /usr/sbin/mi-reserve --status 2>&1 | evidence
  verdict "$([ -e /run/mi-reserve/state ] && echo 0 || echo 1)" "/run/mi-reserve/state records the reservation"

  for u in "${SERVER_UNITS[@]}"; do check_unit_active "$u"; done

  # PostgreSQL: the postmaster and two backends held open by psql sessions.
  mark "the servers"
  local pm i bpids=() out rc
  pm=$(prop "$PG_UNIT" MainPID)
  check_on_allocator "the postmaster" "$pm"
  for i in 1 2; do
    ( echo "SELECT 'backend', pg_backend_pid();"; sleep 300 ) |
      runuser -u postgres -- psql -X -At >"/run/debian-vm/psql$i.out" 2>&1 &
  done
  for i in $(seq 60); do
    [ "$(cat /run/debian-vm/psql*.out 2>/dev/null | grep -c '^backend|')" -ge 2 ] && break
    sleep 1
  done
  mapfile -t bpids < <(cat /run/debian-vm/psql*.out 2>/dev/null | sed -n 's/^backend|//p')
  [ ${#bpids[@]} = 2 ] || notok "two psql sessions connected (got: $(cat /run/debian-vm/psql*.out 2>/dev/null | tr '\n' ' '))"
  for i in "${bpids[@]}"; do check_on_allocator "a backend" "$i"; done
  query_postgres
  out=$(run_mi_enable --check postgresql)
  rc=$?
  verdict "$rc" "mi-enable --check postgresql, with ${#bpids[@]} backends connected (exit $rc)"
  echo "$out" | evidence
  pkill -x -f 'sleep 300' 2>/dev/null
  wait 2>/dev/null

  check_on_allocator "mariadbd" "$(prop mariadb.service MainPID)"
  query_mariadb
  out=$(run_mi_enable --check mariadb)
  rc=$?
  verdict "$rc" "mi-enable --check mariadb (exit $rc)"
  echo "$out" | evidence

  check_on_allocator "redis-server" "$(prop redis-server.service MainPID)"
  query_redis on
  out=$(run_mi_enable --check redis)
  rc=$?
  verdict "$rc" "mi-enable --check redis (exit $rc)"
  echo "$out" | evidence

  for u in "${SERVER_UNITS[@]}"; do
    out=$(journalctl -b -o cat --no-pager -u "$u" 2>&1 | grep -i 'cannot be preloaded')
    verdict "$([ -z "$out" ] && echo 0 || echo 1)" "no 'cannot be preloaded' in the journal of $u"
    [ -z "$out" ] || echo "$out" | head -n 3 | evidence
  done

  mark "purge"
  purge
  echo "end" >"$STATE/stage"
}

purge() {
  local pkgs out rc left p
  mapfile -t pkgs < <(our_packages)
  for p in "${pkgs[@]}"; do dpkg -L "$p" 2>/dev/null; done | sort -u >"$STATE/files"
  local pglog=/var/log/postgresql/postgresql-15-main.log pglog_size
  pglog_size=$(stat -c %s "$pglog" 2>/dev/null || echo 0)

  out=$(timeout 300 apt-get purge -y "${pkgs[@]}" 2>&1)
  rc=$?
  verdict "$rc" "apt-get purge ${pkgs[*]} (exit $rc)"
  echo "$out" | apt_evidence

  local before after
  before=$(awk '{ print $1, $2 }' "$STATE/pools.before" | tr '\n' ' ')
  after=$(pools | awk '{ print $1, $2 }' | tr '\n' ' ')
  verdict "$([ "$before" = "$after" ] && echo 0 || echo 1)" \
    "every huge page given back (pools before the install: $before; after the purge: $after)"

  # Every path the packages listed, unless another package owns it too (a
  # directory such as /usr/share/doc).
  # (one dpkg -S for all the paths still there: each call reads the whole database)
  local still=()
  while read -r p; do
    [ "$p" != /. ] && { [ -e "$p" ] || [ -L "$p" ]; } && still+=("$p")
  done <"$STATE/files"
  left=
  [ ${#still[@]} = 0 ] ||
    left=$(LC_ALL=C dpkg-query -S "${still[@]}" 2>&1 >/dev/null | sed -n 's/^dpkg-query: no path found matching pattern //p')
  verdict "$([ -z "$left" ] && echo 0 || echo 1)" \
    "no path of the packages' $(wc -l <"$STATE/files") remains"
  [ -z "$left" ] || echo "$left" | head -n 20 | evidence
  # What the packages or mi-enable made outside their file lists.
  left=$( { find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
              \( -iname '*mimalloc*' -o -name 'mi-reserve*' -o -name 'mi-enable*' -o -name 'mi-run*' \) -print
            find /run -xdev \( -path /run/debian-vm -o -path /run/systemd \) -prune -o \
              \( -iname '*mimalloc*' -o -name 'mi-reserve*' \) -print
            grep -rIl -e 'libmimalloc-numa' -e 'MIMALLOC_' /etc 2>/dev/null
          } | sort -u)
  verdict "$([ -z "$left" ] && echo 0 || echo 1)" \
    "nothing of ours anywhere (/etc/mimalloc-numa.toml, /run/mi-reserve, drop-ins, PostgreSQL's environment file, /var/lib, /var/log: names with mimalloc, mi-reserve, mi-enable, mi-run; files in /etc naming the library)"
  [ -z "$left" ] || echo "$left" | head -n 20 | evidence

  # The servers restart on glibc.
  mark "restarting the servers"
  local since u pid
  since=$(date +%s)
  sleep 1
  for u in "${SERVER_UNITS[@]}"; do
    out=$(timeout 180 systemctl restart "$u" 2>&1)
    rc=$?
    verdict "$rc" "systemctl restart $u after the purge (exit $rc)"
    [ -z "$out" ] || echo "$out" | evidence
  done
  for u in "${SERVER_UNITS[@]}"; do
    check_unit_active "$u"
    check_off_allocator "$u's main process" "$(prop "$u" MainPID)"
    out=$(journalctl -o cat --no-pager --since "@$since" -u "$u" 2>&1 | grep -i 'cannot be preloaded')
    [ "$u" = "$PG_UNIT" ] && out+=$(tail -c +$((pglog_size + 1)) "$pglog" 2>/dev/null | grep -i 'cannot be preloaded')
    verdict "$([ -z "$out" ] && echo 0 || echo 1)" "no 'cannot be preloaded' logged by $u since the purge"
    [ -z "$out" ] || echo "$out" | head -n 3 | evidence
  done
  query_postgres
  query_mariadb
  query_redis off
}

# ---- main ----------------------------------------------------------------------------
stage=$(cat "$STATE/stage" 2>/dev/null || echo install)
echo "@@ STAGE $stage"
# Wait until the boot is over (every unit of the boot transaction started),
# so the servers are up and systemd's records are final.
boot_state=$(timeout 600 systemctl is-system-running --wait 2>&1)
echo "# system state after the boot: $boot_state (at $(cut -d' ' -f1 /proc/uptime) s of uptime)"
[ "$boot_state" = running ] || systemctl --failed --no-legend --plain 2>&1 | evidence
[ -f "$SHARE/pre-$stage.sh" ] && { echo "# running pre-$stage.sh from the share"; bash "$SHARE/pre-$stage.sh" 2>&1 | evidence; }

case "$stage" in
  install) stage_install || echo end >"$STATE/stage" ;;
  example) stage_example ;;
  servers) stage_servers ;;
  *) notok "unknown stage '$stage' in $STATE/stage" ; echo end >"$STATE/stage" ;;
esac
echo "@@ TIME $stage $((SECONDS - t_stage)) s (boot finished at $(cut -d' ' -f1 /proc/uptime) s of uptime)"
echo "@@ FAILED $stage $nfail"
sync
# systemctl asks logind first, over D-Bus, which this minimal system does not
# have ("Failed to connect to bus"), then has systemd do it: its messages are
# shown only if it fails.
touch /run/debian-vm/ending   # for the agent
if [ "$(cat "$STATE/stage")" = end ]; then
  echo "@@ END"
  sleep 1
  out=$(systemctl poweroff 2>&1) || echo "@@ systemctl poweroff failed: $out"
else
  echo "@@ NEXT reboot"
  sleep 1
  out=$(systemctl reboot 2>&1) || echo "@@ systemctl reboot failed: $out"
fi
