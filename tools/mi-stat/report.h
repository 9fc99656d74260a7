// report.h: what mi-stat prints: the tables for people, the JSON document
// (docs/mi-stat.schema.json) and the OpenMetrics text exposition.
//
// Owns the formats only; what is read is area.h's and discover.h's. Every
// figure keeps the header's field name in JSON and in the metric names, in
// bytes (tables: KiB/MiB/GiB) and nanoseconds (purge_ns; seconds in the
// metrics, as Prometheus names units).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "area.h"
#include "discover.h"

namespace mistat {

using Json = nlohmann::ordered_json;

// The version of the JSON document (its "schema_version"; docs/mi-stat.schema.json).
constexpr int JSON_SCHEMA_VERSION = 1;

// "512 B", "64.0 KiB", "1.5 GiB".
std::string bytes_human(int64_t bytes);

// One line per process (mi-stat without PID); with `all`, the stale,
// unreadable and invalid files too, each with why it is not read.
std::string text_list(const Scan& scan, bool all);

// One process in detail: per node rows, process-wide figures, the size
// classes with `bins`.
std::string text_process(const Snapshot& snap, bool bins, int64_t now_ms);

// A tree added up: who is in it, then the same tables as text_process.
std::string text_tree(const Tree& tree, bool bins, int64_t now_ms);

// The JSON documents: a list of processes (also for PIDs), or a tree.
Json json_list(const std::vector<const Snapshot*>& shown, const std::vector<const Entry*>& skipped, bool bins,
               int64_t now_ms);
Json json_tree(const Tree& tree, bool bins, int64_t now_ms);

// The OpenMetrics text exposition (Prometheus's text format, which
// node_exporter's textfile collector reads): each process's figures labelled
// pid and program, per-node ones also node; ends with "# EOF".
std::string openmetrics_list(const std::vector<const Snapshot*>& shown, bool bins);
std::string openmetrics_tree(const Tree& tree, bool bins);

}  // namespace mistat
