// program.cpp: see program.h. The names come from /proc, read into fixed
// buffers: this runs inside the first malloc, where nothing may allocate.
#include "program.h"

#include <errno.h>  // program_invocation_name (glibc)
#include <string.h>

#include "../os/os.h"

namespace mi {

namespace {

constinit char argv0_name[PROGRAM_NAME_MAX]{};
constinit char exe_name[PROGRAM_NAME_MAX]{};

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

}  // namespace

void program_identify() noexcept {
  char buf[4096];
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

const char* program_argv0_name() noexcept { return argv0_name; }
const char* program_exe_name() noexcept { return exe_name; }

const char* program_match(const char* name) noexcept {
  if (name == nullptr || name[0] == 0) return nullptr;
  if (strcmp(name, argv0_name) == 0) return argv0_name;
  if (strcmp(name, exe_name) == 0) return exe_name;
  return nullptr;
}

void program_set_names(const char* argv0, const char* exe) noexcept {
  if (argv0 != nullptr) set_base_name(argv0_name, argv0, strlen(argv0));
  if (exe != nullptr) set_base_name(exe_name, exe, strlen(exe));
}

}  // namespace mi
