// Unit tests of lib/os: aligned allocation and release, reserve / commit /
// decommit / reset / purge with their page rounding and the process-wide
// counters, huge and large OS pages failing cleanly, and the small helpers
// (clock, environment and file reads into caller buffers, RSS).
#include "os/os.h"

#include <gtest/gtest.h>
#include <mimalloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/options.h"
#include "option_guard.h"
#include "unit_util.h"

namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

int64_t reserved() { return mi::os_counters.reserved.load(); }
int64_t committed() { return mi::os_counters.committed.load(); }
int64_t account_reserved(int a) { return mi::os_counters.accounts[a].reserved.load(); }
int64_t account_committed(int a) { return mi::os_counters.accounts[a].committed.load(); }
int64_t account_purged(int a) { return mi::os_counters.accounts[a].purged.load(); }

using unit::OptionGuard;

TEST(Os, PageSizes) {
  EXPECT_EQ(mi::os_page_size(), static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_TRUE(mi::is_power_of_two(mi::os_page_size()));
  EXPECT_EQ(mi::os_large_page_size(), 2 * MiB);
}

TEST(Os, AllocAlignedCommittedAndFree) {
  for (size_t alignment : {size_t{4 * KiB}, size_t{64 * KiB}, size_t{4 * MiB}, size_t{32 * MiB}}) {
    for (size_t size : {size_t{4 * KiB}, size_t{100 * KiB + 5}, size_t{8 * MiB}}) {
      SCOPED_TRACE(testing::Message() << "size " << size << " alignment " << alignment);
      const int64_t r0 = reserved(), c0 = committed();
      mi::MemId memid;
      uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(size, alignment, true, false, &memid));
      ASSERT_NE(p, nullptr);
      const size_t rounded = mi::align_up(size, mi::os_page_size());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignment, 0u);
      EXPECT_EQ(memid.kind, mi::MemKind::os);
      EXPECT_EQ(memid.os_base, p);
      EXPECT_EQ(memid.os_size, rounded);
      EXPECT_TRUE(memid.initially_committed);
      EXPECT_TRUE(memid.initially_zero);
      EXPECT_FALSE(memid.is_pinned);
      EXPECT_EQ(memid.numa_node, -1);
      EXPECT_EQ(reserved() - r0, static_cast<int64_t>(rounded));
      EXPECT_EQ(committed() - c0, static_cast<int64_t>(rounded));
      for (size_t i = 0; i < size; i += 4096) ASSERT_EQ(p[i], 0);
      p[0] = 1;
      p[size - 1] = 2;
      mi::os_free(p, size, memid);
      EXPECT_EQ(reserved(), r0);
      EXPECT_EQ(committed(), c0);
      EXPECT_EQ(unit::resident_pages(p, rounded), SIZE_MAX) << "still mapped after os_free";
    }
  }
}

TEST(Os, AllocAlignedWithoutCommitAccounting) {
  // account_commit=false: the mapping is usable but not counted as committed
  // (arenas count their blocks as they hand them out).
  const int64_t c0 = committed();
  mi::MemId memid;
  void* p = mi::os_alloc_aligned(4 * MiB, 4 * MiB, true, false, &memid, false);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(committed(), c0);
  EXPECT_TRUE(memid.is_accessible);
  memset(p, 1, 4 * MiB);
  mi::os_free(p, 4 * MiB, memid);
  EXPECT_EQ(committed(), c0);
}

// The MemId given to os_free may live in the memory it releases (an arena's
// struct holds its own meta_memid): it was read after the munmap, and
// destroy_on_exit crashed every program (SIGSEGV in os_free).
TEST(Os, FreeWithItsMemIdInsideTheMemory) {
  const int64_t r0 = account_reserved(mi::ACCOUNT_META), c0 = account_committed(mi::ACCOUNT_META);
  mi::MemId memid;
  void* p = mi::os_alloc_aligned(64 * KiB, mi::os_page_size(), true, false, &memid);
  ASSERT_NE(p, nullptr);
  const mi::MemId* inside = new (p) mi::MemId(memid);
  mi::os_free(p, 64 * KiB, *inside);
  EXPECT_EQ(unit::resident_pages(p, 64 * KiB), SIZE_MAX) << "still mapped after os_free";
  EXPECT_EQ(account_reserved(mi::ACCOUNT_META), r0);
  EXPECT_EQ(account_committed(mi::ACCOUNT_META), c0);
}

