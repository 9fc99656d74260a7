// api_internal.h: helpers shared by the files of the API layer.
#pragma once

#include <cstddef>

#include "../../include/mimalloc.h"
#include "../common/types.h"

namespace mi {

void* heap_malloc_zero(Heap* heap, size_t size, bool zero) noexcept;
void* heap_mallocn(Heap* heap, size_t count, size_t size, bool zero) noexcept;
void* heap_realloc_zero(Heap* heap, void* p, size_t newsize, bool zero) noexcept;
// realloc to count * size bytes (null, EOVERFLOW reported, when that overflows).
void* heap_reallocn(Heap* heap, void* p, size_t count, size_t size, bool zero) noexcept;
// realloc that frees p when it fails (mi_reallocf).
void* heap_reallocf(Heap* heap, void* p, size_t newsize) noexcept;
// The end of a realloc that moves the block: newp (null: the allocation
// failed, p stays valid) gets what p's `size` usable bytes and `newsize`
// have in common, then p is freed. Returns newp.
void* realloc_move(void* newp, void* p, size_t size, size_t newsize) noexcept;
char* heap_strndup_impl(Heap* heap, const char* s, size_t n) noexcept;
size_t good_size(size_t size) noexcept;

// Aligned allocation: (p + offset) is a multiple of alignment (a power of two).
void* heap_malloc_aligned_at(Heap* heap, size_t size, size_t alignment, size_t offset, bool zero) noexcept;
void* heap_realloc_aligned_at(Heap* heap, void* p, size_t newsize, size_t alignment, size_t offset, bool zero) noexcept;

}  // namespace mi
