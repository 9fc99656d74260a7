// Unit tests of lib/common/stats and the report (api/stats_report.cpp,
// api/stats_file.cpp): gauges (current / peak / total), the per-thread
// counters merged into the process totals (at thread exit and on
// mi_stats_merge), reset, the printed report (every line tagged with the pid,
// handed over in one piece), a fork child's own start and totals, two
// children exiting at once, and the stats_file option (pattern, file mode,
// from the environment and the config file, bad values, an unopenable file).
#include "common/stats.h"
#include "api/stats_report.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <fcntl.h>
#include <mimalloc-numa.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/stats_file.h"
#include "common/options.h"

#include "heap/heap.h"
#include "heap/heap_stats.h"
#include "heap/page.h"
#include "heap/size_class.h"
#include "os/os.h"
#include "unit_util.h"

namespace {

constexpr size_t MiB = 1024 * 1024;

TEST(Stats, GaugeCurrentPeakTotal) {
  mi::StatGauge g{};
  mi::stat_increase(g, 5);
  mi::stat_increase(g, 3);
  EXPECT_EQ(g.current.load(), 8);
  EXPECT_EQ(g.peak.load(), 8);
  EXPECT_EQ(g.total.load(), 8);
  mi::stat_decrease(g, 6);
  EXPECT_EQ(g.current.load(), 2);
  EXPECT_EQ(g.peak.load(), 8) << "the peak stays";
  EXPECT_EQ(g.total.load(), 8) << "the total counts increases only";
  mi::stat_increase(g, 4);
  EXPECT_EQ(g.current.load(), 6);
  EXPECT_EQ(g.peak.load(), 8);
  EXPECT_EQ(g.total.load(), 12);
  mi::stat_increase(g, 10);
  EXPECT_EQ(g.peak.load(), 16);
  std::atomic<int64_t> c{0};
  mi::stat_counter(c, 7);
  mi::stat_counter(c, -2);
  EXPECT_EQ(c.load(), 5);
}

TEST(Stats, GaugePeakUnderConcurrency) {
  mi::StatGauge g{};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; i++) {
        mi::stat_increase(g, 1);
        mi::stat_decrease(g, 1);
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(g.current.load(), 0);
  EXPECT_EQ(g.total.load(), 40000);
  EXPECT_GE(g.peak.load(), 1);
  EXPECT_LE(g.peak.load(), 4);
}

TEST(Stats, ThreadCountersAreMergedAtExit) {
  const size_t bin_small = mi::bin_of_size(48);  // a direct size: counted per heap by word size
  const size_t bin_mid = mi::bin_of_size(3000);  // counted in the thread's stats by bin
  const int64_t small0 = mi::stats_global.bin_malloc[bin_small].load();
  const int64_t mid0 = mi::stats_global.bin_malloc[bin_mid].load();
  const int64_t huge0 = mi::stats_global.bin_malloc[mi::BIN_HUGE].load();
  const int64_t huge_allocs0 = mi::stats_global.huge_allocs.load();
  const int64_t huge_bytes0 = mi::stats_global.huge_alloc_bytes.load();
  const int64_t extended0 = mi::stats_global.pages_extended.load();
  std::thread([] {
    std::vector<void*> v;
    for (int i = 0; i < 100; i++) v.push_back(mi_malloc(48));
    for (int i = 0; i < 30; i++) v.push_back(mi_malloc(3000));
    v.push_back(mi_malloc(5 * MiB));
    for (void* p : v) mi_free(p);
  }).join();
  EXPECT_EQ(mi::stats_global.bin_malloc[bin_small].load() - small0, 100);
  EXPECT_EQ(mi::stats_global.bin_malloc[bin_mid].load() - mid0, 30);
  EXPECT_EQ(mi::stats_global.bin_malloc[mi::BIN_HUGE].load() - huge0, 1);
  EXPECT_EQ(mi::stats_global.huge_allocs.load() - huge_allocs0, 1);
  EXPECT_EQ(mi::stats_global.huge_alloc_bytes.load() - huge_bytes0, static_cast<int64_t>(5 * MiB));
  EXPECT_GE(mi::stats_global.pages_extended.load() - extended0, 3);
}

TEST(Stats, MergeOnDemand) {
  const size_t bin = mi::bin_of_size(72);
  mi_stats_merge();
  const int64_t before = mi::stats_global.bin_malloc[bin].load();
  std::vector<void*> v;
  v.reserve(20);
  for (int i = 0; i < 20; i++) v.push_back(mi_malloc(72));
  EXPECT_EQ(mi::stats_global.bin_malloc[bin].load(), before) << "counted in the thread until merged";
  mi_stats_merge();
  EXPECT_EQ(mi::stats_global.bin_malloc[bin].load() - before, 20);
  // the blocks left in the page's free list are counted when they are allocated, not before
  for (int i = 0; i < 5; i++) v.push_back(mi_malloc(72));
  mi_stats_merge();
  EXPECT_EQ(mi::stats_global.bin_malloc[bin].load() - before, 25);
  mi_stats_merge();
  EXPECT_EQ(mi::stats_global.bin_malloc[bin].load() - before, 25) << "a second merge adds nothing";
  for (void* p : v) mi_free(p);
}

TEST(Stats, SegmentAndPageGauges) {
  const int64_t segs = mi::stats_global.segments.current.load();
  const int64_t segs_total = mi::stats_global.segments.total.load();
  const int64_t huge = mi::stats_global.huge_bytes.current.load();
  void* p = mi_malloc(9 * MiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs + 1);
  EXPECT_EQ(mi::stats_global.segments.total.load(), segs_total + 1);
  EXPECT_GE(mi::stats_global.segments.peak.load(), segs + 1);
  EXPECT_GE(mi::stats_global.huge_bytes.current.load() - huge, static_cast<int64_t>(9 * MiB));
  mi_free(p);
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs);
  EXPECT_EQ(mi::stats_global.huge_bytes.current.load(), huge);
}

