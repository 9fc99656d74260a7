// program.cpp: see program.h. The names come from /proc, read into fixed
// buffers: this runs inside the first malloc, where nothing may allocate.
// They are read when first asked for, so that a process whose configuration
// has no [program.NAME] table pays nothing for them: the two /proc reads add
// about 30 us to a program's start (bench_exec --repeat 400 of gzip under
// LD_PRELOAD, fastest run: 771-792 us without them, 805-811 us with them).
#include "program.h"

#include <errno.h>  // program_invocation_name (glibc)
#include <sched.h>
#include <string.h>

#include <atomic>

#include "sys.h"

namespace mi {

namespace {

constinit char argv0_name[PROGRAM_NAME_MAX]{};
constinit char exe_name[PROGRAM_NAME_MAX]{};
// 0: not read, 1: being written (by one thread; the others wait), 2: ready
constinit std::atomic<int> state{0};

// Copies the part of `path` after its last '/' (the first `len` bytes of it)
// into dst; a name longer than a file name can be is left empty.
void set_base_name(char* dst, const char* path, size_t len) {
  const char* base = path;
  for (size_t i = 0; i < len; i++) {
    if (path[i] == '/') base = path + i + 1;
  }
  const size_t n = len - static_cast<size_t>(base - path);
  if (n >= PROGRAM_NAME_MAX) {
    dst[0] = 0;
    return;
  }
  memcpy(dst, base, n);
  dst[n] = 0;
}

void read_names() {
  char buf[4096];
  argv0_name[0] = 0;
  exe_name[0] = 0;
  // argv[0]: the first NUL-terminated string of the command line
  const long n = os_read_file("/proc/self/cmdline", buf, sizeof(buf));
  if (n > 0) {
    set_base_name(argv0_name, buf, strnlen(buf, static_cast<size_t>(n)));
  } else if (program_invocation_name != nullptr) {
    // no /proc (a chroot, an early container): glibc's copy of argv[0]
    // ("" until libc's own initialisation has run)
    set_base_name(argv0_name, program_invocation_name, strlen(program_invocation_name));
  }
  const long len = os_read_link("/proc/self/exe", buf, sizeof(buf));
  if (len > 0) {
    // an executable replaced since it started (a package upgrade) reads as "PATH (deleted)"
    static constexpr char deleted[] = " (deleted)";
    size_t end = static_cast<size_t>(len);
    if (end > sizeof(deleted) - 1 && memcmp(buf + end - (sizeof(deleted) - 1), deleted, sizeof(deleted) - 1) == 0) {
      end -= sizeof(deleted) - 1;
    }
    set_base_name(exe_name, buf, end);
  }
}

// Runs `write` as the one writer of the names, unless they are ready and
// `force` is false; callers that find another writer at work wait for it.
template <class F>
void write_names(bool force, F write) {
  for (;;) {
    int s = state.load(std::memory_order_acquire);
    if (s == 2 && !force) return;
    if (s != 1 && state.compare_exchange_weak(s, 1, std::memory_order_acq_rel)) {
      write();
      state.store(2, std::memory_order_release);
      return;
    }
    sched_yield();
  }
}

void ensure_read() {
  write_names(false, [] { read_names(); });
}

}  // namespace

void program_identify() noexcept {
  write_names(true, [] { read_names(); });
}

const char* program_argv0_name() noexcept {
  ensure_read();
  return argv0_name;
}

const char* program_exe_name() noexcept {
  ensure_read();
  return exe_name;
}

const char* program_match(const char* name) noexcept {
  ensure_read();
  if (name == nullptr || name[0] == 0) return nullptr;
  if (strcmp(name, argv0_name) == 0) return argv0_name;
  if (strcmp(name, exe_name) == 0) return exe_name;
  return nullptr;
}

void program_set_names(const char* argv0, const char* exe) noexcept {
  ensure_read();  // a name not given stays what it is
  write_names(true, [&] {
    if (argv0 != nullptr) set_base_name(argv0_name, argv0, strlen(argv0));
    if (exe != nullptr) set_base_name(exe_name, exe, strlen(exe));
  });
}

}  // namespace mi
