// stats_json.h: the live statistics as one line of JSON.
//
// Owns: writing an mi_stats_area_t (stats_area.h) as JSON, with the field
// names of include/mimalloc-numa-stats.h (docs/stats-json.md is the
// schema), for mi_stats_get_json and show_stats = "json" (the document at
// exit, one line, to the stats_file or stderr). One writer, one schema: the
// published file and these carry the same figures.
// No allocation: text goes into caller buffers or a scratch mapping.
#pragma once

#include <cstddef>

#include "../../include/mimalloc-numa-stats.h"

namespace mi {

// The JSON text of `area` (one line, no newline) in buf; returns its length
// (without the NUL), or the length it needed when that is size or more
// (buf then holds a cut text: a caller checks).
size_t stats_json_write(const mi_stats_area_t* area, char* buf, size_t size) noexcept;

// The document at exit (show_stats = "json": api/process.cpp) to the
// stats_file option's file, else to the registered output (stderr), with a
// newline, in one write.
void stats_json_print_at_exit() noexcept;

}  // namespace mi
