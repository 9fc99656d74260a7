// glibc's malloc introspection (<malloc.h>) in a program linked with the
// library: mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt and
// malloc_trim report the allocator's figures (the same as mi_numa_stats),
// with glibc's identities. Ours only: glibc and mimalloc 2.x give other
// numbers. (tests/programs/introspection.sh checks the same under
// LD_PRELOAD of python3, and malloc_info's XML with python's parser.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <malloc.h>
#include <mimalloc-numa.h>
#include <mimalloc.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t MiB = 1024 * 1024;

bool same(const mi_numa_stats_t& a, const mi_numa_stats_t& b) { return memcmp(&a, &b, sizeof(a)) == 0; }

mi_numa_stats_t total() {
  mi_numa_stats_t t;
  EXPECT_EQ(mi_numa_stats(MI_NUMA_STATS_TOTAL, &t), 0);
  return t;
}

// mallinfo2 with the allocator's totals of the same moment (nothing else
// runs in this test's threads; the loop is for gtest's own allocations).
struct mallinfo2 mallinfo2_at_one_moment(mi_numa_stats_t* t) {
  for (int i = 0; i < 100; i++) {
    mi_numa_stats_t before = total();
    struct mallinfo2 m = mallinfo2();
    *t = total();
    if (same(before, *t)) return m;
  }
  ADD_FAILURE() << "the figures never held still";
  return mallinfo2();
}

void expect_identities(const struct mallinfo2& m, const mi_numa_stats_t& t) {
  EXPECT_EQ(m.arena + m.hblkhd, t.committed);
  EXPECT_EQ(m.uordblks + t.big_block_bytes, t.blocks);
  EXPECT_EQ(m.uordblks + m.fordblks, m.arena);
  EXPECT_EQ(m.hblks, t.big_blocks);
  EXPECT_GE(m.hblkhd, t.big_block_bytes);
  EXPECT_EQ(m.keepcost, t.purge_pending);
  EXPECT_LE(m.keepcost, m.fordblks);
  EXPECT_EQ(m.smblks, 0u);
  EXPECT_EQ(m.usmblks, 0u);
  EXPECT_EQ(m.fsmblks, 0u);
}

