// area.h: one process's published statistics area (include/mimalloc-numa-stats.h),
// read without stopping the process.
//
// Owns: mapping the file read-only, the sequence-lock copy (copy, retry while
// seq is odd or changed, give up after a bound), the validation of the copy
// (magic, version, size, offsets, counts, the program's name, the pid and
// start time against the file's name), and the figures taken out of it into
// plain structs that can be added up (a process tree). Where the files are and
// which process is alive is discover.h's.
#pragma once

#include <mimalloc-numa-stats.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mistat {

// The version of the area this mi-stat reads. A newer one is reported, not
// guessed at: the header gives no size of the array elements, so fields
// appended to them would move every entry after the first.
constexpr uint32_t AREA_VERSION_KNOWN = MI_STATS_AREA_VERSION;

// The figures of one process, or of several added up.
struct Figures {
  int64_t threads = 0;
  int64_t segments = 0;
  int64_t segments_abandoned = 0;
  int64_t purges = 0;
  int64_t purge_ns = 0;
  int64_t os_mmap_calls = 0;
  int64_t os_commit_calls = 0;
  int64_t os_purge_calls = 0;
  int64_t page_faults_minor = 0;
  int64_t page_faults_major = 0;
  int64_t rss = 0;
  int64_t metadata_committed = 0;
  mi_stats_area_memory_t totals{};
  std::vector<mi_stats_area_memory_t> nodes;  // index: the node's number
  std::vector<mi_stats_area_bin_t> bins;      // by block size, ascending

  // Adds another process's figures: node by node, size class by block size.
  void add(const Figures& other);
};

void memory_add(mi_stats_area_memory_t* into, const mi_stats_area_memory_t& m);

// One consistent reading of a process's area.
struct Snapshot {
  std::string path;
  uint32_t version = 0;
  int64_t pid = 0;
  uint64_t start_ticks = 0;
  int64_t start_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  int64_t updates = 0;
  int64_t interval_ms = 0;
  std::string program;
  Figures fig;
};

enum class ReadStatus {
  ok,
  unreadable,  // permission denied (another user's file, mode 0600)
  vanished,    // removed between the listing and the reading (the process ended)
  invalid,     // not an area this mi-stat can read; *problem says why
  busy,        // never consistent within the bound (a publisher stopped mid-update)
};

struct ReadResult {
  ReadStatus status = ReadStatus::invalid;
  std::string problem;  // for invalid and busy: the cause, for a message
  Snapshot snap;
};

// Bounds of the sequence-lock retries: after this long (or this many copies)
// the reader gives up on the file with a message.
constexpr int READ_RETRY_MS = 200;
constexpr int READ_RETRY_MAX = 100000;

// Reads the area in `path`. `expect_pid` and `expect_ticks` (from the file's
// name) must match the area's; 0 skips that check.
ReadResult area_read(const std::string& path, int64_t expect_pid, uint64_t expect_ticks);

// Validates a consistent copy (`size` bytes) and takes the figures out of it.
// false with *problem.
bool area_parse(const unsigned char* bytes, size_t size, Snapshot* snap, std::string* problem);

}  // namespace mistat
