// state.h: what mi-reserve added to the pools, remembered between runs.
//
// Owns: the state file (default /run/mi-reserve/state; under --sysfs-root S,
// S/../run/mi-reserve/state; --state-file overrides). For each pool it holds
// the pages mi-reserve added on top of what the pool had without it, so that
//   - a reservation is relative to that base (running it twice changes
//     nothing; a smaller count gives the difference back),
//   - --release gives back exactly those pages, and pages others added
//     (vm.nr_hugepages, the kernel command line) stay,
//   - --status shows them as "reserved by us".
// The format is text, one pool a line, readable by people:
//   # mi-reserve state: ...
//   boot_id 6f1c...            (proc/sys/kernel/random/boot_id, "-" if none)
//   pool NODE SIZE_KIB ADDED
// A file of another boot (pools start empty at boot; /run is a tmpfs anyway)
// is stale and ignored. It is written whole to a temporary file and renamed,
// so it is never half-written; writers hold a lock (flock on the state's
// directory) from reading to the last write.
#pragma once

#include <string>
#include <vector>

namespace mireserve {

struct StateEntry {
  int node;
  long size_kib;
  long added;
};

struct State {
  std::string boot_id = "-";
  std::vector<StateEntry> entries;

  long added(int node, long size_kib) const;
  // Sets a pool's count (0 removes it).
  void set(int node, long size_kib, long added);
};

// This boot's id, "-" when proc has none.
std::string boot_id_read(const std::string& proc_root);

// Reads the state; a missing file is an empty state. false (with *why) when
// the file cannot be read or is not a state file. *stale is set when it is
// from another boot (then *state is empty).
bool state_read(const std::string& path, const std::string& boot_id, State* state, bool* stale, std::string* why);

// Writes the state (removes the file when it holds nothing). false with *why.
bool state_write(const std::string& path, const State& state, std::string* why);

// The lock of the state: creates the state's directory if needed, then holds
// an exclusive flock on it until destroyed.
class StateLock {
 public:
  StateLock() = default;
  ~StateLock();
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  // false with *why (and the errno in *err) when it cannot.
  bool acquire(const std::string& state_path, std::string* why, int* err);

 private:
  int fd_ = -1;
};

// The directory of a path ("." for a bare name).
std::string dir_of(const std::string& path);

}  // namespace mireserve
