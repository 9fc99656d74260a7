// gen-options: writes the sample configuration file and the option reference
// from the one option table (lib/common/options.cpp), so that they cannot
// drift from it. tests/config (test config_generated) checks the committed
// config/mimalloc-numa.toml and docs/options.md against this output.
//
//   gen-options --toml            the sample config/mimalloc-numa.toml
//   gen-options --markdown        the reference table docs/options.md
//   gen-options --man TEMPLATE    the manual page docs/man/mimalloc-numa.toml.5:
//                                 TEMPLATE (docs/man/mimalloc-numa.toml.5.in, the
//                                 hand-written prose) with its marker lines
//                                 @OPTIONS@, @NODE_KEYS@ and @RESERVE_KEYS@
//                                 replaced by the tables; tests/packaging
//                                 (test packaging-man-generated) checks the committed page.
#include <errno.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common/config.h"
#include "common/options.h"

namespace {

std::string upper(const char* s) {
  std::string u(s);
  for (char& c : u) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return u;
}

// A size in KiB as the sample writes it: "64MiB", "1GiB", or 0.
std::string size_text(long kib) {
  if (kib <= 0) return "0";
  char buf[32];
  if (kib % (1024 * 1024) == 0) snprintf(buf, sizeof(buf), "\"%ldGiB\"", kib / (1024 * 1024));
  else if (kib % 1024 == 0) snprintf(buf, sizeof(buf), "\"%ldMiB\"", kib / 1024);
  else snprintf(buf, sizeof(buf), "\"%ldKiB\"", kib);
  return buf;
}

std::string value_text(const mi::OptionDesc& d, long v) {
  char buf[32];
  switch (d.kind) {
    case mi::OptionKind::flag: return v != 0 ? "true" : "false";
    case mi::OptionKind::size_kib: return size_text(v);
    case mi::OptionKind::duration_ms:
      if (v < 0) {
        snprintf(buf, sizeof(buf), "%ld", v);
      } else {
        snprintf(buf, sizeof(buf), "\"%ldms\"", v);
      }
      return buf;
    case mi::OptionKind::choice:
      // show_stats: false and true are TOML booleans, "json" a string
      if (mi::option_choice_is_flag(d) && v <= 1) return v != 0 ? "true" : "false";
      return std::string("\"") + d.choices[v] + "\"";
    case mi::OptionKind::path: return "\"\"";  // unset: its only default
    default: snprintf(buf, sizeof(buf), "%ld", v); return buf;
  }
}

const char* kind_text(mi::OptionKind k) {
  switch (k) {
    case mi::OptionKind::flag: return "boolean";
    case mi::OptionKind::number: return "integer";
    case mi::OptionKind::size_kib: return "size";
    case mi::OptionKind::duration_ms: return "duration";
    case mi::OptionKind::choice: return "choice";
    case mi::OptionKind::path: return "path";
  }
  return "?";
}

std::string range_text(const mi::OptionDesc& d) {
  if (d.kind == mi::OptionKind::flag) return "";
  if (d.kind == mi::OptionKind::path) return "an absolute file name, or \"\" (stderr)";
  if (d.kind == mi::OptionKind::choice) {
    std::string r;
    for (int i = 0; d.choices[i] != nullptr; i++) r += (i ? ", " : "") + std::string(d.choices[i]);
    return r;
  }
  const bool open_max = d.max >= 0x7fffffffL;
  if (d.kind == mi::OptionKind::size_kib) return size_text(d.min) + (open_max ? " or more" : " to " + size_text(d.max));
  char buf[64];
  if (open_max) snprintf(buf, sizeof(buf), "%ld or more", d.min);
  else snprintf(buf, sizeof(buf), "%ld to %ld", d.min, d.max);
  return buf;
}

void toml() {
  printf("# mimalloc-numa.toml: the configuration of mimalloc-numa, see mimalloc-numa.toml(5).\n");
  printf("# Generated from the option table (tools/gen-options --toml); every option with its default.\n");
  printf("#\n");
  printf("# Read at start-up from the file named by MIMALLOC_CONFIG, else from\n");
  printf("# /etc/mimalloc-numa.toml if it exists. Precedence: built-in default < this\n");
  printf("# file's [options] < its [program.NAME] for the program NAME < the environment\n");
  printf("# (MIMALLOC_<NAME>) < mi_option_set() at run time.\n");
  printf("# Sizes and durations are strings with units (\"64MiB\", \"1GiB\", \"512k\";\n");
  printf("# \"10ms\", \"2s\") or plain integers (bytes; milliseconds, but seconds for\n");
  printf("# [reserve] timeout as for mi-reserve --timeout). A bad line is reported\n");
  printf("# (file:line) and skipped; the rest of the file applies. Check a file\n");
  printf("# with: mi-reserve --check-config FILE\n");
  printf("\n[options]\n");
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi::OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    printf("# %s%s\n", d.description, d.runtime ? "" : " (read at start-up)");
    printf("%s = %s\n", d.name, value_text(d, d.default_value).c_str());
  }
  size_t n = 0;
  const mi::ConfigKey* keys = mi::config_node_keys(&n);
  printf("\n# Per-node settings: a table [node.N] for node N (0, 1, ...: the kernel's online nodes counted\n");
  printf("# from 0, its node numbers unless they have gaps), for example:\n");
  printf("# [node.0]\n");
  for (size_t i = 0; i < n; i++) printf("# %s = %s    # %s\n", keys[i].name, keys[i].example, keys[i].description);
  printf("\n# Per-program settings: a table [program.NAME] takes every key of [options] and\n");
  printf("# applies to the program NAME only, over [options] wherever it sits in the file;\n");
  printf("# [program.NAME.node.N] takes the keys of [node.N]. NAME is matched against the\n");
  printf("# base name of argv[0] and of the executable (links resolved): \"postgres\",\n");
  printf("# \"mariadbd\" (also \"mysqld\" when started through that link); quote a name with\n");
  printf("# a dot: [program.\"python3.11\"]. Every table that names the program applies, in\n");
  printf("# file order. For example, statistics from PostgreSQL only:\n");
  printf("# [program.postgres]\n");
  printf("# show_stats = true          # each backend prints its own at exit\n");
  printf("# purge_delay = \"100ms\"\n");
  keys = mi::config_reserve_keys(&n);
  printf("\n# The huge pages mi-reserve(8) reserves at boot (the library only checks these):\n");
  printf("# [reserve]\n");
  for (size_t i = 0; i < n; i++) printf("# %s = %s    # %s\n", keys[i].name, keys[i].example, keys[i].description);
}

