// os.cpp: the Linux implementation of os.h (mmap, mprotect, madvise, mbind).
// See os.h for the contract; the clock, environment and file reads are
// common/sys.cpp's.
#include "os.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/sanitizer.h"
#include "../common/stats.h"
#include "fault.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif

namespace mi {

constinit OsCounters os_counters{};

namespace {

size_t page_size = 4096;
size_t large_page_size = 2 * MiB;
bool has_overcommit = true;
std::atomic<bool> madv_free_works{true};

void stat_raise_peak(std::atomic<int64_t>& peak, int64_t value) {
  int64_t old = peak.load(std::memory_order_relaxed);
  while (value > old && !peak.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
}

void* mmap_raw(void* addr, size_t size, int prot, int flags) {
  if (fault_inject((flags & MAP_HUGETLB) != 0 ? Fault::huge : Fault::mmap)) {  // test builds (fault.h)
    errno = ENOMEM;
    return nullptr;
  }
  os_counters.mmap_calls.fetch_add(1, std::memory_order_relaxed);
  void* p = mmap(addr, size, prot, flags, -1, 0);
  return (p == MAP_FAILED) ? nullptr : p;
}

bool munmap_raw(void* p, size_t size) {
  if (p == nullptr || size == 0) return true;
  if ((fault_inject(Fault::munmap) ? (errno = ENOMEM, -1) : munmap(p, size)) != 0) {
    warning_message("munmap of %zu bytes at %p failed: %s", size, p, errno_text(errno));
    return false;
  }
  return true;
}

// Rounds [p, p+size) to OS pages: inward when `conservative` (purge must not
// touch memory outside the range), outward otherwise (commit covers it all).
void* page_range(void* p, size_t size, bool conservative, size_t* out_size) {
  uintptr_t start = reinterpret_cast<uintptr_t>(p);
  uintptr_t end = start + size;
  if (conservative) {
    start = align_up(start, page_size);
    end = align_down(end, page_size);
  } else {
    start = align_down(start, page_size);
    end = align_up(end, page_size);
  }
  *out_size = (end > start) ? end - start : 0;
  return reinterpret_cast<void*>(start);
}

}  // namespace

namespace {
AccountCounters& account_counters(int account) {
  // a bad account is a bug of ours; count it as metadata rather than write out of bounds
  if (account < 0 || account >= ACCOUNT_COUNT) account = ACCOUNT_META;
  return os_counters.accounts[account];
}
}  // namespace

void os_stat_committed(int64_t delta, int account) noexcept {
  AccountCounters& a = account_counters(account);
  const int64_t mine = a.committed.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0) stat_raise_peak(a.committed_peak, mine);
  int64_t now = os_counters.committed.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0) stat_raise_peak(os_counters.committed_peak, now);
}

void os_stat_reserved(int64_t delta, int account) noexcept {
  account_counters(account).reserved.fetch_add(delta, std::memory_order_relaxed);
  int64_t now = os_counters.reserved.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0) stat_raise_peak(os_counters.reserved_peak, now);
}

void os_counters_reset_peaks() noexcept {
  os_counters.reserved_peak.store(os_counters.reserved.load());
  os_counters.committed_peak.store(os_counters.committed.load());
  for (AccountCounters& a : os_counters.accounts) a.committed_peak.store(a.committed.load());
}

