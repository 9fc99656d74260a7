// gen-options: writes the sample configuration file and the option reference
// from the one option table (lib/common/options.cpp), so that they cannot
// drift from it. tests/unit (config_files test) checks the committed
// config/mimalloc-numa.toml and docs/options.md against this output.
//
//   gen-options --toml       the sample config/mimalloc-numa.toml
//   gen-options --markdown   the reference table docs/options.md
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
    case mi::OptionKind::choice: return std::string("\"") + d.choices[v] + "\"";
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
  }
  return "?";
}

std::string range_text(const mi::OptionDesc& d) {
  if (d.kind == mi::OptionKind::flag) return "";
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
  printf("# file < the environment (MIMALLOC_<NAME>) < mi_option_set() at run time.\n");
  printf("# Sizes and durations are strings with units (\"64MiB\", \"1GiB\", \"512k\";\n");
  printf("# \"10ms\", \"2s\") or plain integers (bytes; milliseconds). A bad line is\n");
  printf("# reported (file:line) and skipped; the rest of the file applies. Check a\n");
  printf("# file with: mi-reserve --check-config FILE\n");
  printf("\n[options]\n");
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi::OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(i));
    printf("# %s%s\n", d.description, d.runtime ? "" : " (read at start-up)");
    printf("%s = %s\n", d.name, value_text(d, d.default_value).c_str());
  }
  size_t n = 0;
  const mi::ConfigKey* keys = mi::config_node_keys(&n);
  printf("\n# Per-node settings: a table [node.N] for node N (0, 1, ...), for example:\n");
  printf("# [node.0]\n");
  for (size_t i = 0; i < n; i++) printf("# %s = %s    # %s\n", keys[i].name, keys[i].example, keys[i].description);
  keys = mi::config_reserve_keys(&n);
  printf("\n# The huge pages mi-reserve(8) reserves at boot (the library only checks these):\n");
  printf("# [reserve]\n");
  for (size_t i = 0; i < n; i++) printf("# %s = %s    # %s\n", keys[i].name, keys[i].example, keys[i].description);
}

void markdown() {
  printf("# Options\n\n");
  printf("Generated from the option table in `lib/common/options.cpp` by `tools/gen-options --markdown`.\n");
  printf("Set an option in the environment as `MIMALLOC_<NAME>`, in the configuration file under\n");
  printf("`[options]` by its name, or at run time with `mi_option_set`. Options marked *start-up*\n");
  printf("are read when the process starts; the others take effect when changed.\n\n");
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
  printf("\n## Per-node settings (`[node.N]`)\n\n| key | example | description |\n|---|---|---|\n");
  for (size_t i = 0; i < n; i++) printf("| `%s` | `%s` | %s |\n", keys[i].name, keys[i].example, keys[i].description);
  keys = mi::config_reserve_keys(&n);
  printf("\n## mi-reserve (`[reserve]`)\n\n| key | example | description |\n|---|---|---|\n");
  for (size_t i = 0; i < n; i++) printf("| `%s` | `%s` | %s |\n", keys[i].name, keys[i].example, keys[i].description);
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
  fprintf(stderr, "usage: gen-options --toml | --markdown\n");
  return 2;
}
