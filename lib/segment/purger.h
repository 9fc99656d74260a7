// purger.h: the background purge thread (option purge_thread); see purger.cpp.
#pragma once

namespace mi {

// Starts the thread if the purge_thread option is on (idempotent).
void purger_start() noexcept;
// In a fork() child: the thread did not come along; purger_poll restarts it.
void purger_after_fork() noexcept;
// Called now and then from the allocation slow path.
void purger_poll() noexcept;
bool purger_running() noexcept;

}  // namespace mi