// A committed (writable) mapping larger than RAM + swap: the kernel's default
// heuristic overcommit refuses it without MAP_NORESERVE, though nothing of it
// is touched (MIMALLOC_RESERVE_OS_MEMORY=100GiB failed on a 24 GiB machine).
TEST(Os, CommittedMappingLargerThanRamAndSwap) {
  char mode[8] = "";
  if (mi::os_read_file("/proc/sys/vm/overcommit_memory", mode, sizeof(mode)) <= 0 || mode[0] != '0') {
    GTEST_SKIP() << "vm.overcommit_memory is not 0 (heuristic): " << mode;
  }
  struct rlimit as {};
  if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) GTEST_SKIP() << "the address space is limited";
  const long pages = sysconf(_SC_PHYS_PAGES);
  struct sysinfo si {};
  ASSERT_EQ(sysinfo(&si), 0);
  const size_t ram_swap =
      static_cast<size_t>(pages) * mi::os_page_size() + static_cast<size_t>(si.totalswap) * si.mem_unit;
  const size_t size = mi::align_up(2 * ram_swap, size_t{1} << 30);
  const int64_t r0 = reserved();
  mi::MemId memid;
  uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(size, 4 * MiB, true, false, &memid, false));
  ASSERT_NE(p, nullptr) << "a writable mapping of " << (size >> 30) << " GiB was refused";
  EXPECT_EQ(reserved() - r0, static_cast<int64_t>(size));
  p[0] = 1;  // usable where touched
  p[size - 1] = 2;
  mi::os_free(p, size, memid);
  EXPECT_EQ(reserved(), r0);
}

TEST(Os, ReserveCommitDecommit) {
  const size_t ps = mi::os_page_size();
  const int64_t r0 = reserved(), c0 = committed();
  const int64_t meta_r0 = account_reserved(mi::ACCOUNT_META), meta_c0 = account_committed(mi::ACCOUNT_META);
  const int64_t meta_p0 = account_purged(mi::ACCOUNT_META);
  mi::MemId memid;
  uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(16 * MiB, 4 * MiB, false, false, &memid));
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(memid.initially_committed);
  EXPECT_EQ(reserved() - r0, static_cast<int64_t>(16 * MiB));
  EXPECT_EQ(committed(), c0) << "a reservation is not committed";
  EXPECT_EQ(unit::resident_pages(p, 16 * MiB), 0u);

  // commit rounds outward to OS pages
  bool zero = true;
  ASSERT_TRUE(mi::os_commit(p + 100, 10, &zero, memid.account));
  EXPECT_EQ(committed() - c0, static_cast<int64_t>(ps));
  EXPECT_FALSE(zero);
  p[0] = 1;
  p[ps - 1] = 2;  // the whole first page is usable
  ASSERT_TRUE(mi::os_commit(p + MiB, MiB, nullptr, memid.account));
  EXPECT_EQ(committed() - c0, static_cast<int64_t>(ps + MiB));
  memset(p + MiB, 0x7e, MiB);
  EXPECT_EQ(unit::resident_pages(p + MiB, MiB), MiB / ps);

  // decommit rounds inward: a range inside one page does nothing
  const int64_t purged0 = mi::os_counters.purged.load();
  ASSERT_TRUE(mi::os_decommit(p + 100, 200, true, memid.account));
  EXPECT_EQ(committed() - c0, static_cast<int64_t>(ps + MiB));
  EXPECT_EQ(mi::os_counters.purged.load(), purged0);
  // a real decommit: RSS goes, the counters follow
  ASSERT_TRUE(mi::os_decommit(p + MiB, MiB, true, memid.account));
  EXPECT_EQ(committed() - c0, static_cast<int64_t>(ps));
  EXPECT_EQ(mi::os_counters.purged.load() - purged0, static_cast<int64_t>(MiB));
  EXPECT_EQ(unit::resident_pages(p + MiB, MiB), 0u);
  // committed again, it reads as zero
  ASSERT_TRUE(mi::os_commit(p + MiB, MiB, nullptr, memid.account));
  for (size_t i = 0; i < MiB; i += 512) ASSERT_EQ(p[MiB + i], 0) << i;
  // account=false leaves the counter to the caller
  const int64_t c1 = committed();
  ASSERT_TRUE(mi::os_decommit(p + MiB, MiB, false, memid.account));
  EXPECT_EQ(committed(), c1);
  mi::os_stat_committed(-static_cast<int64_t>(MiB), memid.account);
  ASSERT_TRUE(mi::os_decommit(p, ps, true, memid.account));
  EXPECT_EQ(committed(), c0);
  // the mapping's account moved with the totals: metadata, since it did not name another
  EXPECT_EQ(memid.account, mi::ACCOUNT_META);
  EXPECT_EQ(account_committed(mi::ACCOUNT_META), meta_c0);
  EXPECT_EQ(account_reserved(mi::ACCOUNT_META) - meta_r0, static_cast<int64_t>(16 * MiB));
  EXPECT_EQ(account_purged(mi::ACCOUNT_META) - meta_p0, static_cast<int64_t>(2 * MiB + ps));
  mi::os_free(p, 16 * MiB, memid);
  EXPECT_EQ(reserved(), r0);
  EXPECT_EQ(committed(), c0) << "os_free of a reservation must not uncount commits it never counted";
}

