// Unit tests of lib/arena/bitmap: claiming and releasing runs of bits, runs
// across 64-bit fields and longer than a field, full bitmaps, a randomised
// comparison with a plain model, and claims racing from many threads.
#include "arena/bitmap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {

using mi::BITMAP_FIELD_BITS;
using mi::BitmapField;

// A bitmap of N fields, zeroed.
template <size_t N>
struct Bitmap {
  BitmapField f[N];
  Bitmap() {
    for (auto& x : f) x.store(0);
  }
  static constexpr size_t fields = N;
  static constexpr size_t bits = N * BITMAP_FIELD_BITS;
  bool bit(size_t i) const { return (f[i / 64].load() >> (i % 64)) & 1; }
  uint64_t field(size_t i) const { return f[i].load(); }
  size_t count() const { return mi::bitmap_count_set(f, N); }
  bool try_claim(size_t idx, size_t n) { return mi::bitmap_try_claim(f, N, idx, n); }
  bool find(size_t start, size_t n, size_t* idx) { return mi::bitmap_try_find_claim(f, N, start, n, idx); }
  bool claim(size_t idx, size_t n, bool* any = nullptr) { return mi::bitmap_claim(f, N, idx, n, any); }
  bool unclaim(size_t idx, size_t n) { return mi::bitmap_unclaim(f, N, idx, n); }
  bool all(size_t idx, size_t n) const { return mi::bitmap_is_all_set(f, N, idx, n); }
  bool any(size_t idx, size_t n) const { return mi::bitmap_is_any_set(f, N, idx, n); }
};

TEST(BitmapMask, Masks) {
  EXPECT_EQ(mi::bitmap_mask(0, 1), 1u);
  EXPECT_EQ(mi::bitmap_mask(3, 2), 0x18u);
  EXPECT_EQ(mi::bitmap_mask(0, 64), ~uint64_t{0});
  EXPECT_EQ(mi::bitmap_mask(63, 1), uint64_t{1} << 63);
  EXPECT_EQ(mi::bitmap_mask(60, 4), uint64_t{0xf} << 60);
  EXPECT_EQ(mi::bitmap_mask(0, 0), 0u);
}

TEST(Bitmap, FindClaimInOrder) {
  Bitmap<2> bm;
  for (size_t i = 0; i < 128; i++) {
    size_t idx = 999;
    ASSERT_TRUE(bm.find(0, 1, &idx));
    EXPECT_EQ(idx, i);
  }
  EXPECT_EQ(bm.count(), 128u);
  size_t idx = 999;
  EXPECT_FALSE(bm.find(0, 1, &idx)) << "a full bitmap gave bit " << idx;
  EXPECT_EQ(idx, 999u);
}

TEST(Bitmap, RunStraddlingTwoFields) {
  Bitmap<2> bm;
  ASSERT_TRUE(bm.try_claim(60, 10));
  EXPECT_EQ(bm.field(0), uint64_t{0xf} << 60);
  EXPECT_EQ(bm.field(1), uint64_t{0x3f});
  EXPECT_EQ(bm.count(), 10u);
  EXPECT_TRUE(bm.all(60, 10));
  EXPECT_TRUE(bm.all(63, 2));
  EXPECT_FALSE(bm.all(59, 2));
  EXPECT_FALSE(bm.all(69, 2));
  EXPECT_TRUE(bm.any(0, 61));
  EXPECT_FALSE(bm.any(0, 60));
  EXPECT_FALSE(bm.any(70, 58));
  EXPECT_TRUE(bm.any(69, 59));
  // overlapping claims fail and change nothing
  EXPECT_FALSE(bm.try_claim(50, 11));
  EXPECT_FALSE(bm.try_claim(69, 10));
  EXPECT_FALSE(bm.try_claim(64, 1));
  EXPECT_EQ(bm.count(), 10u);
  EXPECT_EQ(bm.field(0), uint64_t{0xf} << 60);
  EXPECT_EQ(bm.field(1), uint64_t{0x3f});
  // the neighbours are free
  EXPECT_TRUE(bm.try_claim(50, 10));
  EXPECT_TRUE(bm.try_claim(70, 58));
  EXPECT_EQ(bm.count(), 78u);
  EXPECT_TRUE(bm.unclaim(60, 10));
  EXPECT_EQ(bm.count(), 68u);
  EXPECT_FALSE(bm.any(60, 10));
}

