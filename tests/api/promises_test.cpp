// What mimalloc-numa promises beyond mimalloc itself (Debian's mimalloc 2.0.9
// fails these, so this file only runs against mimalloc-numa):
//  - internal waste of the size classes stays under 25% above 128 bytes (4 classes per doubling, 8 from 512 B to 1 KiB);
//  - calloc with an overflowing count * size sets errno to ENOMEM (POSIX);
//  - mi_process_info reports plausible values (current RSS > 0 and at most
//    the peak RSS);
//  - a zeroing re-allocation to a huge size does not touch the fresh memory
//    it zeroes (mimalloc memsets it: a rezalloc to 5 GiB made 5 GiB resident).
#include <mimalloc.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "opaque.h"

namespace {

using calloc_fn = void* (*)(size_t, size_t);

}  // namespace

// (violations are summarised: one failure listing the first few sizes)
TEST(Promises, SizeClassWasteUnderAQuarterAbove128Bytes) {
  size_t violations = 0;
  std::string examples;
  size_t n = 129;
  while (n <= (size_t{1} << 20)) {
    void* p = mi_malloc(n);
    ASSERT_NE(p, nullptr) << n;
    const size_t u = mi_usable_size(p);
    mi_free(p);
    ASSERT_GE(u, n);
    if (u - n >= n / 4 + 1) {
      if (violations++ < 10) examples += " mi_malloc(" + std::to_string(n) + ")->" + std::to_string(u);
    }
    n += (n < 8192 ? 1 : (n < 65536 ? 7 : 61));
  }
  EXPECT_EQ(violations, 0u) << "sizes whose usable size wastes 25% or more, e.g." << examples;
}

TEST(Promises, GoodSizeWasteUnderAQuarterAbove128Bytes) {
  size_t violations = 0;
  std::string examples;
  for (size_t n = 129; n <= (size_t{1} << 20); n += (n < 8192 ? 1 : 13)) {
    const size_t g = mi_good_size(n);
    ASSERT_GE(g, n);
    if (g - n >= n / 4 + 1) {
      if (violations++ < 10) examples += " mi_good_size(" + std::to_string(n) + ")=" + std::to_string(g);
    }
  }
  EXPECT_EQ(violations, 0u) << "sizes whose good size wastes 25% or more, e.g." << examples;
}

TEST(Promises, CallocOverflowSetsErrnoEnomem) {
  errno = 0;
  EXPECT_EQ(mi_calloc(opaque(SIZE_MAX / 2), 4), nullptr);
  EXPECT_EQ(errno, ENOMEM) << "mi_calloc overflow";
  errno = 0;
  EXPECT_EQ(mi_calloc(4, opaque(SIZE_MAX / 2)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // the standard calloc (which the shared library overrides) does the same
  calloc_fn c = opaque<calloc_fn>(&std::calloc);
  errno = 0;
  EXPECT_EQ(c(opaque(SIZE_MAX / 2), 4), nullptr);
  EXPECT_EQ(errno, ENOMEM) << "calloc overflow";
}

TEST(Promises, ProcessInfoIsPlausible) {
  const size_t kBlock = size_t{64} << 20;
  char* big = static_cast<char*>(mi_malloc(kBlock));
  ASSERT_NE(big, nullptr);
  std::memset(big, 1, kBlock);  // make it resident

  size_t elapsed = 0, user = 0, sys = 0, rss = 0, peak_rss = 0, commit = 0, peak_commit = 0, faults = 0;
  mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
  EXPECT_GT(rss, 0u);
  EXPECT_GE(rss, kBlock / 2) << "64 MiB were just touched";
  EXPECT_LT(rss, size_t{1} << 40) << "current RSS is implausibly large: " << rss;
  EXPECT_GE(peak_rss, rss) << "peak RSS below current RSS";
  EXPECT_GE(peak_commit, commit);
  EXPECT_LT(commit, size_t{1} << 44) << "current commit is implausibly large: " << commit;

  size_t elapsed2 = 0;
  mi_process_info(&elapsed2, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  EXPECT_GE(elapsed2, elapsed) << "elapsed time goes forward";
  mi_free(big);
}

namespace {
size_t resident_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f == nullptr) return 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return static_cast<size_t>(resident) * 4096;  // (pages of the base size)
}
}  // namespace

TEST(Promises, ZeroingReallocDoesNotTouchFreshMemory) {
  constexpr size_t kHuge = size_t{1} << 30;  // beyond the arenas: fresh from the OS, zero already
  using Grow = void* (*)(void*);
  const Grow forms[] = {
      [](void* p) { return mi_rezalloc(p, kHuge); },
      [](void* p) { return mi_recalloc(p, kHuge / 16, 16); },
      [](void* p) { return mi_rezalloc_aligned(p, kHuge, 4096); },
      [](void* p) { return mi_recalloc_aligned_at(p, kHuge / 8, 8, 64, 16); },
  };
  for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
    unsigned char* p = static_cast<unsigned char*>(mi_zalloc(100));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5A, 100);
    const size_t before = resident_bytes();
    unsigned char* q = static_cast<unsigned char*>(forms[i](p));
    ASSERT_NE(q, nullptr) << "form " << i;
    const size_t after = resident_bytes();
    EXPECT_LT(after, before + (size_t{64} << 20))
        << "form " << i << ": " << (after - before) / (1 << 20) << " MiB made resident by growing to 1 GiB";
    EXPECT_EQ(q[0], 0x5A);
    EXPECT_EQ(q[99], 0x5A);
    EXPECT_EQ(q[100], 0);
    EXPECT_EQ(q[kHuge / 2], 0);
    EXPECT_EQ(q[kHuge - 1], 0);
    mi_free(q);
  }
}
