// segmap.cpp: see segmap.h.
#include "segmap.h"

namespace mi {

// constinit: no dynamic initialiser may zero the map after a segment was
// registered. Clang cannot check it (it evaluates 32 M constructors and hits
// its constexpr step limit), but when optimising it puts the array in .bss
// like gcc; only the API fuzzer builds the allocator with clang (tests/fuzz).
#if !defined(__clang__)
constinit
#elif !defined(__OPTIMIZE__)
#error "clang without optimisation would zero the segment map in a dynamic initialiser"
#endif
    std::atomic<uint8_t>
        segmap[SEGMAP_ENTRIES]{};

void segmap_register(const Segment* segment) noexcept {
  uintptr_t first = reinterpret_cast<uintptr_t>(segment) >> SEGMENT_SHIFT;
  size_t units = divide_up(segment->segment_size, SEGMENT_SIZE);
  MI_ASSERT(segment->page_shift >= SEGMAP_FIRST_MIN && segment->page_shift < 256);
  if (first < SEGMAP_ENTRIES) segmap[first].store(static_cast<uint8_t>(segment->page_shift), std::memory_order_relaxed);
  for (size_t i = 1; i < units && first + i < SEGMAP_ENTRIES; i++) {
    size_t log = bit_scan_reverse(i) + 1;  // i in [2^(log-1), 2^log)
    segmap[first + i].store(static_cast<uint8_t>(log < 15 ? log : 15), std::memory_order_relaxed);
  }
}

// Clears the units [from, to) of the segment starting at `segment`.
static void segmap_clear_units(const Segment* segment, size_t from, size_t to) noexcept {
  uintptr_t first = reinterpret_cast<uintptr_t>(segment) >> SEGMENT_SHIFT;
  for (size_t i = from; i < to && first + i < SEGMAP_ENTRIES; i++)
    segmap[first + i].store(0, std::memory_order_relaxed);
}

void segmap_unregister(const Segment* segment) noexcept {
  segmap_clear_units(segment, 0, divide_up(segment->segment_size, SEGMENT_SIZE));
}

void segmap_unregister_tail(const Segment* segment, size_t old_size) noexcept {
  segmap_clear_units(segment, divide_up(segment->segment_size, SEGMENT_SIZE), divide_up(old_size, SEGMENT_SIZE));
}

// Steps back over the largest segment the map holds: a unit at distance d
// steps back 2^(min(log2 d, 14)) units at a time, so the farthest unit of
// the map (huge blocks aligned to terabytes lie that far into their segment)
// needs SEGMAP_ENTRIES / 2^14 steps, and at most 14 more. Only a broken map
// could need more: the bound keeps a corrupted one from looping.
constexpr size_t SEGMAP_WALK_STEPS_MAX = (SEGMAP_ENTRIES >> 14) + 15;

Segment* segmap_segment_of(const void* p) noexcept {
  uintptr_t idx = reinterpret_cast<uintptr_t>(p) >> SEGMENT_SHIFT;
  if (idx >= SEGMAP_ENTRIES) return nullptr;
  uint8_t v = segmap[idx].load(std::memory_order_relaxed);
  // a later unit of a huge segment: step back towards its first unit
  for (size_t steps = 0; v != 0 && v < SEGMAP_FIRST_MIN; steps++) {
    uintptr_t back = uintptr_t{1} << (v - 1);
    if (idx < back || steps > SEGMAP_WALK_STEPS_MAX) return nullptr;
    idx -= back;
    v = segmap[idx].load(std::memory_order_relaxed);
  }
  if (v == 0) return nullptr;
  return reinterpret_cast<Segment*>(idx << SEGMENT_SHIFT);
}

}  // namespace mi