TEST(Bitmap, RunsLongerThanAField) {
  Bitmap<4> bm;
  ASSERT_TRUE(bm.try_claim(10, 200));  // fields 0..3
  EXPECT_EQ(bm.field(0), ~uint64_t{0} << 10);
  EXPECT_EQ(bm.field(1), ~uint64_t{0});
  EXPECT_EQ(bm.field(2), ~uint64_t{0});
  EXPECT_EQ(bm.field(3), (uint64_t{1} << 18) - 1);
  EXPECT_EQ(bm.count(), 200u);
  EXPECT_TRUE(bm.all(10, 200));
  EXPECT_FALSE(bm.all(9, 200));
  EXPECT_FALSE(bm.all(10, 201));
  size_t idx = 0;
  EXPECT_FALSE(bm.find(0, 47, &idx)) << idx;  // 10 free at the front, 46 at the back
  ASSERT_TRUE(bm.find(0, 46, &idx));
  EXPECT_EQ(idx, 210u);
  ASSERT_TRUE(bm.find(0, 10, &idx));
  EXPECT_EQ(idx, 0u);
  EXPECT_EQ(bm.count(), 256u);
  EXPECT_TRUE(bm.unclaim(0, 256));
  EXPECT_EQ(bm.count(), 0u);
  // a whole-bitmap run, and exact multiples of 64
  ASSERT_TRUE(bm.find(0, 256, &idx));
  EXPECT_EQ(idx, 0u);
  EXPECT_TRUE(bm.unclaim(0, 256));
  ASSERT_TRUE(bm.try_claim(64, 128));
  EXPECT_EQ(bm.field(0), 0u);
  EXPECT_EQ(bm.field(3), 0u);
  ASSERT_TRUE(bm.find(0, 64, &idx));
  EXPECT_EQ(idx, 0u);
  ASSERT_TRUE(bm.find(0, 64, &idx));
  EXPECT_EQ(idx, 192u);
  EXPECT_FALSE(bm.find(0, 1, &idx));
}

TEST(Bitmap, FindClaimRunAcrossFields) {
  Bitmap<3> bm;
  // free: [50, 140) only
  ASSERT_TRUE(bm.try_claim(0, 50));
  ASSERT_TRUE(bm.try_claim(140, 52));
  size_t idx = 0;
  EXPECT_FALSE(bm.find(0, 91, &idx));
  ASSERT_TRUE(bm.find(0, 70, &idx));
  EXPECT_EQ(idx, 50u);
  EXPECT_TRUE(bm.all(50, 70));
  ASSERT_TRUE(bm.find(0, 20, &idx));
  EXPECT_EQ(idx, 120u);
  EXPECT_EQ(bm.count(), 192u);
}

TEST(Bitmap, FindClaimStartAndWrapAround) {
  Bitmap<2> bm;
  size_t idx = 0;
  ASSERT_TRUE(bm.find(100, 5, &idx));
  EXPECT_EQ(idx, 100u) << "the search starts at `start`";
  ASSERT_TRUE(bm.find(100, 23, &idx));
  EXPECT_EQ(idx, 105u);
  // [100, 128) is now full: a search from 100 wraps to the front
  ASSERT_TRUE(bm.find(100, 30, &idx));
  EXPECT_EQ(idx, 0u);
  // a run may not wrap past the end: from 127, the free [30, 100) is found
  ASSERT_TRUE(bm.find(127, 70, &idx));
  EXPECT_EQ(idx, 30u);
  EXPECT_FALSE(bm.find(64, 1, &idx)) << idx;
  // start beyond the bitmap is treated as 0
  EXPECT_TRUE(bm.unclaim(0, 3));
  ASSERT_TRUE(bm.find(5000, 3, &idx));
  EXPECT_EQ(idx, 0u);
}

TEST(Bitmap, FindClaimFindsRunsBeforeStartThatOverlapIt) {
  Bitmap<2> bm;
  ASSERT_TRUE(bm.try_claim(0, 128));
  ASSERT_TRUE(bm.unclaim(60, 10));  // free: [60, 70)
  size_t idx = 0;
  ASSERT_TRUE(bm.find(65, 10, &idx));
  EXPECT_EQ(idx, 60u);
}

TEST(Bitmap, DegenerateCounts) {
  Bitmap<1> bm;
  size_t idx = 77;
  EXPECT_FALSE(bm.find(0, 0, &idx));
  EXPECT_FALSE(bm.find(0, 65, &idx));
  EXPECT_EQ(idx, 77u);
  EXPECT_EQ(bm.count(), 0u);
  ASSERT_TRUE(bm.find(0, 64, &idx));
  EXPECT_EQ(idx, 0u);
  EXPECT_EQ(bm.field(0), ~uint64_t{0});
}

