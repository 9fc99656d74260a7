// size_class.h: request size -> size class ("bin") -> block size.
//
// Bins 1..16 are exact word sizes (8..128 bytes); above, 4 bins per doubling
// (a request is rounded up by under 25% of itself, 12% on average), but 8
// from 512 B to 1 KiB (bins 25..32: 576, 640, .. 1024; under 12.5%, 6% on
// average). Why 8 there: rows and records of a few hundred bytes to 1 KiB
// are the bulk of a database's small blocks (the numa-vm shape-db, rows of
// 48 B - 1 KiB, two thirds of their bytes above 512 B: blocks 67.4 MiB for
// 62.3 asked with 4, 65.5 with 8 from 512 B, 64.9 with 8 from
// 128 B). Why not more: 8 per doubling
// everywhere doubled the partly used pages a thread keeps, one per size
// class, and cost more than the rounding saved (dbsim peak RSS 118.5 MiB with
// 8, 105.1 with 4; mixed_bench 217.7 / 201.5 MiB); 8 from 128 B to 1 KiB
// made threadchurn (16 B - 512 B blocks of short-lived threads) 7.6 MiB
// against 7.1, 8 from 512 B leaves it at 7.0 (tools/bench/run_bench.py, 5
// rounds). 76 bins fit the published statistics area's 80
// (MI_STATS_AREA_BINS_MAX).
// Bin BIN_LARGE_MAX holds LARGE_OBJ_SIZE_MAX (2 MiB); larger requests are
// huge (BIN_HUGE, a segment each).
// Block sizes are multiples of 8; those that are multiples of 16 give 16-byte
// aligned blocks (and larger powers of two as per MAX_ALIGN_GUARANTEE).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "../common/types.h"

