// discover.h: which processes publish statistics, and the process tree.
//
// Owns: the directories a publisher may use (include/mimalloc-numa-stats.h:
// /run/mimalloc-numa; $XDG_RUNTIME_DIR/mimalloc-numa, and every user's
// /run/user/UID/mimalloc-numa; /tmp/mimalloc-numa-UID, only where UID owns
// it), the file names "<pid>-<starttime>.stats", the liveness check against
// /proc/PID/stat (a dead pid or another start time: stale), and /proc's
// process table (parent, name, start time) for --tree. Reading one file is
// area.h's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "area.h"

namespace mistat {

// A process as /proc/PID/stat shows it.
struct ProcInfo {
  int64_t pid = 0;
  int64_t ppid = 0;
  uint64_t start_ticks = 0;  // field 22
  std::string comm;          // field 2, without the parentheses
};

// /proc/PID/stat of one process; false when there is none (it ended).
bool proc_info(int64_t pid, ProcInfo* info);

// Every process in /proc, by pid.
std::map<int64_t, ProcInfo> proc_table();

// pid and its descendants (children of children...), pid first, then by pid.
std::vector<int64_t> proc_descendants(const std::map<int64_t, ProcInfo>& table, int64_t pid);

enum class EntryState {
  live,        // read: snap holds the figures
  stale,       // the process is gone, or its pid now belongs to another process
  unreadable,  // another user's file
  invalid,     // a file mi-stat cannot read; problem says why
};

struct Entry {
  std::string path;
  int64_t pid = 0;
  uint64_t start_ticks = 0;
  EntryState state = EntryState::invalid;
  std::string problem;
  Snapshot snap;
};

struct Scan {
  std::vector<Entry> entries;    // by pid
  int unreadable_dirs = 0;       // directories this user cannot list (other users' /run/user/UID)
  int unreadable_files() const;  // entries that are unreadable
};

// The directories searched by default, in order, without duplicates.
std::vector<std::string> default_dirs();

// Scans `dirs` (each one's *.stats files) and reads every live process's area.
// `only`: when not empty, only these pids are read (others are not opened).
Scan scan(const std::vector<std::string>& dirs, const std::vector<int64_t>& only = {});

// Parses "<pid>-<starttime>.stats"; false for any other name.
bool parse_name(const std::string& name, int64_t* pid, uint64_t* ticks);

}  // namespace mistat

namespace mistat {

// A process and its descendants, their figures added up (mi-stat --tree).
struct Tree {
  struct Member {
    int64_t pid;
    std::string program;  // the area's name when it publishes, else /proc's
    bool publishes;
  };
  int64_t root = 0;
  std::vector<Member> members;  // the root first
  int publishing = 0;
  int64_t updated_unix_ms = 0;  // the oldest of the figures added up
  Figures sum;
};

// The tree of `root` from /proc now, added up from the live entries of `scan`.
// false when `root` is not a running process.
bool tree_build(int64_t root, const Scan& scan, Tree* tree);

}  // namespace mistat
