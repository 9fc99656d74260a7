// series.h: a time series of samples (--record) and its chart (--plot).
//
// The record is JSON Lines: one line per sample, each line the document
// `mi-stat --json` prints in the same mode (a list of processes, or a tree;
// docs/mi-stat.schema.json), compact, with its time_unix_ms. The chart is
// drawn by gnuplot (Debian: gnuplot-nox): memory per NUMA node over time
// (committed and in use, added over the processes of each sample) above, the
// purge activity (bytes purged per second, purges per second) below.
#pragma once

#include <functional>
#include <string>

#include "report.h"

namespace mistat {

// Set by SIGINT/SIGTERM: --record and --watch stop at the next sample.
bool stop_requested();
void install_stop_handlers();

// Sleeps up to `seconds`, waking early when a stop is requested; false then.
bool sleep_unless_stopped(double seconds);

// Takes a sample every `interval` seconds for `duration` seconds (0: until
// interrupted), each the document `take()` returns, one line each in `path`.
// Returns the count of samples; -1 with *why when the file cannot be written.
long record(const std::string& path, double duration, double interval, const std::function<Json()>& take,
            std::string* why);

// Draws `record_path` into `png_path` with gnuplot. false with *why (gnuplot
// missing: the message says which package has it). Malformed lines are
// skipped with a warning naming file:line, through `warn`.
bool plot(const std::string& record_path, const std::string& png_path,
          const std::function<void(const std::string&)>& warn, std::string* why);

}  // namespace mistat