void markdown() {
  printf("# Options\n\n");
  printf("Generated from the option table in `lib/common/options.cpp` by `tools/gen-options --markdown`.\n");
  printf("Set an option in the environment as `MIMALLOC_<NAME>`, in the configuration file under\n");
  printf("`[options]` (or `[program.NAME]` for one program) by its name, or at run time with\n");
  printf("`mi_option_set`. Options marked *start-up* are read when the process starts; the others\n");
  printf("take effect when changed.\n\n");
  printf("| option | environment | type | default | range | when | description |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi::OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    std::string legacy = d.legacy_name != nullptr ? std::string(" (also `MIMALLOC_") + upper(d.legacy_name) + "`)" : "";
    printf("| `%s` | `MIMALLOC_%s`%s | %s | `%s` | %s | %s | %s |\n", d.name, upper(d.name).c_str(), legacy.c_str(),
           kind_text(d.kind), value_text(d, d.default_value).c_str(), range_text(d).c_str(),
           d.runtime ? "run time" : "start-up", d.description);
  }
  size_t n = 0;
  const mi::ConfigKey* keys = mi::config_node_keys(&n);
  printf("\n## Per-node settings (`[node.N]`)\n\n");
  printf("N counts the kernel's online NUMA nodes from 0: the kernel's node number unless the numbers have gaps\n");
  printf("(with nodes 0, 1 and 3, `[node.2]` is node 3).\n\n");
  printf("| key | example | description |\n|---|---|---|\n");
  for (size_t i = 0; i < n; i++) printf("| `%s` | `%s` | %s |\n", keys[i].name, keys[i].example, keys[i].description);
  printf("\n## Per-program settings (`[program.NAME]`)\n\n");
  printf("`[program.NAME]` takes every key of `[options]`, `[program.NAME.node.N]` every key of `[node.N]`;\n");
  printf("they apply to the program NAME only, over `[options]` and `[node.N]` wherever they sit in the\n");
  printf("file (and under the environment and `mi_option_set`). NAME is matched, exactly, against the\n");
  printf("base name of the program's `argv[0]` and of its executable (`/proc/self/exe`, links\n");
  printf("resolved): `postgres` for PostgreSQL's postmaster and backends, `mariadbd` for MariaDB\n");
  printf("(also `mysqld` when started through that link), `redis-server`. A name with a dot is quoted:\n");
  printf("`[program.\"python3.11\"]`. Every table that names the program applies, in file order (a later\n");
  printf("table's key wins); the others are checked but not applied. `MIMALLOC_VERBOSE=1` shows the\n");
  printf("two names, the tables that apply, and each value's table: `(/etc/mimalloc-numa.toml:12\n");
  printf("[program.postgres])`.\n\n");
  printf("| table | takes | example |\n|---|---|---|\n");
  printf("| `[program.NAME]` | every key of `[options]` | `[program.postgres]` `show_stats = true` |\n");
  printf(
      "| `[program.NAME.node.N]` | every key of `[node.N]` | `[program.mariadbd.node.0]` `reserve_huge_os_pages = 8` "
      "|\n");
  keys = mi::config_reserve_keys(&n);
  printf("\n## mi-reserve (`[reserve]`)\n\n| key | example | description |\n|---|---|---|\n");
  for (size_t i = 0; i < n; i++) printf("| `%s` | `%s` | %s |\n", keys[i].name, keys[i].example, keys[i].description);
}