TEST(Os, ResetKeepsTheRangeCommitted) {
  mi::MemId memid;
  uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(2 * MiB, 64 * KiB, true, false, &memid));
  ASSERT_NE(p, nullptr);
  memset(p, 0x11, 2 * MiB);
  const int64_t c0 = committed(), reset0 = mi::os_counters.reset.load();
  ASSERT_TRUE(mi::os_reset(p, 2 * MiB, memid.account));
  EXPECT_EQ(committed(), c0) << "reset is not decommit";
  EXPECT_EQ(mi::os_counters.reset.load() - reset0, static_cast<int64_t>(2 * MiB));
  memset(p, 0x22, 2 * MiB);  // still writable: no fault
  EXPECT_EQ(p[2 * MiB - 1], 0x22);
  mi::os_free(p, 2 * MiB, memid);
}

TEST(Os, PurgeFollowsPurgeDecommits) {
  OptionGuard g(mi_option_purge_decommits);
  mi::MemId memid;
  uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(2 * MiB, 64 * KiB, true, false, &memid));
  ASSERT_NE(p, nullptr);
  memset(p, 0x33, 2 * MiB);
  mi_option_set(mi_option_purge_decommits, 1);
  const int64_t c0 = committed();
  EXPECT_TRUE(mi::os_purge(p, MiB, true, memid.account)) << "decommitted";
  EXPECT_EQ(c0 - committed(), static_cast<int64_t>(MiB));
  EXPECT_EQ(unit::resident_pages(p, MiB), 0u);
  mi_option_set(mi_option_purge_decommits, 0);
  const int64_t reset0 = mi::os_counters.reset.load();
  EXPECT_FALSE(mi::os_purge(p + MiB, MiB, true, memid.account)) << "only reset";
  EXPECT_EQ(mi::os_counters.reset.load() - reset0, static_cast<int64_t>(MiB));
  EXPECT_EQ(c0 - committed(), static_cast<int64_t>(MiB));
  ASSERT_TRUE(mi::os_commit(p, MiB, nullptr, memid.account));
  mi::os_free(p, 2 * MiB, memid);
}

TEST(Os, FailuresAreCleanAndQuiet) {
  OptionGuard g(mi_option_show_errors);
  mi_option_set(mi_option_show_errors, 0);
  const int64_t r0 = reserved(), c0 = committed();
  mi::MemId memid;
  EXPECT_EQ(mi::os_alloc_aligned(0, 4096, true, false, &memid), nullptr);
  EXPECT_EQ(mi::os_alloc_aligned(size_t{1} << 62, 4096, false, false, &memid), nullptr);
  // 1 GiB and 2 MiB pages are usually not available: no memory, no counters left behind
  size_t mapped = 99;
  void* h = mi::os_alloc_huge_pages(1, 200, &mapped, &memid);
  if (h == nullptr) {
    EXPECT_EQ(mapped, 0u);
    EXPECT_EQ(reserved(), r0);
    EXPECT_EQ(committed(), c0);
  } else {
    EXPECT_EQ(mapped, 1u);
    EXPECT_TRUE(memid.is_pinned);
    mi::os_free(h, mapped * mi::HUGE_OS_PAGE_SIZE, memid);
  }
  void* l = mi::os_alloc_large_pages(4 * MiB, &memid);
  if (l != nullptr) mi::os_free(l, 4 * MiB, memid);
  EXPECT_EQ(reserved(), r0);
  EXPECT_EQ(committed(), c0);
  mi::os_free(nullptr, 4096, memid);  // ignored
}

