// os.h: the OS layer's contract. Everything above reaches the kernel through here.
//
// Owns: virtual memory (reserve, commit, decommit, reset, release), huge OS
// pages, NUMA binding, and the
// counters of reserved, committed and purged bytes, per memory account
// (types.h: a node's arenas, unbound arenas, segments outside arenas,
// metadata) and in total.
//
// Contract:
//   - Nothing here allocates with malloc; nothing aborts. Every failure returns
//     false / nullptr (with errno set by the kernel) and is reported with a
//     warning naming the call and the cause (but os_try_alloc_aligned);
//     the caller decides what to do.
//   - Mappings of regular pages are MAP_NORESERVE: where the kernel
//     overcommits, what is touched counts, not what is mapped (huge and
//     large OS pages are taken from the pool when mapped).
//   - "reserve" = address space only (PROT_NONE);
//     "commit" = readable and writable; "decommit" = give the physical pages
//     back (MADV_DONTNEED; the range reads as zero afterwards); "reset" = the
//     kernel may take the pages when it needs them (MADV_FREE), contents
//     undefined; "purge" = decommit or reset, per the purge_decommits option.
//   - Sizes and addresses passed to commit/decommit/reset are rounded inward
//     (commit: outward) to OS pages.
//   - Every call that changes what is reserved, committed or purged names the
//     memory account it changes (`account`, ACCOUNT_* of types.h); a mapping
//     remembers its account in its MemId, so that os_free uncounts it there.
//   - Thread-safe; the counters are atomics.
// The clock, the environment, file reads into caller buffers and stderr are
// common/sys.h's (included here): the layer beside the stack, which os itself
// uses to warn, reads them without depending on os.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/sys.h"
#include "../common/types.h"

