// fault.h: fault injection at the OS layer, for tests (builds configured with
// -Dfault_injection=true only; tools/dev's debug build is one).
//
// Owns: deciding whether a system call of os.cpp fails on purpose. os.cpp asks
// fault_inject(kind) right before each mmap, munmap, madvise, mprotect, mbind,
// mremap and huge-page mapping; when it says yes, the call is not made and
// fails as the kernel would (errno ENOMEM, EAGAIN or EIO). The allocator above
// must then return NULL, or do without (a purge that did not happen), and
// never crash, hang or hand out wrong data: tests/stress/fault_stress checks.
//
// Configuration, from MI_FAULT_INJECT at process start (os_init) or
// from mi_fault_inject_config() at any time, words separated by spaces or
// commas (not a MIMALLOC_* name: those are the options of every build, and
// the option reader warns about one it does not know):
//   rate=R        each selected call fails with probability R (0.001 = 0.1%,
//                 or 0.1%)
//   nth=N         the N-th selected call fails (once), counted from now
//   every=N       every N-th selected call fails
//   calls=K+K...  the kinds selected: mmap munmap madvise mprotect mbind
//                 mremap huge (the 2 MiB and 1 GiB page mappings), or all
//                 (the default)
//   seed=S        the random sequence (default 1): the same seed makes the
//                 same decisions for the same sequence of calls in a thread
// An empty or "off" configuration turns injection off. A malformed word gets
// a warning naming it and is ignored.
// In a build without the option, none of this exists: fault_inject() is a
// constant false, the variable is not read, the functions are not exported.
#pragma once

#include <cstdint>

namespace mi {

enum class Fault : uint8_t { mmap, munmap, madvise, mprotect, mbind, mremap, huge, count };

#if MI_FAULT_INJECTION
// True when this call of `kind` is to fail (and counts it).
bool fault_inject(Fault kind) noexcept;
// Reads MI_FAULT_INJECT (from os_init).
void fault_init() noexcept;
#else
constexpr bool fault_inject(Fault) noexcept { return false; }
inline void fault_init() noexcept {}
#endif

}  // namespace mi

#if MI_FAULT_INJECTION
extern "C" {
// Sets the configuration (the syntax above); nullptr or "" turns it off.
// Counting starts again from zero. Returns false if a word was malformed.
__attribute__((visibility("default"))) bool mi_fault_inject_config(const char* spec);
// Calls of the selected kinds seen, and failed on purpose, since the last
// configuration (either pointer may be null).
__attribute__((visibility("default"))) void mi_fault_inject_counts(unsigned long long* calls,
                                                                   unsigned long long* failed);
}
#endif
