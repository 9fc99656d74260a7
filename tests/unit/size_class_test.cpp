// Unit tests of lib/heap/size_class.h: request size -> bin -> block size.
#include "heap/size_class.h"

#include <mimalloc-numa-stats.h>

#include <gtest/gtest.h>

#include <cstddef>

namespace {

using mi::bin_block_sizes;
using mi::bin_of_size;
using mi::bin_of_wsize;
using mi::bin_wsize;
using mi::good_block_size;
using mi::LARGE_OBJ_SIZE_MAX;
using mi::WORD_SIZE;

constexpr size_t KiB = 1024;

TEST(SizeClass, ExactWordSizesUpTo128Bytes) {
  for (size_t size = 1; size <= 128; size++) {
    const size_t w = (size + WORD_SIZE - 1) / WORD_SIZE;
    EXPECT_EQ(bin_of_size(size), w) << size;
    EXPECT_EQ(good_block_size(size), w * WORD_SIZE) << size;
  }
  for (size_t w = 1; w <= mi::BIN_EXACT_MAX; w++) {
    EXPECT_EQ(bin_wsize(w), w);
    EXPECT_EQ(bin_of_wsize(w), w);
    EXPECT_EQ(bin_block_sizes[w], w * WORD_SIZE);
  }
  EXPECT_EQ(bin_of_size(0), 1u) << "a zero-size request gets the smallest block";
  EXPECT_EQ(good_block_size(0), WORD_SIZE);
  EXPECT_EQ(bin_of_wsize(0), 1u);
}

TEST(SizeClass, BlockSizesStrictlyIncrease) {
  for (size_t b = 2; b <= mi::BIN_LARGE_MAX; b++) {
    EXPECT_LT(bin_block_sizes[b - 1], bin_block_sizes[b]) << b;
    EXPECT_EQ(bin_block_sizes[b], bin_wsize(b) * WORD_SIZE) << b;
    EXPECT_EQ(bin_block_sizes[b] % WORD_SIZE, 0u) << b;
  }
  EXPECT_EQ(bin_block_sizes[mi::BIN_LARGE_MAX], LARGE_OBJ_SIZE_MAX);
  EXPECT_GT(bin_block_sizes[mi::BIN_HUGE], LARGE_OBJ_SIZE_MAX);
  EXPECT_EQ(bin_block_sizes[0], WORD_SIZE);
}

TEST(SizeClass, EveryBlockSizeIsItsOwnBin) {
  for (size_t b = 1; b <= mi::BIN_LARGE_MAX; b++) {
    const size_t bs = bin_block_sizes[b];
    EXPECT_EQ(bin_of_size(bs), b) << "block size " << bs;
    EXPECT_EQ(bin_of_wsize(bin_wsize(b)), b);
    EXPECT_EQ(good_block_size(bs), bs);
    if (b > 1) {
      EXPECT_EQ(bin_of_size(bin_block_sizes[b - 1] + 1), b) << "one past the previous block size";
    }
  }
}

TEST(SizeClass, FourBinsPerDoublingEightFrom512BTo1KiB) {
  // above the exact sizes, each power-of-two range of words has 4 bins, but
  // 8 from 512 B (64 words) to 1 KiB (128 words)
  for (size_t w = 16; w < mi::LARGE_OBJ_WSIZE_MAX; w *= 2) {
    EXPECT_EQ(bin_of_wsize(2 * w) - bin_of_wsize(w), w == 64 ? 8u : 4u) << w;
  }
  EXPECT_EQ(good_block_size(129), 160u);
  EXPECT_EQ(good_block_size(513), 576u);
  EXPECT_EQ(good_block_size(600), 640u);
  EXPECT_EQ(good_block_size(1000), 1024u);
  EXPECT_EQ(good_block_size(1025), 1280u);
  EXPECT_EQ(mi::BIN_LARGE_MAX, 76u) << "bins 1-16 exact, 4 per doubling to 512 B, 8 to 1 KiB, 4 to 2 MiB";
  EXPECT_LE(mi::BIN_HUGE + 1, size_t{MI_STATS_AREA_BINS_MAX}) << "every bin fits the published statistics area";
}

// Checks one request size: fits, monotone, small waste, 16-byte multiples.
void check_size(size_t size, size_t* prev_bin, size_t* prev_block) {
  const size_t bin = bin_of_size(size);
  const size_t block = good_block_size(size);
  ASSERT_GE(bin, 1u) << size;
  ASSERT_LE(bin, mi::BIN_LARGE_MAX) << size;
  ASSERT_EQ(block, bin_block_sizes[bin]) << size;
  ASSERT_GE(block, size) << "size " << size << " does not fit its block";
  ASSERT_GE(bin, *prev_bin) << "bin of " << size << " went down";
  ASSERT_GE(block, *prev_block) << "block of " << size << " went down";
  if (size > 512 && size <= 1024) {
    // waste under 12.5% of the request (8 bins per doubling)
    ASSERT_LT((block - size) * 8, size) << "size " << size << " block " << block;
  } else if (size > 128) {
    // under 25% (4 per doubling; the exact word sizes below)
    ASSERT_LT((block - size) * 4, size) << "size " << size << " block " << block;
  }
  if (size % 16 == 0) {
    ASSERT_EQ(block % 16, 0u) << "size " << size << " block " << block;
  }
  // the bin's previous block size is too small (the bin is the smallest that fits)
  if (bin > 1) {
    ASSERT_LT(bin_block_sizes[bin - 1], size) << size;
  }
  *prev_bin = bin;
  *prev_block = block;
}

TEST(SizeClass, EverySizeUpTo64KiB) {
  size_t prev_bin = 0, prev_block = 0;
  for (size_t size = 1; size <= 64 * KiB; size++) {
    check_size(size, &prev_bin, &prev_block);
    if (HasFatalFailure()) return;
  }
}

// The medium sizes' table (heap_malloc_slow's queue-first path) agrees with
// bin_of_size at every size it serves.
TEST(SizeClass, MediumTableAgreesWithBinOfSizeAtEverySize) {
  for (size_t size = mi::SMALL_SIZE_MAX + 1; size <= mi::MEDIUM_OBJ_SIZE_MAX; size++) {
    ASSERT_EQ(mi::medium_bin_of_size(size), mi::bin_of_size(size)) << "size " << size;
  }
}

TEST(SizeClass, SampleUpToLargeObjSizeMax) {
  size_t prev_bin = 0, prev_block = 0;
  // every 7th size, plus every size around each block size
  for (size_t size = 64 * KiB; size <= LARGE_OBJ_SIZE_MAX; size += 7) {
    check_size(size, &prev_bin, &prev_block);
    if (HasFatalFailure()) return;
  }
  for (size_t b = 1; b <= mi::BIN_LARGE_MAX; b++) {
    const size_t bs = bin_block_sizes[b];
    for (size_t size = (bs > 8 ? bs - 8 : 1); size <= bs + 8 && size <= LARGE_OBJ_SIZE_MAX; size++) {
      size_t pb = 0, pbl = 0;
      check_size(size, &pb, &pbl);
      if (HasFatalFailure()) return;
    }
  }
  // the upper end
  size_t pb = 0, pbl = 0;
  check_size(LARGE_OBJ_SIZE_MAX, &pb, &pbl);
  EXPECT_EQ(bin_of_size(LARGE_OBJ_SIZE_MAX), mi::BIN_LARGE_MAX);
}

TEST(SizeClass, HugeSizes) {
  EXPECT_EQ(bin_of_size(LARGE_OBJ_SIZE_MAX + 1), mi::BIN_HUGE);
  EXPECT_EQ(bin_of_size(LARGE_OBJ_SIZE_MAX + WORD_SIZE), mi::BIN_HUGE);
  EXPECT_EQ(bin_of_size(size_t{1} << 40), mi::BIN_HUGE);
  EXPECT_EQ(bin_of_size(SIZE_MAX), mi::BIN_HUGE);
  EXPECT_EQ(bin_of_wsize(mi::LARGE_OBJ_WSIZE_MAX + 1), mi::BIN_HUGE);
  EXPECT_EQ(good_block_size(LARGE_OBJ_SIZE_MAX + 1), LARGE_OBJ_SIZE_MAX + 1) << "huge: the size itself";
  EXPECT_EQ(good_block_size(5 * 1024 * KiB), 5 * 1024 * KiB);
}

TEST(SizeClass, BinsFitThePageKinds) {
  // Every block size of the small bins fits at least 4 times in a small page,
  // and likewise for medium pages; a large block fits a segment's half.
  for (size_t b = 1; b <= mi::BIN_LARGE_MAX; b++) {
    const size_t bs = bin_block_sizes[b];
    if (bs <= mi::SMALL_OBJ_SIZE_MAX) {
      EXPECT_GE(mi::SMALL_PAGE_SIZE / bs, 4u) << bs;
    } else if (bs <= mi::MEDIUM_OBJ_SIZE_MAX) {
      EXPECT_GE(mi::MEDIUM_PAGE_SIZE / bs, 4u) << bs;
    } else {
      EXPECT_LE(bs, mi::SEGMENT_SIZE / 2) << bs;
    }
  }
  // the direct table covers sizes up to SMALL_SIZE_MAX, all in small bins
  EXPECT_LT(bin_of_size(mi::SMALL_SIZE_MAX), mi::BIN_LARGE_MAX);
  EXPECT_LE(good_block_size(mi::SMALL_SIZE_MAX), mi::SMALL_OBJ_SIZE_MAX);
}

// The size-class functions are constexpr (the direct table and the bins are
// computed at compile time): checked when this file compiles, not at run time.
static_assert(mi::bin_of_size(8) == 1);
static_assert(mi::good_block_size(100) == 104);
static_assert(mi::wsize_of(0) == 0 && mi::wsize_of(1) == 1 && mi::wsize_of(8) == 1 && mi::wsize_of(9) == 2);

}  // namespace
