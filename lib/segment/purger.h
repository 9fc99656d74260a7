// purger.h: the background purge thread (option purge_thread); see purger.cpp.
#pragma once

#include <cstdint>

namespace mi {

// Starts the thread if the purge_thread option is on (idempotent).
void purger_start() noexcept;
// In a fork() child: the thread did not come along; purger_poll restarts it.
void purger_after_fork() noexcept;
// Called now and then from the allocation slow path.
void purger_poll() noexcept;
bool purger_running() noexcept;
// A task the thread runs besides purging (the statistics publisher,
// api/stats_publish): called at once, then after the milliseconds it
// returns (-1: never again). Set before purger_start, which then starts
// the thread even with purge_thread off (it then only runs the task).
void purger_set_task(int64_t (*task)() noexcept) noexcept;

}  // namespace mi