void* os_map_scratch(size_t size) noexcept {
  if (size == 0) return nullptr;
  // not mmap_raw: the report it is for must not count its own buffer among the mmap calls
  if (fault_inject(Fault::mmap)) return nullptr;
  void* p = mmap(nullptr, align_up(size, page_size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return (p == MAP_FAILED) ? nullptr : p;
}

void os_init() noexcept {
  fault_init();  // test builds (fault.h)
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0 && is_power_of_two(static_cast<uintptr_t>(ps))) page_size = static_cast<size_t>(ps);
  char buf[64];
  if (os_read_file("/proc/sys/vm/overcommit_memory", buf, sizeof(buf)) > 0) {
    has_overcommit = (buf[0] == '0' || buf[0] == '1');
  }
}

size_t os_page_size() noexcept { return page_size; }
size_t os_large_page_size() noexcept { return large_page_size; }
bool os_has_overcommit() noexcept { return has_overcommit; }

namespace {

void* alloc_aligned(size_t size, size_t alignment, bool commit, bool allow_large, MemId* memid, bool account_commit,
                    int account, bool report) {
  *memid = MemId{};
  memid->numa_node = -1;
  memid->account = static_cast<uint8_t>(account);
  if (size == 0) return nullptr;
  if (alignment < page_size) alignment = page_size;
  size = align_up(size, page_size);
  const int prot = commit ? (PROT_READ | PROT_WRITE) : PROT_NONE;
  // MAP_NORESERVE, committed or not: what is touched is what counts. Under
  // the kernel's default (heuristic) overcommit a writable mapping without it
  // larger than RAM + swap is refused though nothing of it is used yet
  // (MIMALLOC_RESERVE_OS_MEMORY=100GiB failed on a 24 GiB machine). Under
  // vm.overcommit_memory=2 the kernel ignores the flag and charges writable
  // mappings in full, which is why arenas are reserved PROT_NONE there and
  // committed block by block (arena_eager_commit = 2).
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

  // 2 MiB pages, when asked for and the size fits them: pinned, committed.
  if (allow_large && commit && option_is_enabled(mi_option_allow_large_os_pages) && (size % large_page_size) == 0) {
    void* p = os_alloc_large_pages(size, memid, alignment, account);
    if (p != nullptr) return p;
    // counted, and said once: never a silent fallback to 4 KiB pages
    stat_counter(stats_global.large_page_fallbacks, 1);
    if (once(Once::large_fallback)) {
      warning_message(
          "allow_large_os_pages: the kernel has no free 2 MiB pages for %zu bytes (%s); using 4 KiB pages. "
          "Further fallbacks are counted in the statistics",
          size, errno_text(errno));
    }
  }

  // Where transparent huge pages are "always", a reservation aligned to
  // 2 MiB or more keeps one page below it, mapped and never used
  // (memid->os_pad): the kernel places a new mapping right below the lowest
  // one, so a reservation starting on a 2 MiB boundary made the next mapping
  // end on one, and the first touch of its top faulted a whole 2 MiB page.
  // That mapping is typically a thread's stack, whose first frame is at its
  // top: in the 4-node guest (THP "always", Debian's default) a thread made
  // after a node's arena had 2 MiB resident for a 12 KiB stack, one per
  // arena boundary (a 4-thread program of database rows peaked at
  // 76.8-78.6 MiB there, 73.4-73.5 with the pad; numa-vm thread-stacks).
  const size_t pad = (alignment >= large_page_size && os_thp_always()) ? page_size : 0;
  // Most mappings come back aligned when the size is a multiple of the
  // alignment; only over-allocate and trim when this one did not (or to
  // keep the pad).
  void* p = nullptr;
  bool trim = pad != 0;
  if (!trim) {
    p = mmap_raw(nullptr, size, prot, flags);
    if (p != nullptr && (reinterpret_cast<uintptr_t>(p) & (alignment - 1)) != 0) {
      munmap_raw(p, size);
      p = nullptr;
      trim = true;
    }
  }
  if (trim) {
    const size_t over = size + alignment + pad;
    void* base = mmap_raw(nullptr, over, prot, flags);
    if (base != nullptr) {
      const uintptr_t start = align_up(reinterpret_cast<uintptr_t>(base) + pad, alignment);
      const size_t pre = start - pad - reinterpret_cast<uintptr_t>(base);
      const size_t post = over - pre - pad - size;
      if (pre > 0) munmap_raw(base, pre);
      if (post > 0) munmap_raw(reinterpret_cast<void*>(start + size), post);
      p = reinterpret_cast<void*>(start);
      memid->os_pad = static_cast<uint32_t>(pad);
    }
  }
  if (p == nullptr) {
    if (report) {
      const int err = errno;
      // A segment outside the arenas is a request's memory: the allocation
      // slow path reports its failure once, after its retry (heap/page.cpp).
      if (account == ACCOUNT_OS) {
        verbose_message("could not map %zu bytes for a segment outside the arenas: %s", size, errno_text(err));
      } else {
        warning_message("could not reserve %zu bytes of address space (aligned to %zu): %s", size, alignment,
                        errno_text(err));
      }
      errno = err;
    }
    return nullptr;
  }
  if (commit && option_is_enabled(mi_option_allow_thp)) os_advise_thp(p, size);
  os_stat_reserved(static_cast<int64_t>(size), account);
  if (commit && account_commit) os_stat_committed(static_cast<int64_t>(size), account);
  memid->kind = MemKind::os;
  memid->os_base = p;
  memid->os_size = size;
  memid->initially_committed = commit;
  memid->is_accessible = commit && !account_commit;
  memid->initially_zero = true;
  return p;
}

// A mapping on 2 MiB or 1 GiB pages (kept in memory: pinned, committed and
// zero from the start): counted reserved and committed, and described.
void pinned_mapping(MemId* memid, void* base, size_t size, int account) {
  os_stat_reserved(static_cast<int64_t>(size), account);
  os_stat_committed(static_cast<int64_t>(size), account);
  memid->kind = MemKind::os;
  memid->os_base = base;
  memid->os_size = size;
  memid->is_large = true;
  memid->is_pinned = true;
  memid->initially_committed = true;
  memid->initially_zero = true;
}
}  // namespace

void* os_alloc_aligned(size_t size, size_t alignment, bool commit, bool allow_large, MemId* memid, bool account_commit,
                       int account) noexcept {
  return alloc_aligned(size, alignment, commit, allow_large, memid, account_commit, account, true);
}

void* os_try_alloc_aligned(size_t size, size_t alignment, bool commit, bool allow_large, MemId* memid,
                           bool account_commit, int account) noexcept {
  return alloc_aligned(size, alignment, commit, allow_large, memid, account_commit, account, false);
}

void* os_alloc_large_pages(size_t size, MemId* memid, size_t alignment, int account) noexcept {
  *memid = MemId{};
  memid->numa_node = -1;
  memid->account = static_cast<uint8_t>(account);
  if (size == 0 || size % large_page_size != 0) return nullptr;
  if (alignment < large_page_size) alignment = large_page_size;
  // An aligned reservation first, then the 2 MiB pages mapped into it. A
  // failure of either is the caller's to report (nullptr, errno).
  MemId rid;
  uint8_t* base = static_cast<uint8_t*>(alloc_aligned(size, alignment, false, false, &rid, true, account, false));
  if (base == nullptr) return nullptr;
  os_stat_reserved(-static_cast<int64_t>(size), account);  // re-accounted below if kept
  void* p = mmap_raw(base, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB | MAP_HUGE_2MB);
  if (p == nullptr) {
    int saved = errno;
    munmap_raw(base - rid.os_pad, size + rid.os_pad);
    errno = saved;
    return nullptr;
  }
  pinned_mapping(memid, p, size, account);
  memid->os_pad = rid.os_pad;
  return p;
}

void* os_copy_to_regular(const void* start, size_t size, bool (*copy)(void* arg, size_t* offset, size_t* len),
                         void* arg, int os_node, int policy) noexcept {
  void* tmp = mmap_raw(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (tmp == nullptr) return nullptr;
  if (os_node >= 0 && policy > 0) os_numa_bind(tmp, size, os_node, policy);
  size_t offset = 0, len = 0;
  while (copy(arg, &offset, &len)) {
    if (offset >= size) break;
    if (len > size - offset) len = size - offset;
#if MI_ASAN
    copy_unchecked(static_cast<uint8_t*>(tmp) + offset, static_cast<const uint8_t*>(start) + offset,
                   len);  // free blocks too
#else
    memcpy(static_cast<uint8_t*>(tmp) + offset, static_cast<const uint8_t*>(start) + offset, len);
#endif
    offset += len;
  }
  return tmp;
}

bool os_set_dontfork(void* p, size_t size, bool dontfork) noexcept {
  if (fault_inject(Fault::madvise)) return false;
  return madvise(p, size, dontfork ? MADV_DONTFORK : MADV_DOFORK) == 0;
}

bool os_move_mapping(void* from, void* to, size_t size) noexcept {
  if (fault_inject(Fault::mremap)) return false;
  return mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED;
}

void os_unmap(void* p, size_t size) noexcept { munmap_raw(p, size); }

void* os_alloc_huge_pages(size_t pages, int64_t timeout_ms, size_t* pages_mapped, MemId* memid, int os_node, int policy,
                          int account) noexcept {
  *pages_mapped = 0;
  *memid = MemId{};
  memid->numa_node = -1;
  memid->account = static_cast<uint8_t>(account);
  if (pages == 0) return nullptr;
  // Reserve the whole range first, aligned to 1 GiB, then map the pages into
  // it one by one so that a shortage leaves a usable prefix.
  size_t total = pages * HUGE_OS_PAGE_SIZE;
  MemId rid;
  uint8_t* base = static_cast<uint8_t*>(os_alloc_aligned(total, HUGE_OS_PAGE_SIZE, false, false, &rid, true, account));
  if (base == nullptr) return nullptr;
  os_stat_reserved(-static_cast<int64_t>(total), account);  // re-accounted below for what is kept
  int64_t start_ms = os_clock_ms();
  size_t mapped = 0;
  for (; mapped < pages; mapped++) {
    if (timeout_ms > 0 && mapped > 0 && os_clock_ms() - start_ms > timeout_ms) break;
    void* want = base + mapped * HUGE_OS_PAGE_SIZE;
    void* p = mmap_raw(want, HUGE_OS_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB | MAP_HUGE_1GB);
    if (p == nullptr) break;
    if (os_node >= 0 && policy > 0) {
      // Bind before the first touch, then fault it in now: a node whose pool
      // has no page left makes this fail instead of a SIGBUS later.
      if (!os_numa_bind(p, HUGE_OS_PAGE_SIZE, os_node, policy) || !os_populate(p, HUGE_OS_PAGE_SIZE)) {
        munmap_raw(p, HUGE_OS_PAGE_SIZE);
        // keep the address range reserved so the prefix stays contiguous
        mmap_raw(p, HUGE_OS_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE);
        break;
      }
    }
  }
  if (mapped < pages) munmap_raw(base + mapped * HUGE_OS_PAGE_SIZE, (pages - mapped) * HUGE_OS_PAGE_SIZE);
  *pages_mapped = mapped;
  if (mapped == 0) {
    if (rid.os_pad != 0) munmap_raw(base - rid.os_pad, rid.os_pad);
    return nullptr;
  }
  size_t size = mapped * HUGE_OS_PAGE_SIZE;
  pinned_mapping(memid, base, size, account);
  memid->os_pad = rid.os_pad;
  os_counters.huge_pages_reserved.fetch_add(static_cast<int64_t>(mapped), std::memory_order_relaxed);
  memid->is_huge = true;
  return base;
}

namespace {

using mbind_fn = long (*)(void*, unsigned long, int, const unsigned long*, unsigned long, unsigned);
std::atomic<mbind_fn> mbind_ptr{nullptr};
std::atomic<bool> mbind_looked_up{false};

long mbind_syscall(void* p, unsigned long len, int mode, const unsigned long* mask, unsigned long maxnode,
                   unsigned flags) {
  return syscall(SYS_mbind, p, len, mode, mask, maxnode, flags);
}

// libnuma's wrapper once os_numa_init resolved it, else the same system call
// directly. Never dlopen here: this runs under the arena reservation lock,
// and dlopen allocates (a self-deadlock seen in the 4-node VM test).
mbind_fn mbind_get() {
  mbind_fn f = mbind_ptr.load(std::memory_order_acquire);
  return (f != nullptr) ? f : &mbind_syscall;
}
}  // namespace

void os_numa_init() noexcept {
  if (mbind_looked_up.exchange(true)) return;
  void* h = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
  mbind_fn f = (h != nullptr) ? reinterpret_cast<mbind_fn>(dlsym(h, "mbind")) : nullptr;
  if (f != nullptr) mbind_ptr.store(f, std::memory_order_release);
}

bool os_numa_bind(void* p, size_t size, int os_node, int policy) noexcept {
  if (os_node < 0 || os_node >= 1024 || policy <= 0) return false;
  unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {};
  mask[static_cast<unsigned>(os_node) / (8 * sizeof(unsigned long))] |=
      1UL << (static_cast<unsigned>(os_node) % (8 * sizeof(unsigned long)));
  const int mode = (policy == 2) ? 2 /* MPOL_BIND */ : 1 /* MPOL_PREFERRED */;
  long err = fault_inject(Fault::mbind) ? (errno = EIO, -1) : mbind_get()(p, size, mode, mask, 1024 + 1, 0);
  if (err != 0) {
    warning_message("cannot bind %zu bytes at %p to NUMA node %d (mbind): %s", size, p, os_node, errno_text(errno));
    return false;
  }
  return true;
}

bool os_populate(void* p, size_t size) noexcept {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (fault_inject(Fault::madvise)) return false;
  return madvise(p, size, MADV_POPULATE_WRITE) == 0;
}

int64_t os_numa_node_free(int os_node) noexcept {
  char path[80];
  char buf[2048];
  format(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", os_node);
  if (os_read_file(path, buf, sizeof(buf)) <= 0) return -1;
  const char* s = strstr(buf, "MemFree:");
  if (s == nullptr) return -1;
  s += 8;
  while (*s == ' ') s++;
  int64_t kb = 0;
  while (*s >= '0' && *s <= '9') kb = kb * 10 + (*s++ - '0');
  return kb * 1024;
}

void os_free(void* p, size_t size, const MemId& memid_ref) noexcept {
  // A copy: the MemId may live inside the mapping released here (an arena's
  // own struct holds its meta_memid), and is read after the munmap.
  const MemId memid = memid_ref;
  if (p == nullptr || size == 0) return;
  if (memid.kind != MemKind::os) return;
  void* base = (memid.os_base != nullptr) ? memid.os_base : p;
  size_t len = (memid.os_size != 0) ? memid.os_size : size;
  const size_t pad = (memid.os_base != nullptr) ? memid.os_pad : 0;  // (not counted reserved)
  if (munmap_raw(static_cast<uint8_t*>(base) - pad, len + pad)) {
    os_stat_reserved(-static_cast<int64_t>(len), memid.account);
    if ((memid.initially_committed && !memid.is_accessible) || memid.is_pinned) {
      os_stat_committed(-static_cast<int64_t>(len), memid.account);
    }
    if (memid.is_huge) {
      os_counters.huge_pages_reserved.fetch_sub(static_cast<int64_t>(len / HUGE_OS_PAGE_SIZE),
                                                std::memory_order_relaxed);
    }
  }
}

bool os_commit(void* p, size_t size, bool* is_zero, int account) noexcept {
  if (is_zero != nullptr) *is_zero = false;
  size_t csize;
  void* start = page_range(p, size, false, &csize);
  if (csize == 0) return true;
  os_counters.commit_calls.fetch_add(1, std::memory_order_relaxed);
  if ((fault_inject(Fault::mprotect) ? (errno = ENOMEM, -1) : mprotect(start, csize, PROT_READ | PROT_WRITE)) != 0) {
    warning_message("cannot commit %zu bytes at %p (mprotect): %s", csize, start, errno_text(errno));
    return false;
  }
  if (option_is_enabled(mi_option_allow_thp)) os_advise_thp(start, csize);
  os_stat_committed(static_cast<int64_t>(csize), account);
  return true;
}

namespace {

// The whole OS pages inside [p, p + size) that a purge (decommit, reset,
// discard) advises; *csize 0: none. Counted as one purge call.
void* purge_range(void* p, size_t size, size_t* csize) {
  void* start = page_range(p, size, true, csize);
  if (*csize != 0) os_counters.purge_calls.fetch_add(1, std::memory_order_relaxed);
  return start;
}

// madvise, its time counted as purge time: 0, or -1 with errno.
int purge_madvise(void* start, size_t csize, int advice) {
  const int64_t t0 = os_clock_ns();
  const int err = madvise(start, csize, advice);
  os_counters.purge_ns.fetch_add(os_clock_ns() - t0, std::memory_order_relaxed);
  return err;
}

// A purge's end: warns when it failed (`what` it was, `how`), else counts
// the bytes in `counter` (purged or reset) and as the account's purged.
bool purge_counted(int err, const char* what, const char* how, void* start, size_t csize, int account,
                   std::atomic<int64_t>& counter) {
  if (err != 0) {
    warning_message("cannot %s %zu bytes at %p (%s): %s", what, csize, start, how, errno_text(errno));
    return false;
  }
  counter.fetch_add(static_cast<int64_t>(csize), std::memory_order_relaxed);
  account_counters(account).purged.fetch_add(static_cast<int64_t>(csize), std::memory_order_relaxed);
  return true;
}

}  // namespace

bool os_decommit(void* p, size_t size, bool uncount, int account) noexcept {
  size_t csize;
  void* start = purge_range(p, size, &csize);
  if (csize == 0) return true;
  // MADV_DONTNEED lowers RSS at once and the range reads as zero afterwards.
  const int err = fault_inject(Fault::madvise) ? (errno = EAGAIN, -1) : purge_madvise(start, csize, MADV_DONTNEED);
  if (!purge_counted(err, "decommit", "madvise DONTNEED", start, csize, account, os_counters.purged)) return false;
#if MI_DEBUG
  // Debug builds also protect it, so a use after purge faults where it happens.
  (void)mprotect(start, csize, PROT_NONE);
#endif
  if (uncount) os_stat_committed(-static_cast<int64_t>(csize), account);
  return true;
}

bool os_reset(void* p, size_t size, int account) noexcept {
  size_t csize;
  void* start = purge_range(p, size, &csize);
  if (csize == 0) return true;
  if (fault_inject(Fault::madvise)) {
    warning_message("cannot reset %zu bytes at %p (madvise): %s", csize, start, errno_text(EAGAIN));
    return false;
  }
  int err = -1;
  if (madv_free_works.load(std::memory_order_relaxed)) {
    err = purge_madvise(start, csize, MADV_FREE);
    if (err != 0 && errno == EINVAL) madv_free_works.store(false, std::memory_order_relaxed);  // kernel < 4.5
  }
  if (err != 0) err = purge_madvise(start, csize, MADV_DONTNEED);
  return purge_counted(err, "reset", "madvise", start, csize, account, os_counters.reset);
}

bool os_discard(void* p, size_t size, int account) noexcept {
  size_t csize;
  void* start = purge_range(p, size, &csize);
  if (csize == 0) return true;
  const int err = purge_madvise(start, csize, MADV_DONTNEED);
  return purge_counted(err, "discard", "madvise DONTNEED", start, csize, account, os_counters.reset);
}

bool os_purge(void* p, size_t size, bool uncount, int account) noexcept {
  if (option_is_enabled(mi_option_purge_decommits)) return os_decommit(p, size, uncount, account);
  os_reset(p, size, account);
  return false;
}

bool os_protect(void* p, size_t size, bool protect) noexcept {
  size_t csize;
  void* start = page_range(p, size, true, &csize);
  if (csize == 0) return true;
  if (mprotect(start, csize, protect ? PROT_NONE : (PROT_READ | PROT_WRITE)) != 0) {
    // ENOMEM: most often vm.max_map_count (every guard page splits a mapping)
    warning_message("cannot %s %zu bytes at %p (mprotect): %s", protect ? "protect" : "unprotect", csize, start,
                    errno_text(errno));
    return false;
  }
  return true;
}

uint64_t os_random_seed() noexcept {
  uint64_t seed = 0;
  // the kernel's generator; never blocks (GRND_NONBLOCK: early boot gives EAGAIN)
  long n = syscall(SYS_getrandom, &seed, sizeof(seed), 0x0001 /* GRND_NONBLOCK */);
  if (n != static_cast<long>(sizeof(seed)) || seed == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed ^= static_cast<uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(ts.tv_sec) ^
            (reinterpret_cast<uintptr_t>(&seed) << 16) ^ static_cast<uint64_t>(getpid());
    if (seed == 0) seed = 1;
  }
  return seed;
}

void os_advise_thp(void* p, size_t size) noexcept {
#ifdef MADV_HUGEPAGE
  size_t csize;
  void* start = page_range(p, size, true, &csize);
  if (csize >= large_page_size) (void)madvise(start, csize, MADV_HUGEPAGE);
#else
  (void)p;
  (void)size;
#endif
}

bool os_thp_always() noexcept {
  // -1: not read yet. Read once: the setting is the administrator's, and a
  // process that saw it change would only place its next segments the other way.
  static std::atomic<int> always{-1};
  int v = always.load(std::memory_order_relaxed);
  if (v < 0) {
    char buf[64];
    const long n = os_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = 0;
    v = (strstr(buf, "[always]") != nullptr) ? 1 : 0;  // "[always] madvise never"
    always.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

void os_advise_no_thp(void* p, size_t size) noexcept {
#ifdef MADV_NOHUGEPAGE
  if (option_is_enabled(mi_option_allow_thp) || !os_thp_always()) return;
  size_t csize;
  void* start = page_range(p, size, true, &csize);
  if (csize > 0) (void)madvise(start, csize, MADV_NOHUGEPAGE);
#else
  (void)p;
  (void)size;
#endif
}

long os_thread_os_id() noexcept { return static_cast<long>(syscall(SYS_gettid)); }

void os_process_rss(size_t* current, size_t* peak) noexcept {
  char buf[128];
  *current = 0;
  if (os_read_file("/proc/self/statm", buf, sizeof(buf)) > 0) {
    // "size resident shared ...": the second field, in pages
    const char* s = buf;
    while (*s != 0 && *s != ' ') s++;
    while (*s == ' ') s++;
    size_t pages = 0;
    while (*s >= '0' && *s <= '9') pages = pages * 10 + static_cast<size_t>(*s++ - '0');
    *current = pages * page_size;
  }
  struct rusage ru;
  *peak = 0;
  if (getrusage(RUSAGE_SELF, &ru) == 0) *peak = static_cast<size_t>(ru.ru_maxrss) * 1024;
  if (*peak < *current) *peak = *current;
}

}  // namespace mi
