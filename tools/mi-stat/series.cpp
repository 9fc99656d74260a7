// series.cpp: --record and --plot (see series.h).
#include "series.h"

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

extern char** environ;

namespace mistat {

namespace {

volatile sig_atomic_t stop_flag = 0;

void on_stop(int) { stop_flag = 1; }

}  // namespace

bool stop_requested() { return stop_flag != 0; }

void install_stop_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool sleep_unless_stopped(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop_requested()) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(left, std::chrono::milliseconds(50)));
  }
  return false;
}

long record(const std::string& path, double duration, double interval, const std::function<Json()>& take,
            std::string* why) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    *why = "cannot write " + path + ": " + std::strerror(errno);
    return -1;
  }
  const auto start = std::chrono::steady_clock::now();
  long samples = 0;
  for (long k = 0;; k++) {
    // Samples at start + k * interval, whatever one sample took.
    const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(double(k) * interval));
    if (duration > 0 && double(k) * interval > duration + 1e-9) break;
    const double wait = std::chrono::duration<double>(due - std::chrono::steady_clock::now()).count();
    if (wait > 0 && !sleep_unless_stopped(wait)) break;
    if (stop_requested()) break;
    const std::string line = take().dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fflush(f) != 0) {
      *why = "cannot write " + path + ": " + std::strerror(errno);
      std::fclose(f);
      return -1;
    }
    samples++;
  }
  if (std::fclose(f) != 0) {
    *why = "cannot write " + path + ": " + std::strerror(errno);
    return -1;
  }
  return samples;
}

namespace {

struct Point {
  double t;                       // seconds since the first sample
  std::vector<double> committed;  // per node, bytes
  std::vector<double> in_use;
  double purged = 0;  // bytes, cumulative
  double purges = 0;  // count, cumulative
};

bool in_path(const char* program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string p = path;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (dir.empty()) dir = ".";
    if (access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// A string for gnuplot, single-quoted (a quote doubled).
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else if (c != '\n') out += c;
  }
  return out + "'";
}

// The figures of one sample: a tree's, or every listed process's added up.
bool sample_point(const Json& doc, Point* p) {
  auto add_nodes = [&](const Json& nodes) {
    for (const auto& n : nodes) {
      const size_t i = n.at("node").get<size_t>();
      if (i >= MI_STATS_AREA_NODES_MAX) continue;
      if (p->committed.size() <= i) {
        p->committed.resize(i + 1, 0.0);
        p->in_use.resize(i + 1, 0.0);
      }
      p->committed[i] += n.at("committed").get<double>();
      p->in_use[i] += n.at("in_use").get<double>();
    }
  };
  if (doc.contains("tree_root")) {
    add_nodes(doc.at("nodes"));
    p->purged = doc.at("totals").at("purged").get<double>();
    p->purges = doc.at("purges").get<double>();
  } else {
    for (const auto& proc : doc.at("list")) {
      add_nodes(proc.at("nodes"));
      p->purged += proc.at("totals").at("purged").get<double>();
      p->purges += proc.at("purges").get<double>();
    }
  }
  return true;
}

std::string title_of(const Json& doc) {
  if (doc.contains("tree_root")) {
    std::string prog;
    if (!doc.at("members").empty()) prog = doc.at("members")[0].value("program", "");
    return "process tree of " + std::to_string(doc.at("tree_root").get<int64_t>()) + " (" + prog + ")";
  }
  const auto& list = doc.at("list");
  if (list.size() == 1) {
    return "pid " + std::to_string(list[0].at("pid").get<int64_t>()) + " (" + list[0].value("program", "") + ")";
  }
  return std::to_string(list.size()) + " processes";
}

struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) unlink(path.c_str());
  }
  bool make(const char* tag, std::string* why) {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/mi-stat-" + tag + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back(0);
    const int fd = mkstemp(buf.data());
    if (fd < 0) {
      *why = "cannot make a temporary file in " + tmpl + ": " + std::strerror(errno);
      return false;
    }
    close(fd);
    path = buf.data();
    return true;
  }
};

}  // namespace

