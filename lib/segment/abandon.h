// abandon.h: the process-wide list of abandoned segments.
//
// Owns: segments whose owner thread exited while they still held live blocks.
// Other threads take them over (reclaim) when they need memory, or when they
// free into one (abandoned_reclaim_on_free), so memory does not pile up when
// threads come and go.
// Thread-safe: a mutex protects the list (abandon and reclaim are rare, slow
// path events); the count is an atomic so that the common "nothing abandoned"
// check costs one load. fork() is safe: the lock is taken around fork.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../common/types.h"

namespace mi {

// pre: segment->thread_id == 0 and all its pages in use are abandoned.
// Notes the time (abandoned_ms): its free blocks are purged after purge_delay.
void abandoned_push(Segment* segment) noexcept;

// Purging the free blocks of abandoned segments (heap/abandoned_purge.cpp):
// removes and returns one segment abandoned at or before `before_ms` whose
// blocks were not purged since, or nullptr. The caller holds it alone, as
// a reclaim would, and gives it back with abandoned_push_purged. A cheap
// test (no lock) answers most calls when none can be due.
Segment* abandoned_pop_to_purge(int64_t before_ms) noexcept;
void abandoned_push_purged(Segment* segment) noexcept;
// Abandoned segments whose free blocks were not purged yet: the test the
// allocation slow path makes before anything else (one load).
extern MI_HIDDEN std::atomic<size_t> abandoned_unpurged_n;

// Removes and returns one abandoned segment that `accept` takes, visiting at
// most `max_visits` segments; nullptr if none.
Segment* abandoned_pop(bool (*accept)(const Segment*, const void*), const void* arg, size_t max_visits) noexcept;

// Removes `segment` if it is still abandoned; true if it was (the caller now owns it).
bool abandoned_remove(Segment* segment) noexcept;

// Whether `segment` is on the list (a fork() child mends the segments that
// were between the list and a thread when the process forked).
bool abandoned_contains(const Segment* segment) noexcept;

size_t abandoned_count() noexcept;

// fork(): take the lock before, release it after, in parent and child.
void abandoned_fork_prepare() noexcept;
void abandoned_fork_parent() noexcept;
void abandoned_fork_child() noexcept;

}  // namespace mi
