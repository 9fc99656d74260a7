// thp.h: where transparent huge pages may back a segment (thp.cpp).
#pragma once

#include <cstddef>

#include "../common/types.h"

namespace mi {

// Called by segment_alloc for new segment memory, before its first touch.
void segment_place_thp(void* start, size_t size, PageKind kind, const MemId& memid) noexcept;

// Whether the kernel may back a huge segment's memory with transparent huge
// pages: its setting is "always", or the option allow_thp asks for them.
// Only then is the rest of the 2 MiB range a huge block ends in protected
// (segment.cpp huge_segment_trim).
bool thp_may_back_huge_segments() noexcept;

}  // namespace mi
