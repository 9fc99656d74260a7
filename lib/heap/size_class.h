// size_class.h: request size -> size class ("bin") -> block size.
//
// Bins 1..16 are exact word sizes (8..128 bytes); above, 8 bins per doubling
// up to 1 KiB (bins 17..40: 144, 160, .. 256, 288, .. 512, 576, .. 1024), so
// a request is rounded up by less than 1/8 of itself there (4% on average),
// and 4 bins per doubling above 1 KiB (under 25% waste, 12% on average).
// Why the two spacings: rows and records of 48 B - 1 KiB are the bulk of a
// database's small blocks, and 4 bins per doubling cost them 8% more memory
// than they asked (the numa-vm shape-db, rows of 48 B - 1 KiB: 74.3 MiB peak
// against glibc's 68.0); 8 per doubling everywhere doubled the partly used
// pages a thread keeps, one per size class, which above 1 KiB are few blocks
// each and cost more than the rounding saved (dbsim peak RSS 118.5 MiB with
// 8, 105.1 with 4; mixed_bench 217.7 / 201.5 MiB). Below 1 KiB a small page
// holds 64 blocks or more, so the extra classes' partly used pages are cheap.
// Bin BIN_LARGE_MAX holds LARGE_OBJ_SIZE_MAX (2 MiB); larger requests are
// huge (BIN_HUGE, a segment each).
// Block sizes are multiples of 8; those that are multiples of 16 give 16-byte
// aligned blocks (and larger powers of two as per MAX_ALIGN_GUARANTEE).
#pragma once

#include <array>
#include <cstddef>

#include "../common/types.h"

namespace mi {

constexpr size_t wsize_of(size_t size) { return (size + WORD_SIZE - 1) / WORD_SIZE; }

// Bin of a size in words. pre: wsize <= LARGE_OBJ_WSIZE_MAX (else BIN_HUGE).
constexpr size_t bin_of_wsize(size_t wsize) {
  if (wsize <= 1) return 1;
  if (wsize <= BIN_EXACT_MAX) return wsize;
  if (wsize > LARGE_OBJ_WSIZE_MAX) return BIN_HUGE;
  size_t w = wsize - 1;
  size_t b = 63 - static_cast<size_t>(__builtin_clzll(w));  // w in [2^b, 2^(b+1)), b >= 4
  if (wsize <= BIN_FINE_WSIZE_MAX) return BIN_EXACT_MAX + 1 + (b - 4) * 8 + ((w >> (b - 3)) & 7);
  return BIN_FINE_MAX + 1 + (b - 7) * 4 + ((w >> (b - 2)) & 3);
}

constexpr size_t bin_of_size(size_t size) {
  return (size > LARGE_OBJ_SIZE_MAX) ? BIN_HUGE : bin_of_wsize(wsize_of(size));
}

// Block size (words) of a bin. pre: 1 <= bin <= BIN_LARGE_MAX
constexpr size_t bin_wsize(size_t bin) {
  if (bin <= BIN_EXACT_MAX) return bin;
  if (bin <= BIN_FINE_MAX) {
    size_t k = bin - (BIN_EXACT_MAX + 1);
    size_t b = 4 + k / 8;
    return (size_t{1} << b) + (k % 8 + 1) * (size_t{1} << (b - 3));
  }
  size_t k = bin - (BIN_FINE_MAX + 1);
  size_t b = 7 + k / 4;
  return (size_t{1} << b) + (k % 4 + 1) * (size_t{1} << (b - 2));
}

constexpr std::array<size_t, BIN_HUGE + 1> make_bin_sizes() {
  std::array<size_t, BIN_HUGE + 1> t{};
  for (size_t b = 1; b <= BIN_LARGE_MAX; b++) t[b] = bin_wsize(b) * WORD_SIZE;
  t[0] = WORD_SIZE;
  t[BIN_HUGE] = LARGE_OBJ_SIZE_MAX + 1;
  return t;
}
inline constexpr std::array<size_t, BIN_HUGE + 1> bin_block_sizes = make_bin_sizes();

static_assert(bin_of_wsize(BIN_FINE_WSIZE_MAX) == BIN_FINE_MAX && bin_wsize(BIN_FINE_MAX) == BIN_FINE_WSIZE_MAX,
              "the last fine bin ends the fine spacing");
static_assert((BIN_FINE_WSIZE_MAX & (BIN_FINE_WSIZE_MAX - 1)) == 0, "the fine spacing ends at a doubling");
static_assert(bin_of_wsize(LARGE_OBJ_WSIZE_MAX) == BIN_LARGE_MAX, "bins cover the large objects");
static_assert(bin_wsize(BIN_LARGE_MAX) == LARGE_OBJ_WSIZE_MAX, "last bin is the largest large object");
static_assert(bin_of_wsize(SMALL_WSIZE_MAX) < BIN_LARGE_MAX, "direct sizes are in bins");

// The block size a request of `size` bytes gets (huge: the size itself).
constexpr size_t good_block_size(size_t size) {
  size_t bin = bin_of_size(size);
  return (bin == BIN_HUGE) ? size : bin_block_sizes[bin];
}

}  // namespace mi