TEST(Os, ClockAndThreadId) {
  const int64_t a = mi::os_clock_ms();
  const int64_t steady =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
  const int64_t b = mi::os_clock_ms();
  EXPECT_LE(a, b);
  EXPECT_LE(std::llabs(steady - a), 5) << "the clock is CLOCK_MONOTONIC in ms";
  EXPECT_EQ(mi::os_thread_os_id(), static_cast<long>(syscall(SYS_gettid)));
}

TEST(Os, Getenv) {
  ASSERT_EQ(setenv("MI_UNIT_OS_VAR", "hello-world", 1), 0);
  char buf[64];
  ASSERT_TRUE(mi::os_getenv("MI_UNIT_OS_VAR", buf, sizeof(buf)));
  EXPECT_STREQ(buf, "hello-world");
  char small[6];
  ASSERT_TRUE(mi::os_getenv("MI_UNIT_OS_VAR", small, sizeof(small)));
  EXPECT_STREQ(small, "hello") << "truncated to the buffer";
  EXPECT_FALSE(mi::os_getenv("MI_UNIT_OS_VA", buf, sizeof(buf))) << "a prefix is not the variable";
  EXPECT_FALSE(mi::os_getenv("MI_UNIT_OS_VAR_NOT_SET", buf, sizeof(buf)));
  EXPECT_FALSE(mi::os_getenv(nullptr, buf, sizeof(buf)));
  EXPECT_FALSE(mi::os_getenv("MI_UNIT_OS_VAR", buf, 0));
  ASSERT_EQ(setenv("MI_UNIT_OS_EMPTY", "", 1), 0);
  ASSERT_TRUE(mi::os_getenv("MI_UNIT_OS_EMPTY", buf, sizeof(buf)));
  EXPECT_STREQ(buf, "");
  unsetenv("MI_UNIT_OS_VAR");
  unsetenv("MI_UNIT_OS_EMPTY");
}

TEST(Os, ReadFile) {
  char buf[256];
  long n = mi::os_read_file("/proc/self/stat", buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_EQ(static_cast<size_t>(n), strlen(buf));
  EXPECT_EQ(atol(buf), static_cast<long>(getpid()));
  char tiny[5];
  EXPECT_EQ(mi::os_read_file("/proc/self/stat", tiny, sizeof(tiny)), 4);
  EXPECT_EQ(strlen(tiny), 4u);
  errno = 0;
  EXPECT_EQ(mi::os_read_file("/nonexistent/mi-unit", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(mi::os_read_file("/proc/self/stat", buf, 0), -1);
}

TEST(Os, ProcessRss) {
  size_t cur0 = 0, peak0 = 0;
  mi::os_process_rss(&cur0, &peak0);
  EXPECT_GT(cur0, 0u);
  EXPECT_GE(peak0, cur0);
  mi::MemId memid;
  uint8_t* p = static_cast<uint8_t*>(mi::os_alloc_aligned(32 * MiB, 4096, true, false, &memid));
  ASSERT_NE(p, nullptr);
  memset(p, 1, 32 * MiB);
  size_t cur1 = 0, peak1 = 0;
  mi::os_process_rss(&cur1, &peak1);
  EXPECT_GE(cur1, cur0 + 24 * MiB);
  EXPECT_GE(peak1, cur1);
  mi::os_free(p, 32 * MiB, memid);
  size_t cur2 = 0, peak2 = 0;
  mi::os_process_rss(&cur2, &peak2);
  EXPECT_LT(cur2, cur1 - 24 * MiB);
  EXPECT_GE(peak2, cur1 - MiB) << "the peak stays";
}

}  // namespace
