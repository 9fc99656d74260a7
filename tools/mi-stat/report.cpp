// report.cpp: the tables, the JSON documents and the OpenMetrics exposition (see report.h).
#include "report.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <functional>

namespace mistat {

namespace {

std::string printf_string(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

std::string local_time(int64_t unix_ms) {
  if (unix_ms <= 0) return "?";
  const time_t t = time_t(unix_ms / 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string age(int64_t then_ms, int64_t now_ms) {
  if (then_ms <= 0) return "never";
  const double s = double(now_ms - then_ms) / 1000.0;
  return printf_string("%.1f s ago", s < 0 ? 0.0 : s);
}

// The memory table: one row per node, then the total; the frees table after it.
std::string memory_tables(const Figures& f) {
  std::string out = printf_string("%-10s %11s %11s %11s %11s %11s %11s %11s\n", "memory", "reserved", "committed",
                                  "in use", "purgeable", "1G pages", "2M pages", "purged");
  auto row = [&](const std::string& name, const mi_stats_area_memory_t& m) {
    out +=
        printf_string("  %-8s %11s %11s %11s %11s %11s %11s %11s\n", name.c_str(), bytes_human(m.reserved).c_str(),
                      bytes_human(m.committed).c_str(), bytes_human(m.in_use).c_str(), bytes_human(m.purgeable).c_str(),
                      bytes_human(m.huge_1g).c_str(), bytes_human(m.large_2m).c_str(), bytes_human(m.purged).c_str());
  };
  for (size_t i = 0; i < f.nodes.size(); i++) row("node " + std::to_string(i), f.nodes[i]);
  row("total", f.totals);
  out += printf_string("%-10s %14s %14s %14s\n", "frees", "local", "remote", "fallbacks");
  auto row2 = [&](const std::string& name, const mi_stats_area_memory_t& m) {
    out += printf_string("  %-8s %14" PRId64 " %14" PRId64 " %14" PRId64 "\n", name.c_str(), m.local_frees,
                         m.remote_frees, m.fallbacks);
  };
  for (size_t i = 0; i < f.nodes.size(); i++) row2("node " + std::to_string(i), f.nodes[i]);
  row2("total", f.totals);
  return out;
}

std::string process_lines(const Figures& f) {
  std::string out;
  out += printf_string("process: RSS %s, allocator metadata %s, threads %" PRId64 ", segments %" PRId64 " (%" PRId64
                       " abandoned)\n",
                       bytes_human(f.rss).c_str(), bytes_human(f.metadata_committed).c_str(), f.threads, f.segments,
                       f.segments_abandoned);
  out += printf_string("purges: %" PRId64 " taking %.3f ms in all; OS calls: %" PRId64 " mmap, %" PRId64
                       " commit, %" PRId64 " purge; page faults: %" PRId64 " minor, %" PRId64 " major\n",
                       f.purges, double(f.purge_ns) / 1e6, f.os_mmap_calls, f.os_commit_calls, f.os_purge_calls,
                       f.page_faults_minor, f.page_faults_major);
  return out;
}

std::string bins_table(const Figures& f) {
  std::string out =
      printf_string("size classes   %12s %14s %14s %14s\n", "block size", "live blocks", "live bytes", "allocations");
  int shown = 0;
  for (const auto& b : f.bins) {
    if (b.live_blocks == 0 && b.allocations == 0) continue;
    out += printf_string("               %12s %14" PRId64 " %14s %14" PRId64 "\n", bytes_human(b.block_size).c_str(),
                         b.live_blocks, bytes_human(b.live_bytes).c_str(), b.allocations);
    shown++;
  }
  if (shown == 0) out += "               (no allocation in any size class)\n";
  return out;
}

const char* state_name(EntryState s) {
  switch (s) {
    case EntryState::live: return "live";
    case EntryState::stale: return "stale";
    case EntryState::unreadable: return "unreadable";
    case EntryState::invalid: return "invalid";
  }
  return "?";
}

}  // namespace

std::string bytes_human(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  const bool negative = bytes < 0;
  double v = negative ? -double(bytes) : double(bytes);
  if (v < 1024) return std::to_string(bytes) + " B";
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    u++;
  }
  return printf_string("%s%.1f %s", negative ? "-" : "", v, units[u]);
}

std::string text_list(const Scan& scan, bool all) {
  size_t nodes = 0;
  int live = 0;
  for (const auto& e : scan.entries) {
    if (e.state == EntryState::live) {
      nodes = std::max(nodes, e.snap.fig.nodes.size());
      live++;
    }
  }
  std::string out;
  if (live == 0 && !all) {
    return "no process publishes statistics here (they do with the option stats_publish on)\n";
  }
  out += printf_string("%8s %-16s %11s %11s %11s", "PID", "PROGRAM", "RSS", "COMMITTED", "IN USE");
  for (size_t i = 0; i < nodes; i++) out += printf_string(" %11s", ("NODE " + std::to_string(i)).c_str());
  out += "\n";
  for (const auto& e : scan.entries) {
    if (e.state == EntryState::live) {
      const Figures& f = e.snap.fig;
      out += printf_string("%8" PRId64 " %-16.16s %11s %11s %11s", e.pid, e.snap.program.c_str(),
                           bytes_human(f.rss).c_str(), bytes_human(f.totals.committed).c_str(),
                           bytes_human(f.totals.in_use).c_str());
      for (size_t i = 0; i < nodes; i++) {
        out += printf_string(" %11s", i < f.nodes.size() ? bytes_human(f.nodes[i].in_use).c_str() : "-");
      }
      out += "\n";
    } else if (all) {
      out += printf_string("%8" PRId64 " (%s%s%s)  %s\n", e.pid, state_name(e.state), e.problem.empty() ? "" : ": ",
                           e.problem.c_str(), e.path.c_str());
    }
  }
  return out;
}

std::string text_process(const Snapshot& s, bool bins, int64_t now_ms) {
  std::string out = printf_string("pid %" PRId64 "  %s\n", s.pid, s.program.c_str());
  out += printf_string("  started %s; figures of %s (taken every %" PRId64 " ms, %" PRId64 " times)\n",
                       local_time(s.start_unix_ms).c_str(), age(s.updated_unix_ms, now_ms).c_str(), s.interval_ms,
                       s.updates);
  out += memory_tables(s.fig);
  out += process_lines(s.fig);
  if (bins) out += bins_table(s.fig);
  return out;
}

std::string text_tree(const Tree& t, bool bins, int64_t now_ms) {
  const std::string root_name = t.members.empty() ? "?" : t.members[0].program;
  std::string out = printf_string("process tree of %" PRId64 " (%s): %zu processes, %d publish statistics\n", t.root,
                                  root_name.c_str(), t.members.size(), t.publishing);
  std::string pub, other;
  for (const auto& m : t.members) {
    (m.publishes ? pub : other) += printf_string(" %" PRId64 " %s,", m.pid, m.program.c_str());
  }
  if (!pub.empty()) pub.pop_back();
  if (!other.empty()) other.pop_back();
  out += "  publishing:" + (pub.empty() ? std::string(" none") : pub) + "\n";
  if (!other.empty()) out += "  not publishing:" + other + "\n";
  if (t.publishing > 0) out += "  added up; the oldest figures of " + age(t.updated_unix_ms, now_ms) + "\n";
  out += memory_tables(t.sum);
  out += process_lines(t.sum);
  if (bins) out += bins_table(t.sum);
  return out;
}

namespace {

Json memory_json(const mi_stats_area_memory_t& m) {
  Json j;
  j["reserved"] = m.reserved;
  j["committed"] = m.committed;
  j["in_use"] = m.in_use;
  j["purgeable"] = m.purgeable;
  j["huge_1g"] = m.huge_1g;
  j["large_2m"] = m.large_2m;
  j["local_frees"] = m.local_frees;
  j["remote_frees"] = m.remote_frees;
  j["fallbacks"] = m.fallbacks;
  j["purged"] = m.purged;
  return j;
}

void figures_json(Json& j, const Figures& f, bool bins) {
  j["threads"] = f.threads;
  j["segments"] = f.segments;
  j["segments_abandoned"] = f.segments_abandoned;
  j["purges"] = f.purges;
  j["purge_ns"] = f.purge_ns;
  j["os_mmap_calls"] = f.os_mmap_calls;
  j["os_commit_calls"] = f.os_commit_calls;
  j["os_purge_calls"] = f.os_purge_calls;
  j["page_faults_minor"] = f.page_faults_minor;
  j["page_faults_major"] = f.page_faults_major;
  j["rss"] = f.rss;
  j["metadata_committed"] = f.metadata_committed;
  j["totals"] = memory_json(f.totals);
  j["nodes"] = Json::array();
  for (size_t i = 0; i < f.nodes.size(); i++) {
    Json n;
    n["node"] = i;
    n.update(memory_json(f.nodes[i]));
    j["nodes"].push_back(n);
  }
  if (bins) {
    j["bins"] = Json::array();
    for (const auto& b : f.bins) {
      j["bins"].push_back(Json{{"block_size", b.block_size},
                               {"live_blocks", b.live_blocks},
                               {"live_bytes", b.live_bytes},
                               {"allocations", b.allocations}});
    }
  }
}

}  // namespace

Json json_list(const std::vector<const Snapshot*>& shown, const std::vector<const Entry*>& skipped, bool bins,
               int64_t now_ms) {
  Json doc;
  doc["schema_version"] = JSON_SCHEMA_VERSION;
  doc["time_unix_ms"] = now_ms;
  doc["processes"] = shown.size();
  doc["list"] = Json::array();
  for (const Snapshot* s : shown) {
    Json p;
    p["pid"] = s->pid;
    p["program"] = s->program;
    p["start_ticks"] = s->start_ticks;
    p["start_unix_ms"] = s->start_unix_ms;
    p["updated_unix_ms"] = s->updated_unix_ms;
    p["updates"] = s->updates;
    p["interval_ms"] = s->interval_ms;
    figures_json(p, s->fig, bins);
    doc["list"].push_back(p);
  }
  doc["skipped"] = Json::array();
  for (const Entry* e : skipped) {
    Json k;
    k["pid"] = e->pid;
    k["start_ticks"] = e->start_ticks;
    k["path"] = e->path;
    k["reason"] = state_name(e->state);
    if (!e->problem.empty()) k["problem"] = e->problem;
    doc["skipped"].push_back(k);
  }
  return doc;
}

Json json_tree(const Tree& t, bool bins, int64_t now_ms) {
  Json doc;
  doc["schema_version"] = JSON_SCHEMA_VERSION;
  doc["time_unix_ms"] = now_ms;
  doc["tree_root"] = t.root;
  doc["processes"] = t.members.size();
  doc["publishing"] = t.publishing;
  doc["members"] = Json::array();
  for (const auto& m : t.members) {
    doc["members"].push_back(Json{{"pid", m.pid}, {"program", m.program}, {"publishes", m.publishes}});
  }
  doc["updated_unix_ms"] = t.updated_unix_ms;
  figures_json(doc, t.sum, bins);
  return doc;
}

namespace {

// Label values: backslash, double quote and newline escaped (the format's rule).
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

struct Subject {
  std::string labels;  // pid="..",program=".."
  const Figures* fig;
  const Snapshot* snap;  // null for a tree
  const Tree* tree;      // null for a process
};

struct Family {
  const char* name;
  const char* type;  // gauge, counter
  const char* help;
};

// One family: HELP, TYPE, then a sample per subject (and node or size class).
void family(std::string& out, const Family& f, const std::vector<Subject>& subjects,
            const std::function<void(std::string&, const std::string& name, const Subject&)>& samples) {
  std::string body;
  for (const auto& s : subjects) samples(body, f.name, s);
  if (body.empty()) return;
  out += std::string("# HELP ") + f.name + " " + f.help + "\n";
  out += std::string("# TYPE ") + f.name + " " + f.type + "\n";
  out += body;
}

// The shortest text that reads back as the same double: seconds as 3e-06
// and 1796452483.693, not %.17g's 3.0000000000000001e-06 and
// 1796452483.6930001 (the same numbers to a parser, noise to a reader).
void sample(std::string& out, const std::string& name, const std::string& labels, double value) {
  char text[64];
  const auto r = std::to_chars(text, text + sizeof(text), value);
  out += name + "{" + labels + "} " + std::string(text, r.ptr) + "\n";
}

std::string openmetrics(const std::vector<Subject>& subjects, bool bins) {
  std::string out;
  using M = mi_stats_area_memory_t;
  struct MemoryFigure {
    const char* suffix;
    const char* type;
    const char* help;
    int64_t M::*field;
  };
  const MemoryFigure memory[] = {
      {"reserved_bytes", "gauge", "address space mapped for arenas and segments", &M::reserved},
      {"committed_bytes", "gauge", "of the reserved, committed", &M::committed},
      {"in_use_bytes", "gauge", "bytes of the program's live blocks", &M::in_use},
      {"purgeable_bytes", "gauge", "committed and free, waiting for the delayed purge", &M::purgeable},
      {"huge_1g_bytes", "gauge", "of the reserved, backed by 1 GiB pages", &M::huge_1g},
      {"large_2m_bytes", "gauge", "of the reserved, backed by 2 MiB pages", &M::large_2m},
      {"local_frees_total", "counter", "blocks freed by the thread that owns their page", &M::local_frees},
      {"remote_frees_total", "counter", "blocks freed by another thread", &M::remote_frees},
      {"fallbacks_total", "counter", "times a node could not give memory and another did", &M::fallbacks},
      {"purged_bytes_total", "counter", "bytes given back to the OS", &M::purged},
  };
  for (const auto& m : memory) {
    const std::string name = std::string("mimalloc_numa_") + m.suffix;
    const std::string help = std::string("Process total: ") + m.help + ".";
    family(out, {name.c_str(), m.type, help.c_str()}, subjects,
           [&](std::string& o, const std::string& n, const Subject& s) {
             sample(o, n, s.labels, double(s.fig->totals.*m.field));
           });
  }
  for (const auto& m : memory) {
    const std::string name = std::string("mimalloc_numa_node_") + m.suffix;
    const std::string help = std::string("Per NUMA node: ") + m.help + ".";
    family(out, {name.c_str(), m.type, help.c_str()}, subjects,
           [&](std::string& o, const std::string& n, const Subject& s) {
             for (size_t i = 0; i < s.fig->nodes.size(); i++) {
               sample(o, n, s.labels + ",node=\"" + std::to_string(i) + "\"", double(s.fig->nodes[i].*m.field));
             }
           });
  }
  struct ProcessFigure {
    const char* name;
    const char* type;
    const char* help;
    int64_t Figures::*field;
    double scale;
  };
  const ProcessFigure process[] = {
      {"mimalloc_numa_threads", "gauge", "Threads with a heap.", &Figures::threads, 1},
      {"mimalloc_numa_segments", "gauge", "Segments in use.", &Figures::segments, 1},
      {"mimalloc_numa_segments_abandoned", "gauge", "Segments of ended threads, not yet reclaimed.",
       &Figures::segments_abandoned, 1},
      {"mimalloc_numa_purges_total", "counter", "Purge operations done.", &Figures::purges, 1},
      {"mimalloc_numa_purge_seconds_total", "counter", "Time spent purging.", &Figures::purge_ns, 1e-9},
      {"mimalloc_numa_os_mmap_calls_total", "counter", "mmap calls made by the allocator.", &Figures::os_mmap_calls, 1},
      {"mimalloc_numa_os_commit_calls_total", "counter", "Commit calls made by the allocator.",
       &Figures::os_commit_calls, 1},
      {"mimalloc_numa_os_purge_calls_total", "counter", "Purge (madvise) calls made by the allocator.",
       &Figures::os_purge_calls, 1},
      {"mimalloc_numa_page_faults_minor_total", "counter", "Minor page faults of the process.",
       &Figures::page_faults_minor, 1},
      {"mimalloc_numa_page_faults_major_total", "counter", "Major page faults of the process.",
       &Figures::page_faults_major, 1},
      {"mimalloc_numa_rss_bytes", "gauge", "Resident set size of the process.", &Figures::rss, 1},
      {"mimalloc_numa_metadata_committed_bytes", "gauge", "Memory committed for the allocator's own metadata.",
       &Figures::metadata_committed, 1},
  };
  for (const auto& p : process) {
    family(out, {p.name, p.type, p.help}, subjects, [&](std::string& o, const std::string& n, const Subject& s) {
      sample(o, n, s.labels, double(s.fig->*p.field) * p.scale);
    });
  }
  family(out,
         {"mimalloc_numa_start_time_seconds", "gauge",
          "When the process started (a fork child: its fork), since the epoch."},
         subjects, [&](std::string& o, const std::string& n, const Subject& s) {
           if (s.snap) sample(o, n, s.labels, double(s.snap->start_unix_ms) / 1000.0);
         });
  family(out,
         {"mimalloc_numa_last_update_timestamp_seconds", "gauge",
          "When the figures were taken, since the epoch (a tree: the oldest)."},
         subjects, [&](std::string& o, const std::string& n, const Subject& s) {
           sample(o, n, s.labels, double(s.snap ? s.snap->updated_unix_ms : s.tree->updated_unix_ms) / 1000.0);
         });
  family(out, {"mimalloc_numa_tree_processes", "gauge", "Processes in the tree (mi-stat --tree)."}, subjects,
         [&](std::string& o, const std::string& n, const Subject& s) {
           if (s.tree) sample(o, n, s.labels, double(s.tree->members.size()));
         });
  family(out, {"mimalloc_numa_tree_publishing_processes", "gauge", "Processes of the tree that publish statistics."},
         subjects, [&](std::string& o, const std::string& n, const Subject& s) {
           if (s.tree) sample(o, n, s.labels, double(s.tree->publishing));
         });
  if (bins) {
    struct BinFigure {
      const char* name;
      const char* type;
      const char* help;
      int64_t mi_stats_area_bin_t::*field;
    };
    const BinFigure bin_figures[] = {
        {"mimalloc_numa_bin_live_blocks", "gauge", "Live blocks of the size class.", &mi_stats_area_bin_t::live_blocks},
        {"mimalloc_numa_bin_live_bytes", "gauge", "Bytes of the size class's live blocks.",
         &mi_stats_area_bin_t::live_bytes},
        {"mimalloc_numa_bin_allocations_total", "counter", "Allocations in the size class since the process started.",
         &mi_stats_area_bin_t::allocations},
    };
    for (const auto& b : bin_figures) {
      family(out, {b.name, b.type, b.help}, subjects, [&](std::string& o, const std::string& n, const Subject& s) {
        for (const auto& bin : s.fig->bins) {
          sample(o, n, s.labels + ",block_size=\"" + std::to_string(bin.block_size) + "\"", double(bin.*b.field));
        }
      });
    }
  }
  out += "# EOF\n";
  return out;
}

std::string labels_of(int64_t pid, const std::string& program) {
  return "pid=\"" + std::to_string(pid) + "\",program=\"" + label_value(program) + "\"";
}

}  // namespace

std::string openmetrics_list(const std::vector<const Snapshot*>& shown, bool bins) {
  std::vector<Subject> subjects;
  for (const Snapshot* s : shown) subjects.push_back({labels_of(s->pid, s->program), &s->fig, s, nullptr});
  return openmetrics(subjects, bins);
}

std::string openmetrics_tree(const Tree& t, bool bins) {
  const std::string program = t.members.empty() ? "" : t.members[0].program;
  std::vector<Subject> subjects{{labels_of(t.root, program), &t.sum, nullptr, &t}};
  return openmetrics(subjects, bins);
}

}  // namespace mistat
