// stats_report.h: the statistics report as text (stats_report.cpp).
//
// Owns: the report of mi_stats_print, mi_stats_print_out and show_stats,
// and the report at exit (api/process.cpp), written in one piece.
#pragma once

#include "../../include/mimalloc.h"

namespace mi {

// Prints the report to `out`, or to the registered output when null.
void stats_print(mi_output_fun* out, void* arg) noexcept;
// The report at process exit: to the stats_file option's file, else to the
// registered output (stderr).
void stats_print_at_exit() noexcept;

}  // namespace mi
