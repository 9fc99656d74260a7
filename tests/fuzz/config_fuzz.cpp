// config_fuzz.cpp: libFuzzer target for the TOML config reader
// (lib/common/config.cpp, and the value parsers of lib/common/options.cpp).
//
// Each input is read three ways, and the three must agree:
//   1. config_parse, check only (apply=false), name "fuzz.toml": every problem
//      is one message to our output callback;
//   2. config_read_reserve over a memfd, opened by a 240-byte path
//      (/proc/self/./././.../fd/N): the file reader (4 KiB chunks,
//      open/read/close), mi-reserve's fields, and a long name (as
//      mi-reserve --check-config may pass) that with a long message must
//      still make one line;
//   3. config_parse with apply=true: problems become warnings through the
//      registered output (mi_register_output), options take the values.
// All three return the same problem count. Every message must be one
// NUL-terminated line, "<name>:<line>: <text>\n" with 1 <= line <= the lines
// of the input, in order, without control characters (a config file must not
// be able to write escape sequences or fake lines to the terminal).
//
// [program.NAME] tables: this program is "postgres" (argv[0]) and
// "mariadbd" (the executable), set once (lib/common/program), so that the
// apply pass applies those two tables and only checks the others; an option
// applied from a program table must name one of the two.
//
// State between inputs: apply=true changes the global option values; before
// each apply pass every option goes back to its table default (source
// "default"), then show_errors=1 and max_warnings=-1 so that every problem is
// printed (unless the input itself sets them). The [node.N] settings it
// applies live in config.cpp without a reset; they are only written by the
// reader, never read by it, so they cannot change how a later input parses
// (the pass checks them for range only).
//
// Hangs are libFuzzer's -timeout, crashes and leaks ASan/LSan and UBSan (see
// tests/fuzz/meson.build for why this links the parser's sources instead of
// the allocator library). A failed check prints the message and aborts.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/config.h"
#include "common/messages.h"
#include "common/options.h"
#include "common/program.h"