TEST(Stats, ResetKeepsCurrentValues) {
  void* p = mi_malloc(6 * MiB);
  mi_stats_merge();
  const int64_t segs = mi::stats_global.segments.current.load();
  const int64_t pages = mi::stats_global.pages.current.load();
  mi_stats_reset();
  EXPECT_EQ(mi::stats_global.segments.current.load(), segs);
  EXPECT_EQ(mi::stats_global.segments.peak.load(), segs) << "the peak restarts from the current value";
  EXPECT_EQ(mi::stats_global.segments.total.load(), 0);
  EXPECT_EQ(mi::stats_global.pages.current.load(), pages);
  EXPECT_EQ(mi::stats_global.pages.total.load(), 0);
  for (size_t b = 0; b <= mi::BIN_HUGE; b++) EXPECT_EQ(mi::stats_global.bin_malloc[b].load(), 0) << b;
  EXPECT_EQ(mi::stats_global.huge_allocs.load(), 0);
  EXPECT_EQ(mi::os_counters.committed_peak.load(), mi::os_counters.committed.load());
  mi_free(p);
}

struct Text {
  std::string s;
  int calls = 0;
};
void collect(const char* msg, void* arg) {
  static_cast<Text*>(arg)->s += msg;
  static_cast<Text*>(arg)->calls++;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) v.push_back(line);
  return v;
}

// The pid a report line is tagged with ("[4711] ..."), or -1.
long pid_of_line(const std::string& line) {
  if (line.size() < 3 || line[0] != '[') return -1;
  size_t end = line.find("] ");
  if (end == std::string::npos || end < 2) return -1;
  for (size_t i = 1; i < end; i++) {
    if (line[i] < '0' || line[i] > '9') return -1;
  }
  return std::stol(line.substr(1, end - 1));
}

