// mi_stat.cpp: mi-stat, live statistics of processes on mimalloc-numa.
//
// Owns: the command line (Boost.Program_options), the modes (the list; PIDs
// in detail; --tree), the outputs chosen (table, --json, --openmetrics,
// --watch, --record, --plot), the messages and the exit status. Reading an
// area is area.h's, finding them and the process tree discover.h's, the
// formats report.h's, the time series and the chart series.h's.
//
// mi-stat reads files only (include/mimalloc-numa-stats.h): it never
// attaches to, signals or stops a process, and needs not run on the
// allocator itself (it is a plain C++ program).
//
// Exit status (the help text and mi-stat(1) say the same):
//   0  done
//   1  a PID given does not publish statistics (or its file cannot be read),
//      the --tree root is not running or none of its processes publishes,
//      or --record/--plot could not write (gnuplot missing, a file)
//   2  usage error
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "../cli/cli.h"
#include "area.h"
#include "discover.h"
#include "report.h"
#include "series.h"

#ifndef MI_STAT_VERSION
#define MI_STAT_VERSION "0.0.0"
#endif

namespace po = boost::program_options;

namespace mistat {

namespace {

constexpr int EXIT_OK = 0;
constexpr int EXIT_FAILED = 1;
constexpr int EXIT_USAGE = 2;

using cli::Exit;
constexpr const char* TOOL = "mi-stat";

void say_error(const std::string& msg) { cli::say(TOOL, msg); }
void say_warning(const std::string& msg) { cli::say_warning(TOOL, msg); }
[[noreturn]] void usage_error(const std::string& msg) { cli::usage_error(TOOL, EXIT_USAGE, msg); }

const char* const HELP_TEXT = &R"(
usage: mi-stat [--all] [--json | --openmetrics] [--bins]
       mi-stat PID... [--json | --openmetrics] [--bins]
       mi-stat --tree PID [--json | --openmetrics] [--bins]
       mi-stat [PID... | --tree PID] --watch SECS [--bins]
       mi-stat [PID... | --tree PID] --record FILE [--for SECS] [--interval SECS] [--plot FILE.png]
       mi-stat --plot FILE.png --from RECORD

Shows the memory of running processes on mimalloc-numa, per NUMA node,
without stopping them. A process publishes its figures with the option
stats_publish on (mimalloc-numa.toml(5); mi-enable turns it on for the
servers it enables): a small file refreshed every stats_publish_interval,
/run/mimalloc-numa/<pid>-<starttime>.stats (root's services), else under
$XDG_RUNTIME_DIR/mimalloc-numa or /tmp/mimalloc-numa-UID. mi-stat reads
those files; it never attaches to a process.

What:
  (nothing)            one line per publishing process: pid, program, RSS,
                       committed, in use, in use per node
  PID...               each process in detail: per node rows (reserved,
                       committed, in use, purgeable, 1 GiB and 2 MiB pages,
                       purged, local and remote frees, fallbacks), the
                       process-wide figures
  --tree PID           PID and all its descendants (a postmaster and its
                       backends) added up in one table, with the count of
                       processes and which of them publish
  --all                the list also shows the files not read, and why:
                       stale (the process ended, or its pid is now another
                       process's), another user's, invalid
  --bins               also the size classes: live blocks and bytes,
                       allocations since the start

How:
  --json               one JSON document (docs/mi-stat.schema.json, installed
                       in /usr/share/doc/mimalloc-numa/); bytes, field names
                       as in <mimalloc-numa/mimalloc-numa-stats.h>
  --openmetrics        the Prometheus/OpenMetrics text exposition, labels
                       pid, program and node; for node_exporter's textfile
                       collector (write it to a .prom file) or promtool
  --watch SECS         the table again every SECS seconds, like top, until
                       interrupted (Ctrl-C)
  --record FILE        a time series: one JSON line per sample (each the
                       --json document) written to FILE
  --for SECS           how long to record (default: until interrupted)
  --interval SECS      time between samples (default 1)
  --plot FILE.png      a chart of memory per node over time and of the purge
                       activity, drawn by gnuplot (Debian: gnuplot-nox): of
                       --from RECORD, or of what --record just recorded
  --from RECORD        the record to draw

Where (tests, unusual set-ups):
  --dir DIR            read the .stats files in DIR only (repeatable);
                       default: /run/mimalloc-numa, $XDG_RUNTIME_DIR/
                       mimalloc-numa, /run/user/*/mimalloc-numa,
                       /tmp/mimalloc-numa-UID

  --version            print the version
  -h, --help           print this help

Another user's files (mode 0600) are readable by root only: mi-stat counts
them and says how many more processes root would see.

Exit status:
  0  done
  1  a PID given does not publish statistics or its file cannot be read; the
     --tree root is not running or none of its processes publishes; --record
     or --plot could not write (gnuplot missing, a file)
  2  usage error
)"[1];

// A positive number of seconds, at most a day: "2", "0.5".
double parse_seconds(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || *end != 0 || !(v > 0) || v > 86400) {
    usage_error("--" + option + " " + text +
                ": not a number of seconds (a positive number up to 86400, like 2 or 0.5)");
  }
  return v;
}

int64_t parse_pid(const std::string& what, const std::string& text) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != 0 || v <= 0 || v > 0x3fffffff) {
    usage_error(what + " " + text + ": not a process id");
  }
  return v;
}

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class Mode { list, pids, tree };

struct Settings {
  Mode mode = Mode::list;
  std::vector<int64_t> pids;
  int64_t tree_root = 0;
  bool all = false;
  bool bins = false;
  bool json = false;
  bool openmetrics = false;
  std::optional<double> watch;
  std::optional<std::string> record_file;
  double record_for = 0;
  double interval = 1;
  std::optional<std::string> plot_file;
  std::optional<std::string> plot_from;
  std::vector<std::string> dirs;
};

// One look at the processes: what each output is made of, and the notes
// about what was not read.
struct Take {
  Scan scan;
  std::vector<const Snapshot*> shown;  // list, pids: the processes shown
  std::vector<const Entry*> skipped;   // list: the files not read; pids: those of the PIDs
  std::optional<Tree> tree;
  bool tree_root_running = true;
  std::vector<int64_t> missing;    // pids given that publish nothing readable
  std::vector<std::string> notes;  // warnings for stderr (or the frame)
  int64_t time_ms = 0;
};

std::string missing_reason(int64_t pid, const Scan& scan) {
  for (const auto& e : scan.entries) {
    if (e.pid != pid) continue;
    switch (e.state) {
      case EntryState::live: break;
      case EntryState::stale: return "pid " + std::to_string(pid) + ": " + e.path + " is stale (" + e.problem + ")";
      case EntryState::unreadable:
        return "pid " + std::to_string(pid) + ": " + e.path + " is another user's (run as root to read it)";
      case EntryState::invalid: return "pid " + std::to_string(pid) + ": " + e.path + ": " + e.problem;
    }
  }
  return "pid " + std::to_string(pid) + " publishes no statistics (is stats_publish on for it? its file would be " +
         "<pid>-<starttime>.stats in " + MI_STATS_AREA_DIR_RUN +
         ", $XDG_RUNTIME_DIR/mimalloc-numa or /tmp/mimalloc-numa-UID)";
}

Take take(const Settings& st) {
  Take t;
  t.scan = scan(st.dirs.empty() ? default_dirs() : st.dirs, st.mode == Mode::pids ? st.pids : std::vector<int64_t>{});
  t.time_ms = now_unix_ms();
  switch (st.mode) {
    case Mode::list:
      for (const auto& e : t.scan.entries) {
        if (e.state == EntryState::live) t.shown.push_back(&e.snap);
        else t.skipped.push_back(&e);
      }
      break;
    case Mode::pids:
      for (int64_t pid : st.pids) {
        const Entry* found = nullptr;
        for (const auto& e : t.scan.entries) {
          if (e.pid == pid && e.state == EntryState::live) found = &e;
        }
        if (found) {
          t.shown.push_back(&found->snap);
        } else {
          t.missing.push_back(pid);
          for (const auto& e : t.scan.entries) {
            if (e.pid == pid) t.skipped.push_back(&e);
          }
          t.notes.push_back(missing_reason(pid, t.scan));
        }
      }
      break;
    case Mode::tree: {
      Tree tree;
      if (tree_build(st.tree_root, t.scan, &tree)) {
        t.tree = std::move(tree);
        if (t.tree->publishing == 0) {
          t.notes.push_back("none of the " + std::to_string(t.tree->members.size()) + " processes of the tree of " +
                            std::to_string(st.tree_root) + " publishes statistics (is stats_publish on for them?)");
        }
      } else {
        t.tree_root_running = false;
        t.notes.push_back("--tree " + std::to_string(st.tree_root) + ": no such process");
      }
      break;
    }
  }
  // Files that are not areas this mi-stat reads: said, never silently dropped.
  if (st.mode != Mode::pids) {
    for (const auto& e : t.scan.entries) {
      if (e.state == EntryState::invalid) t.notes.push_back(e.path + ": " + e.problem + " (skipped)");
    }
  }
  const int unreadable = t.scan.unreadable_files();
  if (unreadable > 0 || t.scan.unreadable_dirs > 0) {
    std::string n;
    if (unreadable > 0)
      n = std::to_string(unreadable) + (unreadable == 1 ? " process's" : " processes'") + " statistics";
    if (t.scan.unreadable_dirs > 0) {
      n += (n.empty() ? "" : " and ") + std::to_string(t.scan.unreadable_dirs) + " other users' director" +
           (t.scan.unreadable_dirs == 1 ? "y" : "ies");
    }
    if (geteuid() != 0) {
      t.notes.push_back(n + " not readable by you: run as root to see " +
                        (unreadable > 0 ? std::to_string(unreadable) + " more process" + (unreadable == 1 ? "" : "es")
                                        : std::string("them")));
    } else {
      t.notes.push_back(n + " could not be read");
    }
  }
  return t;
}

Json take_json(const Settings& st, const Take& t) {
  if (st.mode == Mode::tree) {
    if (t.tree) return json_tree(*t.tree, st.bins, t.time_ms);
    Tree empty;
    empty.root = st.tree_root;
    return json_tree(empty, st.bins, t.time_ms);
  }
  return json_list(t.shown, t.skipped, st.bins, t.time_ms);
}

std::string take_text(const Settings& st, const Take& t) {
  switch (st.mode) {
    case Mode::list: return text_list(t.scan, st.all);
    case Mode::pids: {
      std::string out;
      for (size_t i = 0; i < t.shown.size(); i++) {
        if (i) out += "\n";
        out += text_process(*t.shown[i], st.bins, t.time_ms);
      }
      return out;
    }
    case Mode::tree: return t.tree ? text_tree(*t.tree, st.bins, t.time_ms) : std::string();
  }
  return {};
}

int status_of(const Settings& st, const Take& t) {
  if (st.mode == Mode::pids && !t.missing.empty()) return EXIT_FAILED;
  if (st.mode == Mode::tree && (!t.tree || t.tree->publishing == 0)) return EXIT_FAILED;
  return EXIT_OK;
}

int run_watch(const Settings& st) {
  install_stop_handlers();
  while (!stop_requested()) {
    const Take t = take(st);
    char when[32];
    const time_t now = time_t(t.time_ms / 1000);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    // Home, clear the screen: a terminal shows one frame at a time.
    std::string frame = "\033[H\033[2J";
    char every[32];
    snprintf(every, sizeof every, "%g", *st.watch);
    frame += std::string("mi-stat  ") + when + "  every " + every + " s  (Ctrl-C stops)\n\n";
    frame += take_text(st, t);
    for (const auto& n : t.notes) frame += "mi-stat: " + n + "\n";
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);
    if (!sleep_unless_stopped(*st.watch)) break;
  }
  return EXIT_OK;
}

int run(const Settings& st) {
  if (st.watch) return run_watch(st);
  if (st.record_file) {
    install_stop_handlers();
    std::string why;
    int last_status = EXIT_OK;
    std::vector<std::string> said;
    const long n = record(
        *st.record_file, st.record_for, st.interval,
        [&] {
          const Take t = take(st);
          for (const auto& note : t.notes) {
            // Each problem once, not once per sample.
            if (std::find(said.begin(), said.end(), note) == said.end()) {
              say_warning(note);
              said.push_back(note);
            }
          }
          last_status = status_of(st, t);
          return take_json(st, t);
        },
        &why);
    if (n < 0) {
      say_error(why);
      return EXIT_FAILED;
    }
    std::cerr << "mi-stat: " << n << " sample" << (n == 1 ? "" : "s") << " in " << *st.record_file << "\n";
    if (st.plot_file) {
      if (!plot(*st.record_file, *st.plot_file, say_warning, &why)) {
        say_error(why);
        return EXIT_FAILED;
      }
      std::cerr << "mi-stat: chart in " << *st.plot_file << "\n";
    }
    return last_status;
  }
  if (st.plot_file) {
    std::string why;
    if (!plot(*st.plot_from, *st.plot_file, say_warning, &why)) {
      say_error(why);
      return EXIT_FAILED;
    }
    std::cerr << "mi-stat: chart in " << *st.plot_file << "\n";
    return EXIT_OK;
  }
  const Take t = take(st);
  for (const auto& n : t.notes) say_warning(n);
  std::string out;
  if (st.json) {
    out = take_json(st, t).dump(2) + "\n";
  } else if (st.openmetrics) {
    if (st.mode == Mode::tree) {
      out = t.tree && t.tree->publishing > 0 ? openmetrics_tree(*t.tree, st.bins) : "# EOF\n";
    } else {
      out = openmetrics_list(t.shown, st.bins);
    }
  } else {
    out = take_text(st, t);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return status_of(st, t);
}

Settings parse(int argc, char** argv) {
  po::options_description desc;
  desc.add_options()                                  //
      ("help,h", "")                                  //
      ("version", "")                                 //
      ("all", "")                                     //
      ("bins", "")                                    //
      ("json", "")                                    //
      ("openmetrics", "")                             //
      ("tree", po::value<std::string>())              //
      ("watch", po::value<std::string>())             //
      ("record", po::value<std::string>())            //
      ("for", po::value<std::string>())               //
      ("interval", po::value<std::string>())          //
      ("plot", po::value<std::string>())              //
      ("from", po::value<std::string>())              //
      ("dir", po::value<std::vector<std::string>>())  //
      ("pids", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("pids", -1);
  const po::variables_map vm = cli::parse_command_line(argc, argv, desc, positional, TOOL, EXIT_USAGE);
  cli::help_or_version(vm, HELP_TEXT,
                       std::string("mi-stat (mimalloc-numa) ") + MI_STAT_VERSION +
                           " (reads statistics areas of version " + std::to_string(AREA_VERSION_KNOWN) + ")",
                       EXIT_OK);
  Settings st;
  auto str = [&](const char* k) { return vm[k].as<std::string>(); };
  if (vm.count("pids")) {
    for (const auto& p : vm["pids"].as<std::vector<std::string>>()) {
      if (!p.empty() && p[0] == '-') usage_error("unknown option " + p);
      st.pids.push_back(parse_pid("PID", p));
    }
    st.mode = Mode::pids;
  }
  if (vm.count("tree")) {
    if (st.mode == Mode::pids) usage_error("--tree PID and PIDs: give one or the other");
    st.tree_root = parse_pid("--tree", str("tree"));
    st.mode = Mode::tree;
  }
  st.all = vm.count("all") > 0;
  st.bins = vm.count("bins") > 0;
  st.json = vm.count("json") > 0;
  st.openmetrics = vm.count("openmetrics") > 0;
  if (st.all && st.mode != Mode::list) usage_error("--all goes with the list (mi-stat without PID or --tree)");
  if (st.json && st.openmetrics) usage_error("--json and --openmetrics: choose one");
  if (vm.count("watch")) st.watch = parse_seconds("watch", str("watch"));
  if (vm.count("record")) {
    st.record_file = str("record");
    if (st.record_file->empty()) usage_error("--record: give a file name");
  }
  if (vm.count("for")) {
    if (!st.record_file) usage_error("--for goes with --record FILE");
    st.record_for = parse_seconds("for", str("for"));
  }
  if (vm.count("interval")) {
    if (!st.record_file) usage_error("--interval goes with --record FILE (--watch takes its own SECS)");
    st.interval = parse_seconds("interval", str("interval"));
  }
  if (vm.count("plot")) {
    st.plot_file = str("plot");
    if (st.plot_file->empty()) usage_error("--plot: give a file name");
  }
  if (vm.count("from")) {
    if (!st.plot_file) usage_error("--from goes with --plot FILE.png");
    st.plot_from = str("from");
  }
  if (st.plot_file && !st.plot_from && !st.record_file) {
    usage_error("--plot draws a record: give --from RECORD, or --record FILE --for SECS to record it first");
  }
  if (st.plot_from && st.record_file) usage_error("--from and --record: --plot draws one or the other");
  if (st.plot_from && (st.mode != Mode::list || st.all || st.bins || st.json || st.openmetrics || st.watch)) {
    usage_error("--plot --from RECORD draws the record as it is: no other option goes with it");
  }
  if (st.watch && (st.json || st.openmetrics))
    usage_error("--watch shows the table; for a series in JSON use --record");
  if (st.watch && st.record_file) usage_error("--watch and --record: choose one");
  if (st.record_file && (st.json || st.openmetrics)) {
    usage_error("--record writes JSON lines already; --json and --openmetrics do not go with it");
  }
  if (st.record_file && st.all) usage_error("--all goes with the table, not with --record");
  if (vm.count("dir")) st.dirs = vm["dir"].as<std::vector<std::string>>();
  return st;
}

}  // namespace

}  // namespace mistat

int main(int argc, char** argv) {
  return cli::run_main(
      mistat::TOOL, [&] { return mistat::run(mistat::parse(argc, argv)); }, mistat::EXIT_FAILED, "");
}