namespace mi {

constexpr size_t wsize_of(size_t size) { return (size + WORD_SIZE - 1) / WORD_SIZE; }

// The doublings ("octaves") of word sizes above the exact ones: octave b
// holds the sizes of (2^b, 2^(b+1)] words, b = 4 .. 17.
constexpr bool octave_is_fine(size_t b) { return b >= BIN_FINE_LO_SHIFT && b < BIN_FINE_HI_SHIFT; }
constexpr size_t octave_classes(size_t b) { return octave_is_fine(b) ? 8 : 4; }

struct Octave {
  uint8_t first_bin;   // the bin of its smallest class
  uint8_t step_shift;  // log2 of its class spacing in words: b - log2(classes)
};
constexpr std::array<Octave, 18> make_octaves() {
  std::array<Octave, 18> t{};
  size_t bin = BIN_EXACT_MAX + 1;
  for (size_t b = 4; b < 18; b++) {
    t[b] = Octave{static_cast<uint8_t>(bin), static_cast<uint8_t>(b - (octave_is_fine(b) ? 3 : 2))};
    bin += octave_classes(b);
  }
  return t;
}
inline constexpr std::array<Octave, 18> octaves = make_octaves();

// Bin of a size in words. pre: wsize <= LARGE_OBJ_WSIZE_MAX (else BIN_HUGE).
// (a table lookup, not a branch per spacing: the sizes above 1 KiB take this
// on every malloc's slow path)
constexpr size_t bin_of_wsize(size_t wsize) {
  if (wsize <= 1) return 1;
  if (wsize <= BIN_EXACT_MAX) return wsize;
  if (wsize > LARGE_OBJ_WSIZE_MAX) return BIN_HUGE;
  const size_t w = wsize - 1;
  const size_t b = 63 - static_cast<size_t>(__builtin_clzll(w));  // w in [2^b, 2^(b+1)), b >= 4
  const Octave o = octaves[b];
  return o.first_bin + ((w >> o.step_shift) & ((size_t{1} << (b - o.step_shift)) - 1));
}

constexpr size_t bin_of_size(size_t size) {
  return (size > LARGE_OBJ_SIZE_MAX) ? BIN_HUGE : bin_of_wsize(wsize_of(size));
}

// Block size (words) of a bin. pre: 1 <= bin <= BIN_LARGE_MAX
constexpr size_t bin_wsize(size_t bin) {
  if (bin <= BIN_EXACT_MAX) return bin;
  size_t b = 4;
  while (b < 17 && bin >= octaves[b + 1].first_bin) b++;
  return (size_t{1} << b) + (bin - octaves[b].first_bin + 1) * (size_t{1} << octaves[b].step_shift);
}

constexpr std::array<size_t, BIN_HUGE + 1> make_bin_sizes() {
  std::array<size_t, BIN_HUGE + 1> t{};
  for (size_t b = 1; b <= BIN_LARGE_MAX; b++) t[b] = bin_wsize(b) * WORD_SIZE;
  t[0] = WORD_SIZE;
  t[BIN_HUGE] = LARGE_OBJ_SIZE_MAX + 1;
  return t;
}
inline constexpr std::array<size_t, BIN_HUGE + 1> bin_block_sizes = make_bin_sizes();

static_assert(BIN_FINE_LO_SHIFT >= 4 && BIN_FINE_LO_SHIFT <= BIN_FINE_HI_SHIFT && BIN_FINE_HI_SHIFT <= 18,
              "the fine octaves are octaves");
static_assert(BIN_HUGE < 256, "a page's bin is a byte");
static_assert(bin_of_wsize(LARGE_OBJ_WSIZE_MAX) == BIN_LARGE_MAX, "bins cover the large objects");
static_assert(bin_wsize(BIN_LARGE_MAX) == LARGE_OBJ_WSIZE_MAX, "last bin is the largest large object");
static_assert(bin_of_wsize(SMALL_WSIZE_MAX) < BIN_LARGE_MAX, "direct sizes are in bins");

// The size class of each direct size (0 .. SMALL_SIZE_MAX bytes), which
// heap_init copies into the heap (Heap::direct_bin): malloc's fast path
// indexes it with the heap pointer it holds (one instruction; a table of the
// library's own would need its address first, in a shared object).
constexpr DirectBins make_direct_bins() {
  DirectBins t{};
  for (size_t s = 0; s < t.size(); s++) t[s] = static_cast<uint8_t>(bin_of_size(s));
  return t;
}
inline constexpr DirectBins direct_bins = make_direct_bins();
static_assert(bin_of_size(SMALL_SIZE_MAX) == BIN_DIRECT_MAX, "the direct pages cover the direct sizes' bins");

// The page malloc takes a block of `size` bytes from first (pre: size <=
// SMALL_SIZE_MAX): the first page of its class's queue, page_empty when the
// queue is empty or the heap is heap_empty. Two loads, on 22 lines at most
// (a table of pages per byte size, which this replaced: one load, on 129
// lines, 8 KiB a heap): larson_bench (16-1024 B at random, 100 epochs,
// cachegrind with a 32 KiB D1 and a 512 KiB L2 as its last level), the
// allocator's D1 read misses 3.89 M -> 2.90 M, its instructions +0.5%.
MI_ALWAYS_INLINE Page* heap_direct_page(const Heap* heap, size_t size) {
  return heap->direct_page[heap->direct_bin[size]];
}

// Bins of the medium sizes, (SMALL_SIZE_MAX, MEDIUM_OBJ_SIZE_MAX], by steps of
// 128 bytes: above 1 KiB a class spans 256 B or more, its bounds multiples of
// 256 B, so no step straddles two. heap_malloc_slow's queue-first path (1-128
// KiB: RocksDB's 4 KiB blocks) looks its bin up with one load instead of
// bin_of_size's ~20 instructions (pairs immediate-4096 184.1 -> 163.2,
// ring-4096 163.8 -> 142.8, random-4096 400.2 -> 379.2).
constexpr size_t MEDIUM_BIN_STEP_SHIFT = 7;
using MediumBins = std::array<uint8_t, (MEDIUM_OBJ_SIZE_MAX >> MEDIUM_BIN_STEP_SHIFT)>;
constexpr MediumBins make_medium_bins() {
  MediumBins t{};
  for (size_t i = (SMALL_SIZE_MAX >> MEDIUM_BIN_STEP_SHIFT); i < t.size(); i++) {
    t[i] = static_cast<uint8_t>(bin_of_size((i + 1) << MEDIUM_BIN_STEP_SHIFT));  // the step's largest size
  }
  return t;
}
inline constexpr MediumBins medium_bins = make_medium_bins();
constexpr bool medium_classes_end_on_steps() {
  for (size_t b = bin_of_size(SMALL_SIZE_MAX); b <= bin_of_size(MEDIUM_OBJ_SIZE_MAX); b++) {
    if (bin_block_sizes[b] % (size_t{1} << MEDIUM_BIN_STEP_SHIFT) != 0) return false;
  }
  return true;
}
static_assert(medium_classes_end_on_steps(), "a medium step would straddle two classes");

// pre: SMALL_SIZE_MAX < size <= MEDIUM_OBJ_SIZE_MAX (tests/unit/size_class_test: every size)
inline size_t medium_bin_of_size(size_t size) { return medium_bins[(size - 1) >> MEDIUM_BIN_STEP_SHIFT]; }

// The block size a request of `size` bytes gets (huge: the size itself).
constexpr size_t good_block_size(size_t size) {
  size_t bin = bin_of_size(size);
  return (bin == BIN_HUGE) ? size : bin_block_sizes[bin];
}

}  // namespace mi
