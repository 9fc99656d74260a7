// purger.h: the background purge thread (option purge_thread); see purger.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mi {

// Starts the thread if the purge_thread option is on (idempotent).
void purger_start() noexcept;
// In a fork() child: the thread did not come along; purger_poll restarts it.
void purger_after_fork() noexcept;
// Called now and then from the allocation slow path (and at a thread's
// first: it starts a thread purger_start left for the first allocation).
void purger_poll() noexcept;
bool purger_running() noexcept;
// How many threads (this process's and its fork children's restarts) have
// entered the thread's loop: past the thread's start-up, which may allocate
// under a sanitizer (tests wait for it before they stage abandoned segments).
uint32_t purger_threads_entered() noexcept;
// A task the thread runs besides purging (the statistics publisher,
// api/stats_publish): called at once, then after the milliseconds it
// returns (-1: never again). Set before purger_start, which then starts
// the thread even with purge_thread off (it then only runs the task; in a
// process that has not allocated yet, at its first allocation).
void purger_set_task(int64_t (*task)() noexcept) noexcept;
// The heap layer's share of the purging (heap/abandoned_purge: the free
// blocks of exited threads' pages), called with the segments' purges.
void purger_set_heap_purge(size_t (*purge)(bool force) noexcept) noexcept;

}  // namespace mi