bool plot(const std::string& record_path, const std::string& png_path,
          const std::function<void(const std::string&)>& warn, std::string* why) {
  if (!in_path("gnuplot")) {
    *why = "gnuplot not found: --plot draws with gnuplot (Debian: apt install gnuplot-nox); the record " + record_path +
           " is kept";
    return false;
  }
  std::ifstream in(record_path);
  if (!in) {
    *why = "cannot read " + record_path + ": " + std::strerror(errno);
    return false;
  }
  std::vector<Point> points;
  std::string title;
  int64_t first_ms = 0;
  std::string line;
  for (long lineno = 1; std::getline(in, line); lineno++) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const Json doc = Json::parse(line);
      Point p;
      const int64_t t = doc.at("time_unix_ms").get<int64_t>();
      sample_point(doc, &p);
      if (points.empty()) {
        first_ms = t;
        title = title_of(doc);
      }
      p.t = double(t - first_ms) / 1000.0;
      points.push_back(std::move(p));
    } catch (const std::exception& e) {
      warn(record_path + ":" + std::to_string(lineno) + ": not a sample of mi-stat --record (" + e.what() +
           "); skipped");
    }
  }
  if (points.empty()) {
    *why = record_path + " holds no sample (mi-stat --record FILE --for SECS writes one)";
    return false;
  }
  size_t nodes = 1;
  for (const auto& p : points) nodes = std::max(nodes, p.committed.size());

  // The data: time, then committed and in use (MiB) of each node, then the
  // purge rates over the interval before the sample (0 for the first; a
  // process that left the list makes the sum go down: counted as 0).
  TempFile data, script;
  if (!data.make("data", why) || !script.make("plot", why)) return false;
  {
    std::ofstream d(data.path);
    for (size_t k = 0; k < points.size(); k++) {
      const Point& p = points[k];
      d << p.t;
      for (size_t i = 0; i < nodes; i++) {
        d << ' ' << (i < p.committed.size() ? p.committed[i] / 1048576.0 : 0.0) << ' '
          << (i < p.in_use.size() ? p.in_use[i] / 1048576.0 : 0.0);
      }
      double purged_rate = 0, purges_rate = 0;
      if (k > 0) {
        const double dt = p.t - points[k - 1].t;
        if (dt > 0) {
          purged_rate = std::max(0.0, p.purged - points[k - 1].purged) / 1048576.0 / dt;
          purges_rate = std::max(0.0, p.purges - points[k - 1].purges) / dt;
        }
      }
      d << ' ' << purged_rate << ' ' << purges_rate << '\n';
    }
    if (!d) {
      *why = "cannot write " + data.path;
      return false;
    }
  }
  char started[32] = "?";
  {
    const time_t t = time_t(first_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S", &tm);
  }
  const size_t purged_col = 2 + 2 * nodes;
  std::string s;
  s += "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1100,800 font ',10' } "
       "else { set terminal png size 1100,800 }\n";
  s += "set output " + gp_quote(png_path) + "\n";
  s += "set multiplot layout 2,1 title " + gp_quote("mimalloc-numa: " + title + ", from " + started) + "\n";
  s += "set grid\nset key outside right top\nset xlabel 'seconds'\n";
  s += "set ylabel 'MiB'\nset title 'memory per NUMA node (solid: committed, dashed: in use)'\n";
  s += "plot ";
  for (size_t i = 0; i < nodes; i++) {
    const std::string df = gp_quote(data.path);
    if (i) s += ", ";
    s += df + " using 1:" + std::to_string(2 + 2 * i) + " with lines lw 2 lc " + std::to_string(i + 1) +
         " dt 1 title 'node " + std::to_string(i) + " committed', ";
    s += df + " using 1:" + std::to_string(3 + 2 * i) + " with lines lw 2 lc " + std::to_string(i + 1) +
         " dt 2 title 'node " + std::to_string(i) + " in use'";
  }
  s += "\n";
  s += "set title 'purge activity'\nset ylabel 'MiB/s purged'\nset y2label 'purges/s'\nset ytics nomirror\n"
       "set y2tics\nset yrange [0:*]\nset y2range [0:*]\n";
  s += "plot " + gp_quote(data.path) + " using 1:" + std::to_string(purged_col) +
       " with steps lw 2 lc 7 title 'MiB/s purged', " + gp_quote(data.path) +
       " using 1:" + std::to_string(purged_col + 1) + " axes x1y2 with steps lw 1 lc 6 title 'purges/s'\n";
  s += "unset multiplot\nset output\n";
  {
    std::ofstream out(script.path);
    out << s;
    if (!out) {
      *why = "cannot write " + script.path;
      return false;
    }
  }
  pid_t child;
  char arg0[] = "gnuplot";
  std::vector<char> arg1(script.path.begin(), script.path.end());
  arg1.push_back(0);
  char* argv[] = {arg0, arg1.data(), nullptr};
  if (posix_spawnp(&child, "gnuplot", nullptr, nullptr, argv, environ) != 0) {
    *why = std::string("cannot run gnuplot: ") + std::strerror(errno);
    return false;
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = "gnuplot failed (its messages are above) drawing " + png_path;
    return false;
  }
  struct stat st;
  if (stat(png_path.c_str(), &st) != 0 || st.st_size == 0) {
    *why = "gnuplot wrote no " + png_path;
    return false;
  }
  return true;
}

}  // namespace mistat
