// check.h: what an invariant walker found wrong, as text.
//
// Owns: the one way the walkers (arena_is_valid, segment_is_valid,
// page_is_valid, heap_is_valid, process_is_valid) report a broken
// invariant. A walker returns false and says why: into the caller's
// `Invalid` when it passes one (the unit tests that corrupt a structure on
// purpose read it), else on stderr, just before the MI_ASSERT_EXPENSIVE that
// called it aborts (the assertion names the walker, the line names the
// structure and the broken rule). Never allocates.
// Thread-safe: no state.
#pragma once

#include <cstddef>

namespace mi {

struct Invalid {
  char text[256];  // "arena 3: block 17 waits for a purge but belongs to segment 0x..."
};

// Formats the finding into why->text (why != null) or onto stderr, and
// returns false, so that a walker ends a check with `return invalid(...)`.
bool invalid(Invalid* why, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace mi
