// sanitizer_start.h: the allocations made before a sanitizer runtime is ready
// (ASan builds only; see sanitizer_start.cpp).
#pragma once

#include <cstddef>

#include "../common/sanitizer.h"

#if MI_ASAN
namespace mi {

// True once the ASan runtime is initialised: the library's instrumented
// code may run. Until then the override entry points use the functions below.
bool sanitizer_ready() noexcept;

// A block from a static buffer, for a call made while the runtime starts;
// zeroed; never reused. nullptr when the buffer is used up.
void* start_alloc(size_t size) noexcept;
// Is p one of those blocks? (Freeing one is a no-op.)
bool start_owns(const void* p) noexcept;
// The size asked for when p (start_owns) was made.
size_t start_size(const void* p) noexcept;
// realloc before the runtime is ready (from the buffer), or of such a block
// after (a block of ours, the contents copied).
void* start_realloc(void* p, size_t newsize) noexcept;

}  // namespace mi
#endif