// Text for a roff page: backslashes escaped, a minus sign (before a digit or
// another dash, at the start of a word) written \- so that it is not
// hyphenated or shown as a hyphen; a leading '.' or '\'' made literal.
std::string roff(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    const bool word_start = i == 0 || s[i - 1] == ' ' || s[i - 1] == '(' || s[i - 1] == '-';
    const char next = i + 1 < s.size() ? s[i + 1] : 0;
    if (c == '\\') r += "\\e";
    else if (c == '-' && word_start && ((next >= '0' && next <= '9') || next == '-')) r += "\\-";
    else r += c;
  }
  if (!r.empty() && (r[0] == '.' || r[0] == '\'')) r = "\\&" + r;
  return r;
}

// A description as a sentence: first letter capitalised (unless the first word
// is a name, like eager_commit_delay), a full stop at the end.
std::string sentence(const char* description) {
  std::string s(description);
  const size_t word_end = s.find(' ');
  const std::string first = s.substr(0, word_end);
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z' && first.find('_') == std::string::npos) {
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
  }
  if (!s.empty() && s.back() != '.') s += '.';
  return s;
}

// The [options] table of mimalloc-numa.toml(5): one tagged paragraph an option.
void man_options() {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi::OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    printf(".TP\n.BI \"%s = \" %s\n", d.name, kind_text(d.kind));
    printf("%s\n", roff(sentence(d.description)).c_str());
    std::string facts = "Default \\fB" + roff(value_text(d, d.default_value)) + "\\fR";
    const std::string range = range_text(d);
    if (d.kind == mi::OptionKind::choice) facts += "; one of " + range;
    else if (!range.empty()) facts += "; " + roff(range);
    facts += d.runtime ? "; can change at run time." : "; read at start-up.";
    printf("%s\n", facts.c_str());
    printf("Environment: \\fB\\%%MIMALLOC_%s\\fR", upper(d.name).c_str());
    if (d.legacy_name != nullptr) printf(" (also \\fB\\%%MIMALLOC_%s\\fR)", upper(d.legacy_name).c_str());
    printf(".\n");
  }
}

// The keys of [node.N] or [reserve]; `strip` is a prefix the descriptions
// carry for the sample file ("mi-reserve: ") and the page says once.
void man_keys(const mi::ConfigKey* keys, size_t n, const char* strip) {
  for (size_t i = 0; i < n; i++) {
    const char* description = keys[i].description;
    if (strip != nullptr && strncmp(description, strip, strlen(strip)) == 0) description += strlen(strip);
    printf(".TP\n.B %s\n", keys[i].name);
    printf("%s\n", roff(sentence(description)).c_str());
    printf("Example: \\fB%s\\~=\\~%s\\fR.\n", keys[i].name, roff(keys[i].example).c_str());
  }
}

// Copies the template, replacing its marker lines. Returns 0, or 1 when the
// template cannot be read or lacks a marker.
int man(const char* template_path) {
  FILE* f = fopen(template_path, "r");
  if (f == nullptr) {
    fprintf(stderr, "gen-options: cannot read %s: %s\n", template_path, strerror(errno));
    return 1;
  }
  bool seen_options = false, seen_node = false, seen_reserve = false;
  std::string line;
  int c;
  bool more = true;
  while (more) {
    line.clear();
    while ((c = fgetc(f)) != EOF && c != '\n') line += static_cast<char>(c);
    more = c != EOF;
    if (!more && line.empty()) break;
    size_t n = 0;
    if (line == "@OPTIONS@") {
      man_options();
      seen_options = true;
    } else if (line == "@NODE_KEYS@") {
      const mi::ConfigKey* keys = mi::config_node_keys(&n);
      man_keys(keys, n, nullptr);
      seen_node = true;
    } else if (line == "@RESERVE_KEYS@") {
      const mi::ConfigKey* keys = mi::config_reserve_keys(&n);
      man_keys(keys, n, "mi-reserve: ");
      seen_reserve = true;
    } else {
      printf("%s\n", line.c_str());
    }
  }
  fclose(f);
  if (!seen_options || !seen_node || !seen_reserve) {
    fprintf(stderr, "gen-options: %s lacks a marker line (@OPTIONS@, @NODE_KEYS@, @RESERVE_KEYS@)\n", template_path);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--toml") == 0) {
    toml();
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--markdown") == 0) {
    markdown();
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "--man") == 0) return man(argv[2]);
  fprintf(stderr, "usage: gen-options --toml | --markdown | --man TEMPLATE\n");
  return 2;
}
