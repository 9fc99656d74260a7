#!/usr/bin/env bash
# git under the allocator: init a repository, commit a few hundred files over
# several commits, log, gc (threaded pack-objects), fsck, clone; the commit
# ids are deterministic (fixed contents, names and dates).
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
require_programs git diff
make_tmp

# Isolate git from the user's and the system's configuration.
export HOME=$TMP GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="mi test" GIT_AUTHOR_EMAIL="mi@example.invalid"
export GIT_COMMITTER_NAME="mi test" GIT_COMMITTER_EMAIL="mi@example.invalid"
export TZ=UTC LC_ALL=C
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE

g() {
  local name=$1
  shift
  mi "$name" git "$@"
}

# write_file PATH SEED LINES: deterministic text content.
write_file() {
  local i out=""
  for ((i = 0; i < $3; i++)); do
    out+="line $i of $1: $(( ($2 * 7919 + i * 104729) % 1000003 ))"$'\n'
  done
  mkdir -p -- "$(dirname -- "$1")"
  printf '%s' "$out" >"$1"
}

mkdir repo
cd repo
g init init -q -b main .
for ((f = 0; f < 300; f++)); do
  write_file "dir$((f % 12))/sub$((f % 5))/file$f.txt" "$f" $((5 + f % 40))
done
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
g add0 add -A
g commit0 commit -q -m "initial: 300 files"

for ((c = 1; c <= 4; c++)); do
  for ((f = c; f < 300; f += 6)); do   # modify 50 files
    write_file "dir$((f % 12))/sub$((f % 5))/file$f.txt" $((f * 31 + c)) $((10 + (f + c) % 50))
  done
  for ((f = 0; f < 10; f++)); do       # add 10 files
    write_file "new$c/file$f.txt" $((c * 1000 + f)) 20
  done
  for ((f = 0; f < 5; f++)); do        # remove 5 files
    n=$((c * 50 + f * 7 + 3))
    rm -f -- "dir$((n % 12))/sub$((n % 5))/file$n.txt"
  done
  export GIT_AUTHOR_DATE="2024-01-0$((c + 1))T00:00:00Z" GIT_COMMITTER_DATE="2024-01-0$((c + 1))T00:00:00Z"
  g "add$c" add -A
  g "commit$c" commit -q -m "change $c"
done

g log log --oneline --stat
expect_eq "commit count" 5 "$(out log | grep -c ' change \| initial: ')"
g files ls-files
expect_eq "tracked files" "$(find . -path ./.git -prune -o -type f -print | sed 's|^\./||' | sort)" "$(out files | sort)"
g head rev-parse HEAD
expect_eq "HEAD commit id" 652b7fa49b2e022a3f3e36af9e15e62846a2e311 "$(out head)"

g gc -c pack.threads=2 gc -q --aggressive --prune=now
g count count-objects -v
expect_eq "loose objects after gc" "count: 0" "$(out count | grep '^count:')"
g objects rev-list --all --objects
expect_eq "packed objects" "in-pack: $(out objects | wc -l | tr -d ' ')" "$(out count | grep '^in-pack:')"
g fsck fsck --full --strict --no-progress
[[ ! -s $LOGS/fsck.out ]] || { out fsck >&2; fail "git fsck reported problems"; }

cd "$TMP"
g clone clone -q --no-local repo clone
diff -r -x .git repo clone >/dev/null || fail "the clone's files differ from the repository's"
g clonehead -C clone rev-parse HEAD
expect_eq "clone HEAD" "$(out head)" "$(out clonehead)"
note "ok"