TEST(Bitmap, FullBitmap) {
  Bitmap<3> bm;
  ASSERT_TRUE(bm.claim(0, 192));
  size_t idx = 0;
  for (size_t n : {1u, 2u, 63u, 64u, 65u, 130u, 192u}) {
    for (size_t start : {0u, 1u, 63u, 64u, 100u, 191u}) {
      EXPECT_FALSE(bm.find(start, n, &idx)) << n << " from " << start;
    }
  }
  EXPECT_FALSE(bm.try_claim(0, 1));
  EXPECT_FALSE(bm.try_claim(191, 1));
  EXPECT_TRUE(bm.all(0, 192));
  EXPECT_EQ(bm.count(), 192u);
}

TEST(Bitmap, TryClaimRollsBackOnConflict) {
  Bitmap<3> bm;
  ASSERT_TRUE(bm.try_claim(150, 1));    // in field 2
  EXPECT_FALSE(bm.try_claim(10, 150));  // fields 0 and 1 would be claimed first
  EXPECT_EQ(bm.field(0), 0u) << "not rolled back";
  EXPECT_EQ(bm.field(1), 0u) << "not rolled back";
  EXPECT_EQ(bm.field(2), uint64_t{1} << 22) << "someone else's bit was cleared";
  EXPECT_EQ(bm.count(), 1u);
  // a conflict in the first field: nothing to roll back
  ASSERT_TRUE(bm.try_claim(5, 1));
  EXPECT_FALSE(bm.try_claim(0, 100));
  EXPECT_EQ(bm.count(), 2u);
  // a pre-set bit in the middle field
  Bitmap<3> b2;
  ASSERT_TRUE(b2.try_claim(100, 1));
  EXPECT_FALSE(b2.try_claim(60, 100));
  EXPECT_EQ(b2.field(0), 0u);
  EXPECT_EQ(b2.field(1), uint64_t{1} << 36);
  EXPECT_EQ(b2.field(2), 0u);
}

TEST(Bitmap, ClaimAndUnclaimReportPreviousState) {
  Bitmap<2> bm;
  bool any = true;
  EXPECT_TRUE(bm.claim(60, 8, &any));  // all zero before
  EXPECT_FALSE(any);
  EXPECT_FALSE(bm.claim(62, 8, &any));  // partly set
  EXPECT_TRUE(any);
  EXPECT_TRUE(bm.all(60, 10));
  EXPECT_FALSE(bm.claim(60, 10, &any));  // all set before
  EXPECT_TRUE(any);
  EXPECT_TRUE(bm.claim(0, 5, nullptr));
  EXPECT_TRUE(bm.unclaim(60, 10));   // all were set
  EXPECT_FALSE(bm.unclaim(60, 10));  // none were
  EXPECT_FALSE(bm.unclaim(3, 4));    // some were
  EXPECT_EQ(bm.count(), 3u);         // 0, 1, 2
}

TEST(Bitmap, CountSet) {
  Bitmap<4> bm;
  EXPECT_EQ(bm.count(), 0u);
  bm.claim(0, 1);
  bm.claim(63, 2);
  bm.claim(128, 64);
  bm.claim(255, 1);
  EXPECT_EQ(bm.count(), 68u);
  EXPECT_EQ(mi::bitmap_count_set(bm.f, 1), 2u) << "only the fields asked for";
}

// --- randomised comparison with a plain model ---------------------------------

template <size_t N>
void random_against_model(uint32_t seed) {
  Bitmap<N> bm;
  std::vector<bool> model(Bitmap<N>::bits, false);
  std::mt19937 rng(seed);
  struct Run {
    size_t idx, n;
  };
  std::vector<Run> held;
  auto model_free_run_at = [&](size_t i, size_t n) {
    if (i + n > model.size()) return false;
    for (size_t k = i; k < i + n; k++) {
      if (model[k]) return false;
    }
    return true;
  };
  for (int step = 0; step < 4000; step++) {
    const size_t total = Bitmap<N>::bits;
    if (held.empty() || rng() % 3 != 0) {
      size_t n = 1 + rng() % 70;
      if (n > total) n = total;
      size_t start = rng() % total;
      // the first fit at or after start, else the first fit before it
      long expect = -1;
      for (size_t i = start; i + n <= total && expect < 0; i++) {
        if (model_free_run_at(i, n)) expect = static_cast<long>(i);
      }
      for (size_t i = 0; i < start && expect < 0; i++) {
        if (model_free_run_at(i, n)) expect = static_cast<long>(i);
      }
      size_t idx = 0;
      bool ok = bm.find(start, n, &idx);
      ASSERT_EQ(ok, expect >= 0) << "step " << step << " n " << n << " start " << start;
      if (ok) {
        ASSERT_EQ(static_cast<long>(idx), expect) << "step " << step << " n " << n << " start " << start;
        for (size_t k = idx; k < idx + n; k++) model[k] = true;
        held.push_back({idx, n});
      }
    } else {
      size_t which = rng() % held.size();
      Run r = held[which];
      held.erase(held.begin() + static_cast<long>(which));
      ASSERT_TRUE(bm.unclaim(r.idx, r.n));
      for (size_t k = r.idx; k < r.idx + r.n; k++) model[k] = false;
    }
    size_t set = 0;
    for (size_t k = 0; k < model.size(); k++) {
      ASSERT_EQ(bm.bit(k), model[k]) << "bit " << k << " at step " << step;
      set += model[k];
    }
    ASSERT_EQ(bm.count(), set);
  }
}

