// stats_file.cpp: see stats_file.h.
#include "stats_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../common/format.h"
#include "../common/messages.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../os/os.h"

extern "C" char* program_invocation_short_name;

namespace mi {

namespace {

bool name_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_' || c == '+';
}

}  // namespace

const char* stats_program_name(char* buf, size_t size) noexcept {
  if (size == 0) return buf;
  buf[0] = 0;
  // comm, not argv[0]: servers rewrite their argv for ps (PostgreSQL's
  // backends show "postgres: user db [local] idle" there); comm stays.
  char comm[64];
  long n = os_read_file("/proc/self/comm", comm, sizeof(comm));
  const char* src = (n > 0) ? comm : program_invocation_short_name;
  if (src == nullptr) src = "";
  size_t k = 0;
  for (; src[k] != 0 && src[k] != '\n' && k + 1 < size; k++) buf[k] = name_char_ok(src[k]) ? src[k] : '_';
  buf[k] = 0;
  if (k == 0) format(buf, size, "%s", "unknown");
  return buf;
}

bool stats_file_expand(const char* pattern, char* out, size_t size) noexcept {
  if (size == 0) return false;
  size_t n = 0;
  auto put = [&](const char* s) {
    for (; *s != 0; s++) {
      if (n + 1 >= size) return false;
      out[n++] = *s;
    }
    return true;
  };
  for (const char* c = pattern; *c != 0; c++) {
    char piece[64] = {*c, 0};
    if (*c == '%' && c[1] != 0) {
      c++;
      switch (*c) {
        case 'p': format(piece, sizeof(piece), "%ld", static_cast<long>(getpid())); break;
        case 'n': stats_program_name(piece, sizeof(piece)); break;
        case 't': format(piece, sizeof(piece), "%lld", static_cast<long long>(stats_start_time_s())); break;
        case '%': piece[0] = '%'; break;
        default: format(piece, sizeof(piece), "%%%c", *c); break;  // checked when set; kept as written
      }
    }
    if (!put(piece)) {
      out[n] = 0;
      return false;
    }
  }
  out[n] = 0;
  return true;
}

int stats_file_open() noexcept {
  char pattern[OPTION_STRING_MAX];
  if (option_get_string(mi_option_stats_file, pattern, sizeof(pattern)) == 0) return -1;
  char path[OPTION_STRING_MAX + 256];
  if (!stats_file_expand(pattern, path, sizeof(path))) {
    warning_message("stats_file \"%s\": the file name is too long once expanded; the statistics go to stderr", pattern);
    return -1;
  }
  int fd;
  do {
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    warning_message("cannot open the statistics file %s (stats_file): %s; the statistics go to stderr", path,
                    errno_text(errno));
  }
  return fd;
}

}  // namespace mi
