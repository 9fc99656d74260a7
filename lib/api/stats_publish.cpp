// stats_publish.cpp: see stats_publish.h.
#include "stats_publish.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../heap/heap.h"
#include "../os/os.h"
#include "../segment/purger.h"
#include "stats_area.h"

namespace mi {

namespace {

constexpr size_t PATH_MAX_ = 512;
constexpr long FIRST_PUBLISH_MS = 200;

enum State : int { OFF = 0, WANTED = 1, ACTIVE = 2, FAILED = 3 };
std::atomic<int> state{OFF};

// Held while the mapping is written or taken away (the background thread
// writes, exit and fork unmap).
pthread_mutex_t area_lock = PTHREAD_MUTEX_INITIALIZER;
mi_stats_area_t* area = nullptr;  // the mapping
size_t area_map_size = 0;
char area_path[PATH_MAX_] = "";
int64_t updates = 0;
// The figures are filled here, off the mapping, then copied under the seq
// lock: only the background thread uses it.
mi_stats_area_t fill_buffer;
// The directory this process published in; a fork child publishes in its
// parent's (inherited_dir) or not at all.
char published_dir[PATH_MAX_ - 64] = "";
char inherited_dir[PATH_MAX_ - 64] = "";

size_t map_size() { return align_up(sizeof(mi_stats_area_t), os_page_size()); }

// --- the directory --------------------------------------------------------

// Makes `path` (mode) if it does not exist; errors other than EEXIST stay in errno.
bool make_dir(const char* path, mode_t mode) {
  if (mkdir(path, mode) == 0) {
    if (chmod(path, mode) != 0) return false;  // the umask took bits (1777 for /run)
    return true;
  }
  return errno == EEXIST;
}

// A fork child's directory: its parent's, if it is still there and still
// passes the checks. Gone (mimalloc-numa-tools purged while the server runs:
// its postrm removes /run/mimalloc-numa) means no file, quietly: the child
// must not start a new directory elsewhere that nothing will remove.
int inherited_dir_fd(char* dir, size_t size) {
  format(dir, size, "%s", inherited_dir);
  const bool ours = strcmp(dir, MI_STATS_AREA_DIR_RUN) != 0;
  const int fd = stats_publish_open_dir(dir, ours);
  if (fd < 0 && errno == ENOENT) {
    verbose_message("stats_publish: %s, where the parent process published, is gone; statistics are not published",
                    dir);
  } else if (fd < 0) {
    warning_message(
        "stats_publish: cannot use the directory %s for the statistics file: %s; statistics are not "
        "published",
        dir, errno_text(errno));
  }
  return fd;
}

// Finds the directory: an open fd and its path in dir; -1 after one
// warning when none of the three will do.
int choose_dir(char* dir, size_t size) {
  if (inherited_dir[0] != 0) return inherited_dir_fd(dir, size);
  // 1. /run/mimalloc-numa: the package's (tmpfiles.d, 1777), or root makes it
  format(dir, size, "%s", MI_STATS_AREA_DIR_RUN);
  if (geteuid() == 0) (void)make_dir(dir, 01777);
  if (access(dir, W_OK | X_OK) == 0) {
    int fd = stats_publish_open_dir(dir, false);
    if (fd >= 0) return fd;
  }
  // 2. $XDG_RUNTIME_DIR/mimalloc-numa (systemd's per-user runtime directory)
  char xdg[256];
  if (os_getenv("XDG_RUNTIME_DIR", xdg, sizeof(xdg)) && xdg[0] == '/') {
    format(dir, size, "%s/mimalloc-numa", xdg);
    if (make_dir(dir, 0700)) {
      int fd = stats_publish_open_dir(dir, true);
      if (fd >= 0) return fd;
    }
  }
  // 3. /tmp/mimalloc-numa-UID
  format(dir, size, "/tmp/mimalloc-numa-%ld", static_cast<long>(geteuid()));
  int err = 0;
  if (make_dir(dir, 0700)) {
    int fd = stats_publish_open_dir(dir, true);
    if (fd >= 0) return fd;
  }
  err = errno;
  warning_message(
      "stats_publish: cannot use the directory %s for the statistics file: %s; statistics are not published", dir,
      errno_text(err));
  return -1;
}

// --- stale files --------------------------------------------------------

// "<pid>-<ticks>.stats": false if the name is not of that form.
bool parse_name(const char* name, long* pid, uint64_t* ticks) {
  const char* s = name;
  long p = 0;
  uint64_t t = 0;
  if (*s < '0' || *s > '9') return false;
  while (*s >= '0' && *s <= '9') p = p * 10 + (*s++ - '0');
  if (*s++ != '-') return false;
  if (*s < '0' || *s > '9') return false;
  while (*s >= '0' && *s <= '9') t = t * 10 + static_cast<uint64_t>(*s++ - '0');
  if (strcmp(s, MI_STATS_AREA_SUFFIX) != 0) return false;
  *pid = p;
  *ticks = t;
  return true;
}

// Removes files of this user whose process is gone (a killed process's, or
// one that exec'd: same pid and start time as ours, from before the exec).
// getdents64 into a stack buffer: opendir would malloc.
void remove_stale(int dirfd) {
  struct Dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[1];
  };
  alignas(8) char buf[4096];
  const uid_t me = geteuid();
  const long my_pid = static_cast<long>(getpid());
  for (;;) {
    const long n = syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      const Dirent64* d = reinterpret_cast<const Dirent64*>(buf + off);
      off += d->d_reclen;
      long pid;
      uint64_t ticks;
      if (!parse_name(d->d_name, &pid, &ticks)) continue;
      struct stat st;
      if (fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != me || !S_ISREG(st.st_mode)) continue;
      // ours from before an exec (same start time), or an older process's
      // with our pid; or its process is gone, or another has its pid now
      bool stale = pid == my_pid || pid <= 0 || (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
      if (!stale) {
        const uint64_t live = stats_start_ticks_of(pid);
        stale = (live != 0 && live != ticks);
      }
      if (stale) {
        (void)unlinkat(dirfd, d->d_name, 0);
        verbose_message("stats_publish: removed the stale statistics file %s (its process is gone)", d->d_name);
      }
    }
  }
}

// --- the file -----------------------------------------------------------

}  // namespace

