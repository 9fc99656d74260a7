// segmap.cpp: see segmap.h.
#include "segmap.h"

namespace mi {

std::atomic<uint8_t> segmap[SEGMAP_ENTRIES];

void segmap_register(const Segment* segment) noexcept {
  uintptr_t first = reinterpret_cast<uintptr_t>(segment) >> SEGMENT_SHIFT;
  size_t units = divide_up(segment->segment_size, SEGMENT_SIZE);
  for (size_t i = 0; i < units && first + i < SEGMAP_ENTRIES; i++) {
    uint8_t v = (i + 1 < 255) ? static_cast<uint8_t>(i + 1) : 255;
    segmap[first + i].store(v, std::memory_order_relaxed);
  }
}

void segmap_unregister(const Segment* segment) noexcept {
  uintptr_t first = reinterpret_cast<uintptr_t>(segment) >> SEGMENT_SHIFT;
  size_t units = divide_up(segment->segment_size, SEGMENT_SIZE);
  for (size_t i = 0; i < units && first + i < SEGMAP_ENTRIES; i++) segmap[first + i].store(0, std::memory_order_relaxed);
}

Segment* segmap_segment_of(const void* p) noexcept {
  uintptr_t idx = reinterpret_cast<uintptr_t>(p) >> SEGMENT_SHIFT;
  if (idx >= SEGMAP_ENTRIES) return nullptr;
  uint8_t v = segmap[idx].load(std::memory_order_relaxed);
  while (v == 255) {  // far inside a very large segment: step back
    if (idx < 254) return nullptr;
    idx -= 254;
    v = segmap[idx].load(std::memory_order_relaxed);
  }
  if (v == 0 || idx < static_cast<uintptr_t>(v - 1)) return nullptr;
  idx -= static_cast<uintptr_t>(v - 1);
  return reinterpret_cast<Segment*>(idx << SEGMENT_SHIFT);
}

}  // namespace mi
