// segmap.h: which addresses belong to our segments.
//
// Owns: a byte per SEGMENT_SIZE unit of the 47-bit user address space (32 MiB
// of zero-filled .bss that costs no memory until touched: one 4 KiB page of
// map covers 16 GiB of address space). 0 = not ours; k = the unit is the
// (k-1)-th unit of a segment (255: the segment starts 254 or more units
// before; keep walking back). Every block pointer we hand out lies in the
// first unit of its segment, except huge blocks with a large alignment.
// Why: free() must tell our pointers from foreign ones before it reads any
// header, so that a foreign pointer is reported instead of crashing. One load
// of this map does it, and also handles free(NULL).
// Thread-safe: entries are written (relaxed) only when a segment is created or
// released, before a pointer into it is handed out / after all are gone.
#pragma once

#include <atomic>
#include <cstdint>

#include "../common/types.h"

namespace mi {

constexpr unsigned SEGMAP_ADDRESS_BITS = 47;
constexpr size_t SEGMAP_ENTRIES = size_t{1} << (SEGMAP_ADDRESS_BITS - SEGMENT_SHIFT);

extern std::atomic<uint8_t> segmap[SEGMAP_ENTRIES];

// The map byte of the unit holding p (0 for addresses outside the map).
MI_ALWAYS_INLINE uint8_t segmap_byte(const void* p) {
  uintptr_t idx = reinterpret_cast<uintptr_t>(p) >> SEGMENT_SHIFT;
  if (MI_UNLIKELY(idx >= SEGMAP_ENTRIES)) return 0;
  return segmap[idx].load(std::memory_order_relaxed);
}

void segmap_register(const Segment* segment) noexcept;
void segmap_unregister(const Segment* segment) noexcept;

// The segment containing p, or nullptr if p is not in one of our segments.
Segment* segmap_segment_of(const void* p) noexcept;

}  // namespace mi