// A directory we may put the file in: a real directory (lstat: not a
// symbolic link). Ours (`ours`: $XDG_RUNTIME_DIR's, /tmp's) must be owned by
// us and let nobody else in; the shared one (/run/mimalloc-numa) must be
// root's, and sticky when others may write it (1777: nobody removes
// another user's file). Then an O_DIRECTORY|O_NOFOLLOW fd.
int stats_publish_open_dir(const char* path, bool ours) noexcept {
  struct stat st;
  if (lstat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  const bool ok = ours ? (st.st_uid == geteuid() && (st.st_mode & 077) == 0)
                       : (st.st_uid == 0 && ((st.st_mode & S_IWOTH) == 0 || (st.st_mode & S_ISVTX) != 0));
  if (!ok) {
    errno = EPERM;  // someone else's, or open to others: another user could swap or remove our files
    return -1;
  }
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st2;
  if (fstat(fd, &st2) != 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
    close(fd);
    errno = EAGAIN;  // replaced between the two looks
    return -1;
  }
  return fd;
}

void stats_area_write(mi_stats_area_t* to, const mi_stats_area_t* from) noexcept {
  uint64_t* seq = &to->seq;
  const uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
  __atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
  static_assert(sizeof(mi_stats_area_t) % 8 == 0 && offsetof(mi_stats_area_t, seq) % 8 == 0, "8-byte words");
  const uint64_t* src = reinterpret_cast<const uint64_t*>(from);
  uint64_t* dst = reinterpret_cast<uint64_t*>(to);
  const size_t seq_word = offsetof(mi_stats_area_t, seq) / 8;
  // Each word a release store, so that none is seen before the odd sequence
  // number (instead of a release fence after it, which ThreadSanitizer does
  // not model: gcc refuses the fence there). A plain store on x86-64 either way.
  for (size_t i = 0; i < sizeof(mi_stats_area_t) / 8; i++) {
    if (i != seq_word) __atomic_store_n(&dst[i], src[i], __ATOMIC_RELEASE);
  }
  __atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);
}

