// discover.cpp: finding the published areas and the process tree (see discover.h).
#include "discover.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

namespace mistat {

bool proc_info(int64_t pid, ProcInfo* info) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  // The name is between the first '(' and the last ')': it may hold spaces
  // and parentheses itself.
  const size_t open = line.find('(');
  const size_t close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  info->pid = pid;
  info->comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 1));
  // Fields 3 (state) to 22 (starttime): 20 after the name.
  std::string field;
  std::vector<std::string> fields;
  while (fields.size() < 20 && rest >> field) fields.push_back(field);
  if (fields.size() < 20) return false;
  info->ppid = std::strtoll(fields[1].c_str(), nullptr, 10);
  info->start_ticks = std::strtoull(fields[19].c_str(), nullptr, 10);
  return true;
}

std::map<int64_t, ProcInfo> proc_table() {
  std::map<int64_t, ProcInfo> table;
  DIR* d = opendir("/proc");
  if (!d) return table;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long long pid = std::strtoll(e->d_name, &end, 10);
    if (end == e->d_name || *end != 0 || pid <= 0) continue;
    ProcInfo info;
    if (proc_info(pid, &info)) table[pid] = info;
  }
  closedir(d);
  return table;
}

std::vector<int64_t> proc_descendants(const std::map<int64_t, ProcInfo>& table, int64_t pid) {
  std::multimap<int64_t, int64_t> children;
  for (const auto& [p, info] : table) children.emplace(info.ppid, p);
  std::vector<int64_t> out{pid};
  for (size_t i = 0; i < out.size(); i++) {
    auto [lo, hi] = children.equal_range(out[i]);
    for (auto it = lo; it != hi; ++it) {
      if (it->second != out[i]) out.push_back(it->second);
    }
  }
  std::sort(out.begin() + 1, out.end());
  return out;
}

int Scan::unreadable_files() const {
  return int(
      std::count_if(entries.begin(), entries.end(), [](const Entry& e) { return e.state == EntryState::unreadable; }));
}

std::vector<std::string> default_dirs() {
  std::vector<std::string> dirs{MI_STATS_AREA_DIR_RUN};
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg)
    dirs.push_back(std::string(xdg) + "/mimalloc-numa");
  auto globbed = [&](const char* pattern) {
    glob_t g;
    if (glob(pattern, GLOB_ONLYDIR, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) dirs.push_back(g.gl_pathv[i]);
    }
    globfree(&g);
  };
  globbed("/run/user/*/mimalloc-numa");
  // /tmp is everyone's: /tmp/mimalloc-numa-UID counts only where UID owns it
  // (another user could make a directory of that name first).
  {
    glob_t g;
    if (glob("/tmp/mimalloc-numa-*", GLOB_ONLYDIR, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) {
        const char* uid_text = g.gl_pathv[i] + std::strlen("/tmp/mimalloc-numa-");
        char* end = nullptr;
        const unsigned long uid = std::strtoul(uid_text, &end, 10);
        struct stat st;
        if (end != uid_text && *end == 0 && lstat(g.gl_pathv[i], &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid) {
          dirs.push_back(g.gl_pathv[i]);
        }
      }
    }
    globfree(&g);
  }
  return dirs;
}

bool parse_name(const std::string& name, int64_t* pid, uint64_t* ticks) {
  const std::string suffix = MI_STATS_AREA_SUFFIX;
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string stem = name.substr(0, name.size() - suffix.size());
  const size_t dash = stem.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == stem.size()) return false;
  auto digits = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const std::string a = stem.substr(0, dash), b = stem.substr(dash + 1);
  if (!digits(a) || !digits(b) || a.size() > 10 || b.size() > 20) return false;
  *pid = std::strtoll(a.c_str(), nullptr, 10);
  *ticks = std::strtoull(b.c_str(), nullptr, 10);
  return *pid > 0;
}

Scan scan(const std::vector<std::string>& dirs, const std::vector<int64_t>& only) {
  Scan s;
  std::set<std::pair<dev_t, ino_t>> seen_dirs;
  std::set<std::pair<int64_t, uint64_t>> seen;
  for (const auto& dir : dirs) {
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (!seen_dirs.insert({st.st_dev, st.st_ino}).second) continue;  // $XDG_RUNTIME_DIR is also /run/user/UID
    DIR* d = opendir(dir.c_str());
    if (!d) {
      if (errno == EACCES) s.unreadable_dirs++;
      continue;
    }
    while (dirent* de = readdir(d)) {
      Entry e;
      if (!parse_name(de->d_name, &e.pid, &e.start_ticks)) continue;
      if (!only.empty() && std::find(only.begin(), only.end(), e.pid) == only.end()) continue;
      if (!seen.insert({e.pid, e.start_ticks}).second) continue;
      e.path = dir + "/" + de->d_name;
      ProcInfo info;
      if (!proc_info(e.pid, &info) || info.start_ticks != e.start_ticks) {
        e.state = EntryState::stale;
        e.problem = proc_info(e.pid, &info) ? "pid " + std::to_string(e.pid) + " is now another process"
                                            : "the process has ended";
        s.entries.push_back(std::move(e));
        continue;
      }
      ReadResult r = area_read(e.path, e.pid, e.start_ticks);
      switch (r.status) {
        case ReadStatus::ok:
          e.state = EntryState::live;
          e.snap = std::move(r.snap);
          break;
        case ReadStatus::unreadable: e.state = EntryState::unreadable; break;
        case ReadStatus::vanished: continue;  // it ended while we looked: neither listed nor counted
        case ReadStatus::invalid:
        case ReadStatus::busy:
          e.state = EntryState::invalid;
          e.problem = r.problem;
          break;
      }
      s.entries.push_back(std::move(e));
    }
    closedir(d);
  }
  std::sort(s.entries.begin(), s.entries.end(), [](const Entry& a, const Entry& b) {
    return a.pid != b.pid ? a.pid < b.pid : a.start_ticks < b.start_ticks;
  });
  return s;
}

}  // namespace mistat

namespace mistat {

bool tree_build(int64_t root, const Scan& scan, Tree* tree) {
  const auto table = proc_table();
  if (table.find(root) == table.end()) return false;
  *tree = Tree{};
  tree->root = root;
  for (int64_t pid : proc_descendants(table, root)) {
    const ProcInfo& info = table.at(pid);
    const Entry* found = nullptr;
    for (const auto& e : scan.entries) {
      if (e.pid == pid && e.start_ticks == info.start_ticks && e.state == EntryState::live) found = &e;
    }
    if (found) {
      tree->members.push_back({pid, found->snap.program, true});
      tree->publishing++;
      tree->sum.add(found->snap.fig);
      if (tree->updated_unix_ms == 0 || found->snap.updated_unix_ms < tree->updated_unix_ms) {
        tree->updated_unix_ms = found->snap.updated_unix_ms;
      }
    } else {
      tree->members.push_back({pid, info.comm, false});
    }
  }
  return true;
}

}  // namespace mistat