TEST(Stats, Report) {
  void* p = mi_malloc(5 * MiB);
  std::vector<void*> v;
  for (int i = 0; i < 10; i++) v.push_back(mi_malloc(200));
  mi_stats_merge();
  Text t;
  t.s.reserve(1 << 16);
  mi::stats_print(&collect, &t);
  EXPECT_EQ(t.calls, 1) << "a report is handed to the output in one piece";
  for (const char* needle : {"mimalloc-numa 0.1.0 statistics of unit_stats",
                             "memory",
                             "reserved",
                             "committed",
                             "segments",
                             "blocks",
                             "purged",
                             "  node 0 ",
                             "  outside arenas ",
                             "  metadata ",
                             "  total ",
                             "  peak ",
                             "blocks over 2 MiB: 1 live",
                             "objects",
                             "pages",
                             "threads",
                             "arenas:",
                             "os calls:",
                             "allocations by size class",
                             "process:",
                             "since this process started"}) {
    EXPECT_NE(t.s.find(needle), std::string::npos) << needle << " missing from:\n" << t.s;
  }
  EXPECT_EQ(t.s.find("huge blocks"), std::string::npos) << "blocks over 2 MiB are not huge pages:\n" << t.s;
  EXPECT_EQ(t.s.find("node -1"), std::string::npos) << t.s;
  // every line ends with a newline and starts with the pid
  EXPECT_EQ(t.s.back(), '\n');
  const long me = static_cast<long>(getpid());
  for (const std::string& line : lines_of(t.s)) EXPECT_EQ(pid_of_line(line), me) << line;
  for (void* q : v) mi_free(q);
  mi_free(p);
}

TEST(Stats, ThreadReportLinesCarryThePid) {
  void* p = mi_malloc(100);
  Text t;
  mi_thread_stats_print_out(&collect, &t);
  EXPECT_EQ(t.calls, 1);
  for (const std::string& line : lines_of(t.s)) EXPECT_EQ(pid_of_line(line), static_cast<long>(getpid())) << line;
  mi_free(p);
}

