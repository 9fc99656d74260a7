// segmap.h: which addresses belong to our segments.
//
// Owns: a byte per SEGMENT_SIZE unit of the 47-bit user address space (32 MiB
// of zero-filled .bss that costs no memory until touched: one 4 KiB page of
// map covers 16 GiB of address space). The byte of a unit:
//   0            not ours;
//   16 .. 22     the first unit of a segment; the value is the segment's page
//                shift (16 small, and large: a large page is a run of 64 KiB
//                slices; 19 medium; 22 huge: one page), so free() gets the
//                shift from the map instead of loading it from the header;
//   1 .. 15      a later unit of a (huge) segment: the segment starts at least
//                2^(v-1) units before (walk back that far and read again;
//                capped at 15, so far units take many steps of 2^14).
// Every block pointer we hand out lies in the first unit of its segment,
// except huge blocks with a large alignment.
// Why: free() must tell our pointers from foreign ones before it reads any
// header, so that a foreign pointer is reported instead of crashing. One load
// of this map does it, gives the page shift, and also handles free(NULL).
// Thread-safe: entries are written (relaxed) only when a segment is created or
// released, before a pointer into it is handed out / after all are gone.
#pragma once

#include <atomic>
#include <cstdint>

#include "../common/types.h"

namespace mi {

constexpr unsigned SEGMAP_ADDRESS_BITS = 47;
constexpr size_t SEGMAP_ENTRIES = size_t{1} << (SEGMAP_ADDRESS_BITS - SEGMENT_SHIFT);

extern MI_HIDDEN std::atomic<uint8_t> segmap[SEGMAP_ENTRIES];

// Map bytes at or above this mark the first unit of a segment.
constexpr uint8_t SEGMAP_FIRST_MIN = 16;

// The map byte of the unit holding p. Addresses beyond the 47-bit user space
// (never ours; not valid user pointers on Linux) wrap around instead of being
// bounds-checked: one `and` instead of a compare and a branch on every free.
// segmap_segment_of() does the exact check.
MI_ALWAYS_INLINE uint8_t segmap_byte(const void* p) {
  uintptr_t idx = (reinterpret_cast<uintptr_t>(p) >> SEGMENT_SHIFT) & (SEGMAP_ENTRIES - 1);
  return segmap[idx].load(std::memory_order_relaxed);
}

void segmap_register(const Segment* segment) noexcept;
void segmap_unregister(const Segment* segment) noexcept;
// A segment that shrank to segment->segment_size from old_size: its units
// past the new end are no longer its.
void segmap_unregister_tail(const Segment* segment, size_t old_size) noexcept;

// The segment containing p, or nullptr if p is not in one of our segments.
Segment* segmap_segment_of(const void* p) noexcept;

}  // namespace mi