namespace {

#define FUZZ_CHECK(cond, what, msg)                        \
  do {                                                     \
    if (!(cond)) check_failed(__LINE__, #cond, what, msg); \
  } while (0)

[[noreturn]] void check_failed(int line, const char* cond, const char* what, const char* msg) {
  fprintf(stderr, "config_fuzz.cpp:%d: check failed: %s (%s)\n", line, cond, what);
  if (msg != nullptr) {
    fprintf(stderr, "  message: \"");
    for (const unsigned char* c = reinterpret_cast<const unsigned char*>(msg); *c != 0; c++) {
      if (*c < 0x20 || *c >= 0x7F || *c == '"' || *c == '\\') {
        fprintf(stderr, "\\x%02x", *c);
      } else {
        fputc(*c, stderr);
      }
    }
    fprintf(stderr, "\"\n");
  }
  abort();
}

// Where the messages of one pass go, and what they must look like.
struct Sink {
  const char* prefix;  // what each message starts with, up to the ':' before the line
  size_t max_len;      // longest message allowed (excluding the NUL)
  long max_line;       // lines in the input
  long last_line;      // messages come in line order
  int messages;
};

Sink* apply_sink = nullptr;  // the registered output's sink during the apply pass

void check_message(const char* msg, void* arg) {
  Sink* s = static_cast<Sink*>(arg);
  FUZZ_CHECK(s != nullptr, "a message outside a parse", msg);
  FUZZ_CHECK(msg != nullptr, "a null message", nullptr);
  // NUL-terminated within the bound (strnlen does not read past it; ASan
  // reports a read past the end of a shorter buffer)
  size_t n = strnlen(msg, s->max_len + 1);
  FUZZ_CHECK(n <= s->max_len, "message longer than its buffer", msg);
  FUZZ_CHECK(n > 0 && msg[n - 1] == '\n', "message does not end with a newline", msg);
  for (size_t i = 0; i + 1 < n; i++) {
    unsigned char c = static_cast<unsigned char>(msg[i]);
    FUZZ_CHECK(!((c < 0x20 && c != '\t') || c == 0x7F), "a control character (or second line) in a message", msg);
  }
  size_t plen = strlen(s->prefix);
  FUZZ_CHECK(strncmp(msg, s->prefix, plen) == 0 && msg[plen] == ':', "message does not start with '<name>:'", msg);
  const char* c = msg + plen + 1;
  long line = 0;
  FUZZ_CHECK(*c >= '1' && *c <= '9', "no line number after '<name>:'", msg);
  for (; *c >= '0' && *c <= '9'; c++) {
    line = line * 10 + (*c - '0');
    FUZZ_CHECK(line <= s->max_line, "line number past the end of the input", msg);
  }
  FUZZ_CHECK(c[0] == ':' && c[1] == ' ', "no ': ' after the line number", msg);
  FUZZ_CHECK(line >= s->last_line, "messages out of line order", msg);
  s->last_line = line;
  s->messages++;
}

// The registered output (mi_register_output): messages of the apply pass.
void registered_output(const char* msg, void*) { check_message(msg, apply_sink); }

long count_lines(const uint8_t* data, size_t size) {
  long lines = 0;
  for (size_t i = 0; i < size; i++) lines += (data[i] == '\n');
  if (size > 0 && data[size - 1] != '\n') lines++;
  return lines;
}

Sink sink_for(const char* prefix, size_t max_len, long lines) { return Sink{prefix, max_len, lines, 0, 0}; }

// Check-only messages are formatted into MESSAGE_MAX + 64 bytes (config.cpp
// problem()); warnings into MESSAGE_MAX (messages.cpp emit()).
constexpr size_t CHECK_MESSAGE_MAX = mi::MESSAGE_MAX + 64 - 1;
constexpr size_t WARNING_MESSAGE_MAX = mi::MESSAGE_MAX - 1;

constexpr const char* NAME = "fuzz.toml";

// A memfd holding the input, opened by the reader through /proc/self/fd/N
// (config_read_reserve takes a path), padded with "./" to 240 bytes. Created
// once; -1 where memfd_create or /proc is missing (the pass is skipped, said
// once).
int memfd = -2;
char memfd_path[256];

bool memfd_write(const uint8_t* data, size_t size) {
  if (memfd == -2) {
    memfd = memfd_create("config_fuzz", MFD_CLOEXEC);
    if (memfd >= 0) {
      char fd_part[32];
      int len = snprintf(fd_part, sizeof(fd_part), "fd/%d", memfd);
      size_t at = 11;  // "/proc/self/"
      memcpy(memfd_path, "/proc/self/", at);
      while (at + 2 + static_cast<size_t>(len) <= 240) at += static_cast<size_t>(snprintf(memfd_path + at, 3, "./"));
      memcpy(memfd_path + at, fd_part, static_cast<size_t>(len) + 1);
      if (access(memfd_path, R_OK) != 0) {
        close(memfd);
        memfd = -1;
      }
    }
    if (memfd < 0) fprintf(stderr, "config_fuzz: no memfd or no /proc/self/fd; config_read_reserve is not fuzzed\n");
  }
  if (memfd < 0) return false;
  if (ftruncate(memfd, 0) != 0) return false;
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(memfd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void options_reset() {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi::OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    mi::option_set_from(d.option, d.default_value, mi::OptionSource::default_, nullptr, 0);
  }
}

bool set_by_file(mi_option_t option) {
  return mi::option_source(option, nullptr, nullptr) == mi::OptionSource::config_file;
}

void check_reserve(const mi::ConfigReserve& r) {
  FUZZ_CHECK(r.pages == -1 || (r.pages >= 0 && r.pages <= 1048576), "[reserve] pages out of range", nullptr);
  FUZZ_CHECK(r.per_node == -1 || (r.per_node >= 0 && r.per_node <= 1048576), "[reserve] per_node out of range",
             nullptr);
  // config_page_size_parse: a power of two from 4 KiB to 16 GiB
  FUZZ_CHECK(r.page_size_kib == -1 || (r.page_size_kib >= 4 && r.page_size_kib <= (16L << 20) &&
                                       (r.page_size_kib & (r.page_size_kib - 1)) == 0),
             "[reserve] page_size", nullptr);
  FUZZ_CHECK(r.timeout_ms >= -1 && r.timeout_ms <= mi::CONFIG_TIMEOUT_MAX_MS, "[reserve] timeout out of range",
             nullptr);
  FUZZ_CHECK(memchr(r.nodes, 0, sizeof(r.nodes)) != nullptr, "[reserve] nodes not NUL-terminated", nullptr);
  for (long pages : r.node_pages)
    FUZZ_CHECK(pages >= -1 && pages <= 1048576, "[node.N] reserve_huge_os_pages", nullptr);
  FUZZ_CHECK(r.options_huge_pages >= -1 && r.options_huge_pages <= 1048576, "[options] reserve_huge_os_pages", nullptr);
  FUZZ_CHECK(r.options_huge_pages_at >= -1 && r.options_huge_pages_at <= 1023, "[options] reserve_huge_os_pages_at",
             nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mi_register_output(&registered_output, nullptr);
  mi::program_set_names("postgres", "mariadbd");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const long lines = count_lines(data, size);

  // 1. check only
  Sink check = sink_for(NAME, CHECK_MESSAGE_MAX, lines);
  int problems = mi::config_parse(NAME, text, size, false, &check_message, &check);
  FUZZ_CHECK(problems >= 0 && check.messages == problems, "check pass: one message per problem", nullptr);

  // 2. the file reader, as mi-reserve uses it (which reads CONFIG_FILE_MAX
  // bytes at most: a longer input is one problem more there)
  if (size <= mi::CONFIG_FILE_MAX && memfd_write(data, size)) {
    mi::ConfigReserve reserve;
    memset(&reserve, 0x5A, sizeof(reserve));  // the reader sets every field
    Sink file = sink_for(memfd_path, CHECK_MESSAGE_MAX, lines);
    int n = mi::config_read_reserve(memfd_path, &reserve, &check_message, &file);
    FUZZ_CHECK(n == problems && file.messages == n, "file pass: the same problems as the buffer", nullptr);
    check_reserve(reserve);
  }

  // 3. apply: warnings through the registered output
  options_reset();
  mi::option_set_from(mi_option_show_errors, 1, mi::OptionSource::runtime, nullptr, 0);
  mi::option_set_from(mi_option_max_warnings, -1, mi::OptionSource::runtime, nullptr, 0);
  Sink applied = sink_for("mimalloc-numa: warning: fuzz.toml", WARNING_MESSAGE_MAX, lines);
  apply_sink = &applied;
  int n = mi::config_parse(NAME, text, size, true, nullptr, nullptr);
  apply_sink = nullptr;
  FUZZ_CHECK(n == problems, "apply pass: the same problems as the check pass", nullptr);
  bool quieted = set_by_file(mi_option_show_errors) || set_by_file(mi_option_max_warnings);
  FUZZ_CHECK(quieted ? applied.messages <= n : applied.messages == n, "apply pass: one warning per problem", nullptr);
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    auto option = static_cast<mi_option_t>(i);
    const mi::OptionDesc& d = mi::option_desc(option);
    const char* file = nullptr;
    const char* program = nullptr;
    int line = 0;
    if (mi::option_source(option, &file, &line, &program) != mi::OptionSource::config_file) continue;
    long v = mi::option_get(option);
    FUZZ_CHECK(v >= d.min && v <= d.max, "an option applied out of its range", d.name);
    FUZZ_CHECK(file != nullptr && strcmp(file, NAME) == 0 && line >= 1 && line <= lines, "option source", d.name);
    FUZZ_CHECK(program == nullptr || strcmp(program, "postgres") == 0 || strcmp(program, "mariadbd") == 0,
               "an option applied from the table of another program", d.name);
  }
  for (int node = 0; node < mi::CONFIG_MAX_NODES; node++) {
    long pages = mi::config_node_huge_pages(node);
    FUZZ_CHECK(pages >= -1 && pages <= 1048576, "[node.N] reserve_huge_os_pages applied out of range", nullptr);
    for (const char* from : {mi::config_node_huge_pages_program(node), mi::config_node_arena_reserve_program(node)}) {
      FUZZ_CHECK(from == nullptr || strcmp(from, "postgres") == 0 || strcmp(from, "mariadbd") == 0,
                 "a [node.N] setting applied from the table of another program", nullptr);
    }
  }
  // the tables listed as applied: this program's, each once, in line order
  const int applied_programs = mi::config_applied_program(0, nullptr, nullptr);
  FUZZ_CHECK(applied_programs >= 0 && applied_programs <= mi::CONFIG_MAX_PROGRAMS, "applied [program.NAME] count",
             nullptr);
  int last_line = 0;
  for (int i = 0; i < applied_programs; i++) {
    const char* name = nullptr;
    int line = 0;
    mi::config_applied_program(i, &name, &line);
    FUZZ_CHECK(name != nullptr && (strcmp(name, "postgres") == 0 || strcmp(name, "mariadbd") == 0),
               "applied program name", name);
    FUZZ_CHECK(line >= last_line && line >= 1 && line <= lines, "applied program line", name);
    last_line = line;
  }
  FUZZ_CHECK(applied_programs <= 2, "a program's table listed twice", nullptr);
  options_reset();
  return 0;
}