// --- a fork child's statistics are its own ------------------------------------
TEST(StatsFork, ChildCountsFromItsOwnStart) {
  std::vector<void*> v;
  for (int i = 0; i < 100; i++) v.push_back(mi_malloc(64));
  usleep(300 * 1000);
  size_t parent_elapsed = 0;
  mi_process_info(&parent_elapsed, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  ASSERT_GE(parent_elapsed, 300u);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // nothing here may allocate before the checks: the counts must be zero
    size_t elapsed = 0;
    mi_process_info(&elapsed, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    int bad = 0;
    if (elapsed >= 250) bad |= 1;
    for (size_t b = 0; b <= mi::BIN_HUGE; b++) {
      if (mi::stats_global.bin_malloc[b].load() != 0) bad |= 2;
    }
    if (mi::stats_global.segments.total.load() != 0 || mi::stats_global.pages.total.load() != 0) bad |= 4;
    int64_t in_free[mi::BIN_HUGE + 1];  // blocks counted ahead of their allocation
    mi::heap_stats_settle(mi::heap_get_default()->tld, in_free);
    const size_t b64 = mi::bin_of_size(64);
    if (mi::heap_get_default()->tld->stats.bin_malloc[b64] != in_free[b64]) bad |= 8;
    if (mi::stats_global.segments.current.load() == 0) bad |= 16;  // the memory it inherited is still counted
    _exit(bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: elapsed counts from the parent's start; 2, 4, 8: the parent's totals; "
                                       "16: the inherited memory is gone from the figures";
  for (void* p : v) mi_free(p);
}

// Two forked children exit at the same moment with show_stats on, their
// stderr (or stats_file) in one file: two whole reports, every line with the
// pid of the child that wrote it.
struct Children {
  pid_t pid[2];
};

Children fork_two_reporters(int out_fd, const char* stats_file) {
  int go[2];
  Children c{{-1, -1}};
  if (pipe(go) != 0) return c;
  for (int k = 0; k < 2; k++) {
    pid_t pid = fork();
    if (pid == 0) {
      close(go[1]);
      if (out_fd >= 0) dup2(out_fd, STDERR_FILENO);
      mi_option_set(mi_option_show_stats, 1);
      if (stats_file != nullptr) mi_option_set_string(mi_option_stats_file, stats_file);
      // many size classes: a report of several KiB, more than one pipe buffer's atomic write
      std::vector<void*> keep;
      for (size_t s = 8; s < 300 * 1024; s = s * 5 / 4 + 8) keep.push_back(mi_malloc(s));
      char ch;
      while (read(go[0], &ch, 1) < 0 && errno == EINTR) {
      }
      exit(0);  // the report is written at exit, by the library's destructor
    }
    c.pid[k] = pid;
  }
  close(go[0]);
  usleep(100 * 1000);
  close(go[1]);  // both children see end-of-file at once
  for (pid_t pid : c.pid) {
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
  }
  return c;
}

// Checks that `text` holds whole reports of exactly the pids in `want`.
void expect_whole_reports(const std::string& text, std::vector<long> want) {
  std::vector<long> order;  // the pid of each run of lines
  std::map<long, std::vector<std::string>> lines;
  for (const std::string& line : lines_of(text)) {
    const long pid = pid_of_line(line);
    ASSERT_NE(pid, -1) << "a line without its pid: '" << line << "' in:\n" << text;
    if (order.empty() || order.back() != pid) order.push_back(pid);
    lines[pid].push_back(line);
  }
  std::sort(want.begin(), want.end());
  std::vector<long> runs = order;
  std::sort(runs.begin(), runs.end());
  EXPECT_EQ(runs, want) << "each process's lines in one piece, once:\n" << text;
  for (long pid : want) {
    const std::vector<std::string>& l = lines[pid];
    ASSERT_GT(l.size(), 20u) << pid;
    EXPECT_NE(l.front().find("mimalloc-numa 0.1.0 statistics of"), std::string::npos) << l.front();
    EXPECT_NE(l.back().find("] process: "), std::string::npos) << l.back();
  }
}

std::string temp_dir() {
  char d[] = "/tmp/mi-stats-XXXXXX";
  return mkdtemp(d) != nullptr ? d : "";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(StatsFork, TwoChildrenExitingAtOnceOnStderr) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/stderr.txt";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  ASSERT_GE(fd, 0);
  Children c = fork_two_reporters(fd, nullptr);
  close(fd);
  expect_whole_reports(read_file(path), {c.pid[0], c.pid[1]});
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST(StatsFork, TwoChildrenExitingAtOnceInOneStatsFile) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/all.txt";
  Children c = fork_two_reporters(-1, path.c_str());
  expect_whole_reports(read_file(path), {c.pid[0], c.pid[1]});
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST(StatsFork, OneStatsFilePerProcess) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string pattern = dir + "/%n-%p.txt";
  Children c = fork_two_reporters(-1, pattern.c_str());
  for (pid_t pid : c.pid) {
    const std::string path = dir + "/unit_stats-" + std::to_string(pid) + ".txt";
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    const mode_t mask = umask(0);
    umask(mask);
    EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask) << path;
    EXPECT_EQ(st.st_uid, getuid());
    expect_whole_reports(read_file(path), {pid});
    unlink(path.c_str());
  }
  rmdir(dir.c_str());
}

// --- the stats_file option --------------------------------------------------------
TEST(StatsFile, PatternExpansion) {
  char out[256];
  ASSERT_TRUE(mi::stats_file_expand("/var/log/m/%n.%p.%t.%%p.txt", out, sizeof(out)));
  const std::string want =
      "/var/log/m/unit_stats." + std::to_string(getpid()) + "." + std::to_string(mi::stats_start_time_s()) + ".%p.txt";
  EXPECT_EQ(std::string(out), want);
  const time_t now = time(nullptr);
  EXPECT_LE(mi::stats_start_time_s(), now);
  EXPECT_GT(mi::stats_start_time_s(), now - 3600) << "the start time is in seconds since the epoch";
  EXPECT_FALSE(mi::stats_file_expand("/a/%p%p%p%p", out, 8)) << "too long for the buffer";
  char name[64];
  EXPECT_STREQ(mi::stats_program_name(name, sizeof(name)), "unit_stats");
}

TEST(StatsFile, WhatTheOptionTakes) {
  const mi::OptionDesc& d = mi::option_desc(mi_option_stats_file);
  EXPECT_EQ(d.kind, mi::OptionKind::path);
  const char* expected = nullptr;
  for (const char* ok : {"", "/var/log/mimalloc-numa/%p.txt", "/tmp/x", "/a/%n-%t-%%.txt"}) {
    EXPECT_TRUE(mi::option_check_string(d, ok, &expected)) << ok;
  }
  for (const char* bad : {"relative.txt", "./x", "/a/%d.txt", "/a/b%", "/a/\tb", "~/x"}) {
    EXPECT_FALSE(mi::option_check_string(d, bad, &expected)) << bad;
    EXPECT_NE(std::string(expected).find("absolute file name"), std::string::npos) << expected;
  }
  EXPECT_FALSE(mi::option_check_string(d, ("/" + std::string(2000, 'a')).c_str(), &expected));
  EXPECT_NE(std::string(expected).find("shorter than"), std::string::npos) << expected;
}

TEST(StatsFile, TheApi) {
  char buf[64];
  ASSERT_EQ(mi_option_get(mi_option_stats_file), 0) << "unset by default";
  EXPECT_EQ(mi_option_get_string(mi_option_stats_file, buf, sizeof(buf)), 0u);
  EXPECT_STREQ(buf, "");
  EXPECT_TRUE(mi_option_set_string(mi_option_stats_file, "/tmp/mi-%p.txt"));
  EXPECT_EQ(mi_option_get(mi_option_stats_file), 1);
  EXPECT_EQ(mi_option_get_string(mi_option_stats_file, buf, sizeof(buf)), 14u);
  EXPECT_STREQ(buf, "/tmp/mi-%p.txt");
  char small[5];
  EXPECT_EQ(mi_option_get_string(mi_option_stats_file, small, sizeof(small)), 14u) << "the full length";
  EXPECT_STREQ(small, "/tmp");
  // a bad value warns and keeps the old one
  Text warned;
  mi_register_output(&collect, &warned);
  EXPECT_FALSE(mi_option_set_string(mi_option_stats_file, "stats.txt"));
  mi_option_set(mi_option_stats_file, 7);  // a long cannot name a file
  EXPECT_FALSE(mi_option_set_string(mi_option_verbose, "/tmp/x")) << "not a string option";
  mi_register_output(nullptr, nullptr);
  EXPECT_NE(warned.s.find("mi_option_set_string(stats_file, \"stats.txt\"): expected an absolute file name"),
            std::string::npos)
      << warned.s;
  EXPECT_NE(warned.s.find("mi_option_set(stats_file, 7): this option takes a file name"), std::string::npos)
      << warned.s;
  EXPECT_EQ(mi_option_get_string(mi_option_stats_file, buf, sizeof(buf)), 14u);
  mi_option_set(mi_option_stats_file, 0);  // unsets it
  EXPECT_EQ(mi_option_get(mi_option_stats_file), 0);
  EXPECT_EQ(mi_option_get_string(mi_option_stats_file, buf, sizeof(buf)), 0u);
  EXPECT_TRUE(mi_option_set_string(mi_option_stats_file, nullptr));
  EXPECT_EQ(mi_option_get(mi_option_stats_file), 0);
}

TEST(StatsFileChild, DISABLED_Allocate) {
  std::vector<void*> v;
  for (int i = 0; i < 50; i++) v.push_back(mi_malloc(static_cast<size_t>(i) * 100 + 8));
  for (void* p : v) mi_free(p);
  printf("@@pid=%ld\n", static_cast<long>(getpid()));
}

long child_pid(const unit::ChildResult& r) {
  size_t at = r.out.find("@@pid=");
  return at == std::string::npos ? -1 : std::stol(r.out.substr(at + 6));
}

TEST(StatsFile, FromTheEnvironment) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  unit::ChildResult r = unit::run_child("StatsFileChild.DISABLED_Allocate",
                                        {"MIMALLOC_SHOW_STATS=1", "MIMALLOC_STATS_FILE=" + dir + "/run-%p.txt"});
  ASSERT_EQ(r.status, 0) << r.describe();
  const long pid = child_pid(r);
  const std::string path = dir + "/run-" + std::to_string(pid) + ".txt";
  expect_whole_reports(read_file(path), {pid});
  EXPECT_EQ(r.err.find("statistics of"), std::string::npos) << "the report went to the file, not stderr:\n" << r.err;
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST(StatsFile, FromTheConfigFile) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string config = dir + "/mi.toml";
  {
    std::ofstream f(config);
    f << "[options]\nshow_stats = true\nstats_file = \"" << dir << "/cfg-%p.txt\"\n";
  }
  unit::ChildResult r = unit::run_child("StatsFileChild.DISABLED_Allocate", {"MIMALLOC_CONFIG=" + config});
  ASSERT_EQ(r.status, 0) << r.describe();
  const long pid = child_pid(r);
  const std::string path = dir + "/cfg-" + std::to_string(pid) + ".txt";
  expect_whole_reports(read_file(path), {pid});
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  unlink(path.c_str());
  unlink(config.c_str());
  rmdir(dir.c_str());
}

TEST(StatsFile, AFileThatCannotBeOpenedIsOneWarningAndStderr) {
  unit::ChildResult r = unit::run_child("StatsFileChild.DISABLED_Allocate",
                                        {"MIMALLOC_SHOW_STATS=1", "MIMALLOC_STATS_FILE=/nonexistent-mi-dir/%p.txt"});
  ASSERT_EQ(r.status, 0) << r.describe();
  const long pid = child_pid(r);
  const std::string warning = "mimalloc-numa: warning: cannot open the statistics file /nonexistent-mi-dir/" +
                              std::to_string(pid) +
                              ".txt (stats_file): No such file or directory; the statistics go to stderr";
  EXPECT_NE(r.err.find(warning), std::string::npos) << r.err;
  // the report follows on stderr, whole
  const size_t at = r.err.find("[" + std::to_string(pid) + "] mimalloc-numa");
  ASSERT_NE(at, std::string::npos) << r.err;
  expect_whole_reports(r.err.substr(at), {pid});
}

TEST(StatsFile, BadValuesAreWarningsNamingTheSource) {
  unit::ChildResult r = unit::run_child("StatsFileChild.DISABLED_Allocate", {"MIMALLOC_STATS_FILE=stats.txt"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.err.find("mimalloc-numa: warning: environment variable MIMALLOC_STATS_FILE has an invalid "
                       "value \"stats.txt\": expected an absolute file name"),
            std::string::npos)
      << r.err;
  const std::string dir = temp_dir();
  const std::string config = dir + "/bad.toml";
  {
    std::ofstream f(config);
    f << "[options]\nstats_file = \"/x/%d.txt\"\nstats_file2 = 1\n";
  }
  Text t;
  EXPECT_EQ(mi_config_check(config.c_str(), &collect, &t), 2);
  EXPECT_NE(t.s.find(config + ":2: option 'stats_file': expected an absolute file name"), std::string::npos) << t.s;
  unlink(config.c_str());
  rmdir(dir.c_str());
}

TEST(Stats, ElapsedSinceStart) {
  const int64_t a = mi::stats_elapsed_ms();
  EXPECT_GE(a, 0);
  mi::stats_set_process_start();  // only the first call counts
  EXPECT_GE(mi::stats_elapsed_ms(), a);
}

}  // namespace