namespace {

int64_t effective_interval(int64_t fill_ns) {
  int64_t ms = option_get_clamp(mi_option_stats_publish_interval, 10, 3600000);
  // at most 1% of one core: a refresh that took T ms waits 100 T ms
  const int64_t floor_ms = fill_ns / 10000;  // ns * 100 / 1e6
  return (floor_ms > ms) ? floor_ms : ms;
}

bool create_file() {
  char dir[PATH_MAX_ - 64];
  const int dirfd = choose_dir(dir, sizeof(dir));
  if (dirfd < 0) return false;
  const uint64_t ticks = stats_start_ticks();
  remove_stale(dirfd);
  char name[64];
  format(name, sizeof(name), "%ld-%llu%s", static_cast<long>(getpid()), static_cast<unsigned long long>(ticks),
         MI_STATS_AREA_SUFFIX);
  char path[PATH_MAX_];
  format(path, sizeof(path), "%s/%s", dir, name);
  // Made under a name readers skip (they take only NAME.stats) and renamed
  // once sized and mapped: a reader that found the file between its creation
  // and its posix_fallocate mapped 0 bytes (mmap: EINVAL; seen once in the
  // publish test's fork check).
  char making[80];
  format(making, sizeof(making), "%s.new", name);
  const int fd = openat(dirfd, making, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  format(published_dir, sizeof(published_dir), "%s", dir);
  if (fd < 0) {
    warning_message("stats_publish: cannot create the statistics file %s: %s; statistics are not published", path,
                    errno_text(errno));
    close(dirfd);
    return false;
  }
  const size_t size = map_size();
  // blocks now: a full disk (tmpfs) fails here, not as SIGBUS on a write later
  int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  void* p = MAP_FAILED;
  if (err == 0) {
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) err = errno;
  }
  close(fd);
  if (err == 0 && renameat(dirfd, making, dirfd, name) != 0) err = errno;
  if (err != 0) {
    warning_message("stats_publish: cannot size, map or name the statistics file %s: %s; statistics are not published",
                    path, errno_text(err));
    if (p != MAP_FAILED) munmap(p, size);
    (void)unlinkat(dirfd, making, 0);
    close(dirfd);
    return false;
  }
  close(dirfd);
  pthread_mutex_lock(&area_lock);
  area = static_cast<mi_stats_area_t*>(p);
  area_map_size = size;
  format(area_path, sizeof(area_path), "%s", path);
  pthread_mutex_unlock(&area_lock);
  verbose_message("stats_publish: statistics published in %s", path);
  return true;
}

void drop_mapping(bool remove_file) {
  if (area != nullptr) {
    if (remove_file) (void)unlink(area_path);
    munmap(area, area_map_size);
  }
  area = nullptr;
  area_path[0] = 0;
}

}  // namespace

int64_t stats_publish_tick() noexcept {
  int s = state.load(std::memory_order_acquire);
  if (s == WANTED) {
    // A process publishes once it has lived one interval, at most 200 ms:
    // the short commands a server runs in its environment (archive
    // commands, shells) make and remove no file.
    const int64_t first = option_get_clamp(mi_option_stats_publish_interval, 10, FIRST_PUBLISH_MS);
    const int64_t age = stats_elapsed_ms();
    if (age < first) return first - age;
    int expected = WANTED;
    if (!state.compare_exchange_strong(expected, create_file() ? ACTIVE : FAILED)) return -1;
    s = state.load(std::memory_order_acquire);
    updates = 0;
  }
  if (s != ACTIVE) return -1;
  const int64_t t0 = os_clock_ns();
  stats_area_fill(&fill_buffer, updates + 1, 0);
  const int64_t fill_ns = os_clock_ns() - t0;
  const int64_t interval = effective_interval(fill_ns);
  fill_buffer.interval_ms = interval;
  pthread_mutex_lock(&area_lock);
  if (area != nullptr && state.load(std::memory_order_relaxed) == ACTIVE) {
    updates++;
    stats_area_write(area, &fill_buffer);
  }
  pthread_mutex_unlock(&area_lock);
  return interval;
}

size_t stats_publish_path(char* buf, size_t size) noexcept {
  pthread_mutex_lock(&area_lock);
  const size_t n = strlen(area_path);
  if (size > 0) format(buf, size, "%s", area_path);
  pthread_mutex_unlock(&area_lock);
  return n;
}

void stats_publish_start() noexcept {
  if (!option_is_enabled(mi_option_stats_publish)) return;
  if (os_is_secure()) {
    // Never from a set-user-ID program: its memory use is not for the user
    // who started it, and the directory would be chosen by that user.
    verbose_message(
        "stats_publish: this program runs set-user-ID or set-group-ID (AT_SECURE); statistics are not published");
    return;
  }
  int expected = OFF;
  if (!state.compare_exchange_strong(expected, WANTED)) return;
  heap_count_local_frees(true);
  purger_set_task(&stats_publish_tick);
}

void stats_publish_stop() noexcept {
  pthread_mutex_lock(&area_lock);
  state.store(FAILED, std::memory_order_release);  // no more refreshes
  drop_mapping(true);
  pthread_mutex_unlock(&area_lock);
}

void stats_publish_fork_child() noexcept {
  // The background thread of the parent did not come along: the lock may be
  // held by it. The parent's file stays the parent's: unmapped, not written,
  // not removed. The child's own is made by its own background thread,
  // started here, once the child has lived one interval (at most 200 ms),
  // so a child that execs at once leaves nothing.
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  area_lock = fresh;
  if (area != nullptr) munmap(area, area_map_size);
  area = nullptr;
  area_path[0] = 0;
  updates = 0;
  format(inherited_dir, sizeof(inherited_dir), "%s", published_dir);
  int s = state.load(std::memory_order_relaxed);
  if (s == ACTIVE || s == WANTED) {
    state.store(WANTED, std::memory_order_relaxed);
    // The background thread now, not at the child's next allocator slow
    // path: a child that seldom allocates (PostgreSQL's checkpointer,
    // background writer, WAL writer) would otherwise never publish. A child
    // that execs at once loses the thread with the exec, before its first
    // refresh is due.
    purger_poll();
  }
}

}  // namespace mi
