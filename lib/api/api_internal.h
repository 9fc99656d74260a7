// api_internal.h: helpers shared by the files of the API layer.
#pragma once

#include <cstddef>

#include "../../include/mimalloc.h"
#include "../common/types.h"

namespace mi {

void* heap_malloc_zero(Heap* heap, size_t size, bool zero) noexcept;
void* heap_mallocn(Heap* heap, size_t count, size_t size, bool zero) noexcept;
void* heap_realloc_zero(Heap* heap, void* p, size_t newsize, bool zero) noexcept;
char* heap_strndup_impl(Heap* heap, const char* s, size_t n) noexcept;
size_t good_size(size_t size) noexcept;

// Aligned allocation: (p + offset) is a multiple of alignment (a power of two).
void* heap_malloc_aligned_at(Heap* heap, size_t size, size_t alignment, size_t offset, bool zero) noexcept;
void* heap_realloc_aligned_at(Heap* heap, void* p, size_t newsize, size_t alignment, size_t offset, bool zero) noexcept;

}  // namespace mi
