// size_class.h: request size -> size class ("bin") -> block size.
//
// Bins 1..16 are exact word sizes (8..128 bytes); above, 4 bins per doubling,
// so a request is rounded up by less than 1/4 of itself (under 25% waste,
// 12% on average, above 128 bytes). 8 per doubling halved the rounding but
// doubled the partly used pages a thread keeps, one per size class: with
// several threads and varied sizes that cost more than it saved (dbsim peak
// RSS 118.5 MiB with 8, 105.1 with 4; mixed_bench 217.7 / 201.5 MiB). Bin BIN_LARGE_MAX holds LARGE_OBJ_SIZE_MAX (2 MiB); larger
// requests are huge (BIN_HUGE, a segment each).
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
  return BIN_EXACT_MAX + 1 + (b - 4) * 4 + ((w >> (b - 2)) & 3);
}

constexpr size_t bin_of_size(size_t size) {
  return (size > LARGE_OBJ_SIZE_MAX) ? BIN_HUGE : bin_of_wsize(wsize_of(size));
}

// Block size (words) of a bin. pre: 1 <= bin <= BIN_LARGE_MAX
constexpr size_t bin_wsize(size_t bin) {
  if (bin <= BIN_EXACT_MAX) return bin;
  size_t k = bin - (BIN_EXACT_MAX + 1);
  size_t b = 4 + k / 4;
  size_t i = k % 4;
  return (size_t{1} << b) + (i + 1) * (size_t{1} << (b - 2));
}

constexpr std::array<size_t, BIN_HUGE + 1> make_bin_sizes() {
  std::array<size_t, BIN_HUGE + 1> t{};
  for (size_t b = 1; b <= BIN_LARGE_MAX; b++) t[b] = bin_wsize(b) * WORD_SIZE;
  t[0] = WORD_SIZE;
  t[BIN_HUGE] = LARGE_OBJ_SIZE_MAX + 1;
  return t;
}
inline constexpr std::array<size_t, BIN_HUGE + 1> bin_block_sizes = make_bin_sizes();

static_assert(bin_of_wsize(LARGE_OBJ_WSIZE_MAX) == BIN_LARGE_MAX, "bins cover the large objects");
static_assert(bin_wsize(BIN_LARGE_MAX) == LARGE_OBJ_WSIZE_MAX, "last bin is the largest large object");
static_assert(bin_of_wsize(SMALL_WSIZE_MAX) < BIN_LARGE_MAX, "direct sizes are in bins");

// The block size a request of `size` bytes gets (huge: the size itself).
constexpr size_t good_block_size(size_t size) {
  size_t bin = bin_of_size(size);
  return (bin == BIN_HUGE) ? size : bin_block_sizes[bin];
}

}  // namespace mi