// Keeps the compiler from dropping a malloc whose block is not used.
void* used(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

TEST(Glibc, Mallinfo2MatchesTheStatistics) {
  std::vector<void*> v;
  v.reserve(100);
  mi_numa_stats_t t0;
  const struct mallinfo2 m0 = mallinfo2_at_one_moment(&t0);
  expect_identities(m0, t0);
  size_t usable = 0;
  for (int i = 0; i < 50; i++) {
    v.push_back(used(malloc(static_cast<size_t>(i) * 1000 + 10)));
    usable += malloc_usable_size(v.back());
  }
  void* big = used(malloc(6 * MiB));
  mi_numa_stats_t t1;
  const struct mallinfo2 m1 = mallinfo2_at_one_moment(&t1);
  expect_identities(m1, t1);
  EXPECT_EQ(m1.uordblks - m0.uordblks, usable);
  EXPECT_EQ(m1.hblks, m0.hblks + 1);
  EXPECT_GE(m1.hblkhd - m0.hblkhd, 6 * MiB);
  for (void* p : v) free(p);
  free(big);
  mi_numa_stats_t t2;
  const struct mallinfo2 m2 = mallinfo2_at_one_moment(&t2);
  expect_identities(m2, t2);
  EXPECT_EQ(m2.uordblks, m0.uordblks);
  EXPECT_EQ(m2.hblks, m0.hblks);
}

TEST(Glibc, MallinfoSaturates) {
  // 3 GiB of address space in one block (never touched): hblkhd is beyond an int
  void* p = used(malloc(size_t{3} << 30));
  if (p == nullptr) GTEST_SKIP() << "no 3 GiB of address space here";
  const struct mallinfo2 m2 = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // glibc deprecates it; programs still call it
  const struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
  EXPECT_GT(m2.hblkhd, static_cast<size_t>(INT_MAX));
  EXPECT_EQ(m.hblkhd, INT_MAX);
  EXPECT_EQ(m.hblks, static_cast<int>(m2.hblks));
  EXPECT_EQ(m.smblks, 0);
  free(p);
}

TEST(Glibc, MalloptAppliesOnlyWhatItCan) {
  const long delay = mi_option_get(mi_option_purge_delay);
  EXPECT_EQ(mallopt(M_TRIM_THRESHOLD, -1), 1);
  EXPECT_EQ(mi_option_get(mi_option_purge_delay), -1) << "no trimming: free memory is never purged";
  EXPECT_EQ(mallopt(M_TRIM_THRESHOLD, 1 << 20), 1);
  EXPECT_EQ(mi_option_get(mi_option_purge_delay), delay) << "trimming again, as before";
  for (int param :
       {M_MXFAST, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST, M_ARENA_MAX, 999}) {
    EXPECT_EQ(mallopt(param, 1), 0) << param;
  }
}

TEST(Glibc, MallocTrimGivesFreeMemoryBack) {
  std::vector<void*> v;
  for (int i = 0; i < 16; i++) {
    v.push_back(used(malloc(3 * MiB)));
    memset(v.back(), 1, 3 * MiB);
  }
  for (void* p : v) free(p);
  EXPECT_EQ(malloc_trim(0), 1);
  EXPECT_EQ(mallinfo2().keepcost, 0u);
  EXPECT_EQ(malloc_trim(0), 0) << "nothing left to give back";
}

std::string capture_stderr(void (*fn)()) {
  char path[] = "/tmp/mi-glibc-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string s(1 << 16, 0);
  ssize_t n = pread(fd, s.data(), s.size(), 0);
  close(fd);
  s.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return s;
}

TEST(Glibc, MallocStatsHasGlibcsShape) {
  const std::string s = capture_stderr([] { malloc_stats(); });
  EXPECT_EQ(s.rfind("Arena 0:\nsystem bytes     = ", 0), 0u) << s;
  EXPECT_NE(s.find("\nTotal (incl. mmap):\nsystem bytes     = "), std::string::npos) << s;
  EXPECT_NE(s.find("\nmax mmap regions = "), std::string::npos) << s;
  EXPECT_NE(s.find("\nmax mmap bytes   = "), std::string::npos) << s;
  EXPECT_EQ(s.find("system bytes     =          0\nin use bytes     =          0\nTotal"), std::string::npos)
      << "not glibc's empty arena:\n"
      << s;
}

TEST(Glibc, MallocInfoWritesOneDocument) {
  char* text = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&text, &len);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(malloc_info(0, f), 0);
  fclose(f);
  const std::string s(text, len);
  free(text);
  EXPECT_EQ(s.rfind("<malloc version=\"1\">\n<heap nr=\"0\" node=\"0\">\n<sizes>\n", 0), 0u) << s;
  EXPECT_EQ(s.substr(s.size() - 10), "</malloc>\n") << s;
  size_t heaps = 0, ends = 0;
  for (size_t at = 0; (at = s.find("<heap ", at)) != std::string::npos; at++) heaps++;
  for (size_t at = 0; (at = s.find("</heap>", at)) != std::string::npos; at++) ends++;
  EXPECT_GE(heaps, static_cast<size_t>(mi_numa_node_count()));
  EXPECT_EQ(heaps, ends);
  EXPECT_NE(s.find("<size from=\"1\" to=\"8\""), std::string::npos) << "the 8-byte class, at least gtest's: " << s;
  EXPECT_NE(s.find("<total type=\"mmap\" count="), std::string::npos);
  errno = 0;
  FILE* g = fopen("/dev/null", "w");
  EXPECT_EQ(malloc_info(1, g), -1);
  EXPECT_EQ(errno, EINVAL);
  fclose(g);
}

}  // namespace
