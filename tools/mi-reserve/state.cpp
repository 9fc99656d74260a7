// state.cpp: see state.h.
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "pools.h"

namespace mireserve {

long State::added(int node, long size_kib) const {
  for (const StateEntry& e : entries) {
    if (e.node == node && e.size_kib == size_kib) return e.added;
  }
  return 0;
}

void State::set(int node, long size_kib, long added) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->node == node && it->size_kib == size_kib) {
      if (added > 0) it->added = added;
      else entries.erase(it);
      return;
    }
  }
  if (added > 0) entries.push_back({node, size_kib, added});
}

std::string boot_id_read(const std::string& proc_root) {
  std::string text;
  if (file_read(proc_root + "/sys/kernel/random/boot_id", &text) != 0) return "-";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.find_first_of(" \t\n") != std::string::npos) return "-";
  return text;
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool state_read(const std::string& path, const std::string& boot_id, State* state, bool* stale, std::string* why) {
  *state = State{};
  state->boot_id = boot_id;
  *stale = false;
  std::string text;
  int err = file_read(path, &text);
  if (err == ENOENT) return true;
  if (err != 0) {
    *why = "cannot read the state file " + path + ": " + errno_text(err);
    return false;
  }
  State read;
  read.boot_id = "";
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    number++;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string word;
    in >> word;
    std::string extra;
    if (word == "boot_id" && (in >> read.boot_id) && !(in >> extra)) continue;
    StateEntry e;
    if (word == "pool" && (in >> e.node >> e.size_kib >> e.added) && !(in >> extra) && e.node >= 0 && e.size_kib > 0 &&
        e.added >= 0) {
      read.set(e.node, e.size_kib, read.added(e.node, e.size_kib) + e.added);
      continue;
    }
    *why = "the state file " + path + " is damaged at line " + std::to_string(number) + " ('" + line +
           "'); remove it (mi-reserve then no longer knows which pages it added)";
    return false;
  }
  if (read.boot_id != boot_id) {
    *stale = true;  // another boot's: those pages went with it
    return true;
  }
  state->entries = read.entries;
  return true;
}

bool state_write(const std::string& path, const State& state, std::string* why) {
  if (state.entries.empty()) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      *why = "cannot remove the state file " + path + ": " + errno_text(errno);
      return false;
    }
    return true;
  }
  std::string text =
      "# mi-reserve state: the huge pages mi-reserve added to the kernel's pools, on top of what they had\n"
      "# without it; mi-reserve --release gives them back. Written by mi-reserve: do not edit.\n"
      "# pool NODE PAGE_SIZE_KIB PAGES_ADDED\n";
  text += "boot_id " + state.boot_id + "\n";
  for (const StateEntry& e : state.entries) {
    text += "pool " + std::to_string(e.node) + " " + std::to_string(e.size_kib) + " " + std::to_string(e.added) + "\n";
  }
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *why = "cannot write the state file " + tmp + ": " + errno_text(errno);
    return false;
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = ok ? 0 : (errno != 0 ? errno : EIO);
  if (ok && fsync(fd) != 0) {
    ok = false;
    err = errno;
  }
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(tmp.c_str());
    *why = "cannot write the state file " + path + ": " + errno_text(err);
  }
  return ok;
}

namespace {
// mkdir -p, 0755.
int make_dirs(const std::string& dir) {
  if (is_directory(dir)) return 0;
  std::string parent = dir_of(dir);
  if (parent != dir && parent != "/" && parent != ".") {
    int err = make_dirs(parent);
    if (err != 0) return err;
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno;
  return 0;
}
}  // namespace

bool StateLock::acquire(const std::string& state_path, std::string* why, int* err) {
  const std::string dir = dir_of(state_path);
  *err = make_dirs(dir);
  if (*err != 0) {
    *why = "cannot create the state directory " + dir + ": " + errno_text(*err);
    return false;
  }
  if (faccessat(AT_FDCWD, dir.c_str(), W_OK, AT_EACCESS) != 0) {
    *err = errno;
    *why = "cannot write the state directory " + dir + ": " + errno_text(*err);
    return false;
  }
  fd_ = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0 || flock(fd_, LOCK_EX) != 0) {
    *err = errno;
    *why = "cannot lock the state directory " + dir + ": " + errno_text(*err);
    return false;
  }
  return true;
}

StateLock::~StateLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

}  // namespace mireserve
