// sys.cpp: see sys.h.
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace mi {

int64_t os_clock_ms() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t os_clock_ns() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool os_is_secure() noexcept { return getauxval(AT_SECURE) != 0; }

bool os_getenv(const char* name, char* buf, size_t size) noexcept {
  if (name == nullptr || environ == nullptr || size == 0) return false;
  size_t len = strlen(name);
  for (char** e = environ; *e != nullptr; e++) {
    const char* s = *e;
    if (strncmp(s, name, len) == 0 && s[len] == '=') {
      const char* v = s + len + 1;
      size_t n = strlen(v);
      if (n >= size) n = size - 1;
      memcpy(buf, v, n);
      buf[n] = 0;
      return true;
    }
  }
  return false;
}

long os_read_file(const char* path, char* buf, size_t size) noexcept {
  if (size == 0) return -1;
  int fd;
  do {
    fd = open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  size_t total = 0;
  while (total + 1 < size) {
    ssize_t n = read(fd, buf + total, size - 1 - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  buf[total] = 0;
  close(fd);
  return static_cast<long>(total);
}

long os_read_link(const char* path, char* buf, size_t size) noexcept {
  if (size == 0) return -1;
  const ssize_t n = readlink(path, buf, size);
  if (n < 0) return -1;
  if (static_cast<size_t>(n) >= size) {  // cut: readlink does not say so itself
    errno = ENAMETOOLONG;
    return -1;
  }
  buf[n] = 0;
  return static_cast<long>(n);
}

void os_write_stderr(const char* msg, size_t len) noexcept {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, msg, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    msg += n;
    len -= static_cast<size_t>(n);
  }
}

}  // namespace mi
