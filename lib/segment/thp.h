// thp.h: where transparent huge pages may back a segment (thp.cpp).
#pragma once

#include <cstddef>

#include "../common/types.h"

namespace mi {

// Called by segment_alloc for new segment memory, before its first touch.
void segment_place_thp(void* start, size_t size, PageKind kind, const MemId& memid) noexcept;

}  // namespace mi
