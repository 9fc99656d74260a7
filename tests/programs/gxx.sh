#!/usr/bin/env bash
# g++ under the allocator: compile gxx_program.cpp (templates, <map>, <string>)
# with the compiler (driver, cc1plus, as, ld) preloaded, then run the result
# under the allocator too and check its output.
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
require_programs g++
SRC=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/gxx_program.cpp
make_tmp

mi cc g++ -std=c++17 -O2 -Wall -Wextra -o prog "$SRC"
[[ -x prog ]] || fail "g++ produced no executable"

mi run ./prog "$MI_LIB_MAPNAME"
expected='distinct 584
top mi 8478
top ne 8446
top to 8388
length 2 8 ka vi
length 4 64 kaka vivi
length 6 512 kakaka vivivi
hash 73a7b1a
nodes 19531 root.4.4.4.4.4.4
mapped yes'
expect_eq "compiled program output" "$expected" "$(out run)"
note "ok"
