// abandoned_purge.h: the free blocks of exited threads' pages go back to the
// OS after purge_delay * arena_purge_mult (see abandoned_purge.cpp).
#pragma once

#include <cstddef>

#include "../common/types.h"

namespace mi {

// Purges the free blocks of abandoned segments abandoned purge_delay *
// arena_purge_mult ago or more (force: all of them), a few segments per call; each segment once per
// abandonment. Any thread may call it (the allocation slow path, the
// background thread). Returns the bytes discarded.
size_t heap_purge_abandoned(bool force) noexcept;
// The same for the background thread: every segment due, no bound.
size_t heap_purge_abandoned_all_due(bool force) noexcept;

// Purges now the free blocks of the abandoned segments bound to a node other
// than `node`, not purged since their abandonment (none for node < 0, nor
// when purging is off): no thread of `node` may take them over
// (heap/node_release.cpp). Returns the bytes discarded.
size_t heap_purge_abandoned_off_node(int node) noexcept;

// Rebuilds the free list a purge parked. Every taker of an abandoned segment
// calls it for each page before touching the page's free list. pre: the
// caller holds the segment alone.
void page_free_unpark(Page* page) noexcept;
// Forgets the parked list of a page about to be freed (no block in use).
void page_free_drop_parked(Page* page) noexcept;

}  // namespace mi