TEST(Bitmap, RandomAgainstModel1Field) { random_against_model<1>(1); }
TEST(Bitmap, RandomAgainstModel2Fields) { random_against_model<2>(2); }
TEST(Bitmap, RandomAgainstModel3Fields) { random_against_model<3>(3); }
TEST(Bitmap, RandomAgainstModel5Fields) { random_against_model<5>(5); }

// --- contention ------------------------------------------------------------

// N threads race to claim runs of 1..70 bits from one bitmap, hold them
// briefly and release them. A shadow array of atomics (one per bit) catches
// a bit handed to two claimers at once; at the end the bitmap is empty.
template <size_t N>
void contention(size_t threads, size_t iterations, bool random_start) {
  Bitmap<N> bm;
  std::atomic<uint32_t> shadow[Bitmap<N>::bits];
  for (auto& s : shadow) s.store(0);
  std::atomic<size_t> conflicts{0}, claims{0}, failures{0}, bad_unclaims{0};
  std::atomic<size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(1234 + t));
      ready++;
      while (!go.load()) {
      }
      for (size_t it = 0; it < iterations; it++) {
        size_t n = 1 + rng() % 70;
        size_t start = random_start ? rng() % Bitmap<N>::bits : 0;
        size_t idx;
        if (!bm.find(start, n, &idx)) {
          failures++;
          continue;
        }
        claims++;
        for (size_t k = idx; k < idx + n; k++) {
          if (shadow[k].fetch_add(1) != 0) conflicts++;
        }
        // hold it a little while others race
        for (int spin = static_cast<int>(rng() % 64); spin > 0; spin--) asm volatile("" ::: "memory");
        if (rng() % 8 == 0) std::this_thread::yield();
        for (size_t k = idx; k < idx + n; k++) {
          if (shadow[k].fetch_sub(1) != 1) conflicts++;
        }
        if (!bm.unclaim(idx, n)) bad_unclaims++;
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  go.store(true);
  for (auto& th : ts) th.join();
  EXPECT_EQ(conflicts.load(), 0u) << "a bit was held by two claimers at once";
  EXPECT_EQ(bad_unclaims.load(), 0u) << "a claimed run was not all set when released";
  EXPECT_EQ(bm.count(), 0u) << "bits left set";
  EXPECT_GT(claims.load(), iterations) << "claims " << claims.load() << ", failures " << failures.load();
}

TEST(BitmapContention, EightThreadsFourFieldsRandomStart) { contention<4>(8, 20000, true); }
TEST(BitmapContention, EightThreadsThreeFieldsFromZero) { contention<3>(8, 20000, false); }
TEST(BitmapContention, FourThreadsTwoFields) { contention<2>(4, 20000, true); }

// Claims of fixed runs that straddle fields, raced by try_claim: a failed
// claim must roll back only its own bits.
TEST(BitmapContention, TryClaimStraddlingRuns) {
  Bitmap<3> bm;
  std::atomic<uint32_t> shadow[192];
  for (auto& s : shadow) s.store(0);
  struct Run {
    size_t idx, n;
  };
  const Run runs[] = {{60, 10}, {65, 70}, {0, 64}, {63, 2}, {120, 72}, {100, 40}, {127, 2}, {30, 100}};
  std::atomic<size_t> conflicts{0}, claims{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (size_t t = 0; t < 8; t++) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(77 + t));
      while (!go.load()) {
      }
      for (int it = 0; it < 20000; it++) {
        const Run& r = runs[rng() % (sizeof(runs) / sizeof(runs[0]))];
        if (!bm.try_claim(r.idx, r.n)) continue;
        claims++;
        for (size_t k = r.idx; k < r.idx + r.n; k++) {
          if (shadow[k].fetch_add(1) != 0) conflicts++;
        }
        for (int spin = 0; spin < 16; spin++) asm volatile("" ::: "memory");
        for (size_t k = r.idx; k < r.idx + r.n; k++) shadow[k].fetch_sub(1);
        if (!bm.unclaim(r.idx, r.n)) conflicts++;
      }
    });
  }
  go.store(true);
  for (auto& th : ts) th.join();
  EXPECT_EQ(conflicts.load(), 0u);
  EXPECT_EQ(bm.count(), 0u);
  EXPECT_GT(claims.load(), 0u);
}

}  // namespace