namespace mi {

// Reads page sizes and overcommit policy. Called once from process init; the
// getters below return safe defaults before it.
void os_init() noexcept;
size_t os_page_size() noexcept;        // 4 KiB
size_t os_large_page_size() noexcept;  // 2 MiB
constexpr size_t HUGE_OS_PAGE_SIZE = GiB;
bool os_has_overcommit() noexcept;  // the kernel overcommits (vm.overcommit_memory != 2)

// Allocates `size` bytes aligned to `alignment` (a power of two, >= page size).
// commit=false gives a PROT_NONE reservation. allow_large tries 2 MiB pages
// when the allow_large_os_pages option is on. Fills *memid (kind os).
// account_commit=false: a committed mapping is not counted as committed yet
// (arenas count their blocks as they hand them out); 2 MiB pages always are.
// `account`: what the mapping is counted for (metadata unless said).
void* os_alloc_aligned(size_t size, size_t alignment, bool commit, bool allow_large, MemId* memid,
                       bool account_commit = true, int account = ACCOUNT_META) noexcept;
// The same, but a failure is not reported (errno says why): for a caller that
// tries again with less, or reports the failure itself (an arena reservation
// that shrinks on failure; a segment the allocation path reports as out of
// memory).
void* os_try_alloc_aligned(size_t size, size_t alignment, bool commit, bool allow_large, MemId* memid,
                           bool account_commit = true, int account = ACCOUNT_META) noexcept;
// Releases memory from os_alloc_aligned (or os_alloc_huge_pages). `memid`
// may lie inside the memory released.
void os_free(void* p, size_t size, const MemId& memid) noexcept;

// Commits [p, p+size): afterwards readable and writable. *is_zero: known zero.
bool os_commit(void* p, size_t size, bool* is_zero, int account) noexcept;
// Decommits: physical pages returned, the range reads back as zero, and it
// must be committed again (os_commit) before use; debug builds protect it so
// a use-after-purge faults at once. `uncount`: subtract it from the committed
// bytes of `account` (false when the caller already did).
bool os_decommit(void* p, size_t size, bool uncount, int account) noexcept;
// Resets: the kernel may reclaim the pages lazily; contents undefined; the
// range stays committed.
bool os_reset(void* p, size_t size, int account) noexcept;
// Discards the contents of [p, p+size) (rounded inward to OS pages): the
// physical pages go back at once (MADV_DONTNEED, resident size lowered) and
// the range reads as zero, but it stays committed and accessible, in debug
// builds too: for free blocks inside a page whose other blocks are in use.
bool os_discard(void* p, size_t size, int account) noexcept;
// Purges per the purge_decommits option. Returns true if the range was
// decommitted (it reads as zero and must be recommitted before use), false if
// it was only reset (still committed, contents undefined) or nothing happened.
bool os_purge(void* p, size_t size, bool uncount, int account) noexcept;
// Makes [p, p+size) inaccessible (protect) or readable and writable again
// (guard pages of the hardened mode). Rounded inward to OS pages. Counts
// nothing: a guard page stays part of the memory it guards.
bool os_protect(void* p, size_t size, bool protect) noexcept;
// 64 random bits from the kernel (getrandom, never blocking); a mix of the
// clock, the pid and an address where it has none. Never 0.
uint64_t os_random_seed() noexcept;
// Advises transparent huge pages on a range (the allow_thp option).
void os_advise_thp(void* p, size_t size) noexcept;

// Whether the kernel gives transparent huge pages to every anonymous
// mapping (/sys/kernel/mm/transparent_hugepage/enabled: "always", Debian's
// default), read once; false when it cannot be read.
bool os_thp_always() noexcept;
// Keeps transparent huge pages out of a range (MADV_NOHUGEPAGE; rounded
// inward to OS pages): a first touch faults 4 KiB there. Only where
// os_thp_always() and not with the option allow_thp (nothing to keep out
// otherwise, or the operator asked for huge pages). A small mapping is
// advised too: the kernel merges it with an adjacent one (a thread's stack)
// and faults 2 MiB where the merged mapping covers an aligned 2 MiB range.
void os_advise_no_thp(void* p, size_t size) noexcept;

// Maps up to `pages` 1 GiB pages as one contiguous, committed range. Stops
// early when the kernel has no more or when timeout_ms passes (0 = no limit).
// Returns the start (nullptr if none) and the number mapped in *pages_mapped.
// With os_node >= 0 each page is bound to that node (per `policy`, as in
// os_numa_bind) and faulted in before the next one is tried.
void* os_alloc_huge_pages(size_t pages, int64_t timeout_ms, size_t* pages_mapped, MemId* memid, int os_node = -1,
                          int policy = 0, int account = ACCOUNT_UNBOUND) noexcept;
// Maps `size` bytes (a multiple of 2 MiB) of 2 MiB pages (MAP_HUGETLB),
// aligned to `alignment`, or nullptr (errno from the kernel).
void* os_alloc_large_pages(size_t size, MemId* memid, size_t alignment = 0, int account = ACCOUNT_UNBOUND) noexcept;

// fork() support for mappings of huge OS pages (lib/arena: fork):
// os_copy_to_regular copies the byte ranges of [start, start+size) that
// copy(arg, &offset, &len) reports (the next range at or after `offset`;
// false when there is none) into a new private mapping of regular pages of
// `size` bytes, bound to `os_node` when >= 0 (per `policy`); nullptr if there
// is no memory for it. os_set_dontfork sets (or clears) MADV_DONTFORK;
// os_move_mapping moves a mapping to `to` (mremap), replacing what is there;
// os_unmap unmaps.
void* os_copy_to_regular(const void* start, size_t size, bool (*copy)(void* arg, size_t* offset, size_t* len),
                         void* arg, int os_node, int policy) noexcept;
bool os_set_dontfork(void* p, size_t size, bool dontfork) noexcept;
bool os_move_mapping(void* from, void* to, size_t size) noexcept;
void os_unmap(void* p, size_t size) noexcept;

// NUMA binding of a range to the kernel node `os_node`, before its first
// touch. policy: 1 = preferred (MPOL_PREFERRED), 2 = strict (MPOL_BIND).
// Through libnuma's mbind() (loaded on first use; the raw system call if
// libnuma is absent), never its node-mask helpers, which allocate.
bool os_numa_bind(void* p, size_t size, int os_node, int policy) noexcept;
// Loads libnuma for os_numa_bind (dlopen: allocates). Called from the library
// constructor, outside every lock of ours; until then the system call is used.
void os_numa_init() noexcept;
// Faults a bound range in now (MADV_POPULATE_WRITE), so that a node without
// free memory is an error here instead of a SIGBUS/OOM at first touch.
// Returns false if the kernel could not (or cannot: before Linux 5.14).
bool os_populate(void* p, size_t size) noexcept;
// Free memory of a kernel node in bytes (from its meminfo; -1 if unknown).
int64_t os_numa_node_free(int os_node) noexcept;

// Bytes of one memory account.
struct AccountCounters {
  std::atomic<int64_t> reserved;   // address space mapped
  std::atomic<int64_t> committed;  // of it, counted as committed
  std::atomic<int64_t> committed_peak;
  std::atomic<int64_t> purged;  // given back to the OS in total (decommitted or reset)
};

// Memory counters (bytes), read by the statistics: per account, and the
// process totals (the sums of the accounts; kept for their peaks).
struct OsCounters {
  std::atomic<int64_t> reserved;
  std::atomic<int64_t> reserved_peak;
  std::atomic<int64_t> committed;
  std::atomic<int64_t> committed_peak;
  std::atomic<int64_t> purged;  // bytes decommitted in total
  std::atomic<int64_t> reset;   // bytes reset in total
  std::atomic<int64_t> mmap_calls;
  std::atomic<int64_t> commit_calls;
  std::atomic<int64_t> purge_calls;          // madvise calls that purge (decommit or reset)
  std::atomic<int64_t> purge_ns;             // their total time
  std::atomic<int64_t> huge_pages_reserved;  // 1 GiB pages mapped
  AccountCounters accounts[ACCOUNT_COUNT];
};
extern MI_HIDDEN OsCounters os_counters;
// Accounts committed bytes (also used when memory we manage changes state
// without a syscall, e.g. memory handed in by mi_manage_os_memory).
void os_stat_committed(int64_t delta, int account) noexcept;
void os_stat_reserved(int64_t delta, int account) noexcept;
// The peaks of reserved and committed bytes restart from the current values
// (mi_stats_reset, and a fork child's statistics, which start at the fork).
void os_counters_reset_peaks() noexcept;

// A scratch mapping for text the library builds (the statistics report):
// read-write, not counted in any account (it is not memory of the program),
// unmapped with os_unmap. nullptr when the kernel has none.
void* os_map_scratch(size_t size) noexcept;

// Current thread's OS id (gettid), for messages.
long os_thread_os_id() noexcept;

// Resident set size of the process in bytes (current and peak), from
// /proc/self/statm and getrusage.
void os_process_rss(size_t* current, size_t* peak) noexcept;

}  // namespace mi
