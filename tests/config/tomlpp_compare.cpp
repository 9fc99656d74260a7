// tomlpp_compare: reads config files with toml++ (a full TOML 1.0 parser) and
// with our reader (lib/common/config.cpp), and checks that they agree:
//
//   (a) a file toml++ rejects gives at least one problem from ours;
//   (b) for a file toml++ accepts, every key under [options], [node.N],
//       [reserve], [program.NAME] and [program.NAME.node.N] is either
//       applied by ours with the value toml++ reads (converted as the option
//       table says: sizes in KiB, durations in ms, booleans 0/1), from the
//       line toml++ says, or reported as a problem at that line; every
//       option ours applied is a key toml++ sees; any other key or table is
//       reported. This program is "postgres" (argv[0]) and "mariadbd" (the
//       executable): their tables win over [options] and [node.N] (the last
//       in the file over the others), every other program's table is only
//       checked.
//
//   tomlpp_compare FILE|DIR... every file (a directory: its files, sorted) as it is, with CRLF line ends, and
//                              without its final newline
//   plus generated inputs: a file of nearly 1 MB, files of random bytes
//
// Built from the parser's sources (config.cpp, options.cpp and what they
// call), not from the allocator library: applying a file sets every option,
// disallow_os_alloc too, and this program allocates through glibc's malloc.
// Exit status 0 (all agree), 1 (a disagreement; each is printed), 77 (no
// toml++: skipped).
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#if __has_include(<toml++/toml.h>) && !defined(MI_NO_TOMLPP)
#include <toml++/toml.h>
#define HAVE_TOMLPP 1
#endif

#include "common/config.h"
#include "common/messages.h"
#include "common/options.h"
#include "common/program.h"

#ifndef HAVE_TOMLPP
int main() {
  printf("SKIP: toml++ is not installed (Debian: libtomlplusplus-dev)\n");
  return 77;
}
#else

namespace {

int failures = 0;
int files_checked = 0, files_rejected = 0, keys_compared = 0, program_values = 0;

struct Problem {
  long line;
  std::string text;
};
std::vector<Problem> problems;
std::string current_name;

// The messages of the check pass: "NAME:LINE: text\n".
void collect(const char* msg, void*) {
  std::string m(msg);
  const std::string prefix = current_name + ":";
  if (m.compare(0, prefix.size(), prefix) != 0) {
    problems.push_back({-1, m});
    return;
  }
  long line = strtol(m.c_str() + prefix.size(), nullptr, 10);
  problems.push_back({line, m});
}

void discard(const char*, void*) {}

std::string printable(const std::string& s, size_t max = 300) {
  std::string r;
  for (unsigned char c : s.substr(0, max)) {
    if (c == '\n') r += "\\n";
    else if (c == '\r') r += "\\r";
    else if (c < 0x20 || c == 0x7F) {
      char b[8];
      snprintf(b, sizeof(b), "\\x%02x", c);
      r += b;
    } else r += static_cast<char>(c);
  }
  if (s.size() > max) r += "...";
  return r;
}

void fail(const std::string& name, const std::string& what) {
  failures++;
  fprintf(stderr, "FAIL %s: %s\n", name.c_str(), what.c_str());
}

void dump_problems() {
  for (const Problem& p : problems) fprintf(stderr, "    ours: %s", printable(p.text).c_str()), fprintf(stderr, "\n");
}

bool problem_at(long line) {
  for (const Problem& p : problems) {
    if (p.line == line) return true;
  }
  return false;
}

bool problem_mentions(const std::string& s) {
  for (const Problem& p : problems) {
    if (p.text.find(s) != std::string::npos) return true;
  }
  return false;
}

// A value, or none (std::optional<long> trips GCC 12's -Wmaybe-uninitialized).
struct Maybe {
  bool ok = false;
  long v = 0;
  Maybe() = default;
  Maybe(long value) : ok(true), v(value) {}  // NOLINT: implicit, like optional
  explicit operator bool() const { return ok; }
  long operator*() const { return v; }
};

// The value an option gets from a toml++ node, converted as the option table
// says (independently of config.cpp, except that the text of a string goes
// through option_parse_value: units are our syntax, not TOML's). nullopt:
// not a valid value of the option.
Maybe expected_value(const mi::OptionDesc& d, const toml::node& n) {
  long long v;
  if (auto b = n.as_boolean()) {
    // a choice whose first two values are false and true (show_stats: false, true, json) takes booleans
    const bool choice_flag = d.kind == mi::OptionKind::choice && d.choices != nullptr && d.choices[0] != nullptr &&
                             std::string(d.choices[0]) == "false" && d.choices[1] != nullptr &&
                             std::string(d.choices[1]) == "true";
    const bool flag_like =
        d.kind == mi::OptionKind::flag || (d.kind == mi::OptionKind::number && d.min == 0 && d.max == 1) || choice_flag;
    if (!flag_like) return Maybe{};
    v = b->get() ? 1 : 0;
  } else if (auto i = n.as_integer()) {
    v = i->get();
    switch (d.kind) {
      case mi::OptionKind::flag:
        if (v != 0 && v != 1) return Maybe{};
        break;
      case mi::OptionKind::size_kib:  // bytes, rounded up to KiB
        if (v < 0) return Maybe{};
        v = v / 1024 + (v % 1024 != 0 ? 1 : 0);
        break;
      default: break;  // numbers, milliseconds, the index of a choice
    }
  } else if (auto s = n.as_string()) {
    const std::string& text = s->get();
    if (text.find('\0') != std::string::npos) return Maybe{};  // a NUL cannot be passed on
    long out = 0;
    const char* expected = nullptr;
    if (!mi::option_parse_value(d, text.c_str(), &out, &expected)) return Maybe{};
    return out;
  } else {
    return Maybe{};  // floats, dates, arrays, tables
  }
  if (v < d.min || v > d.max) return Maybe{};
  return static_cast<long>(v);
}

long line_of(const toml::node& n) { return static_cast<long>(n.source().begin.line); }

// This program's names for the reader (lib/common/program): [program.postgres]
// and [program.mariadbd] apply, every other [program.NAME] is only checked.
const char* const PROGRAM_ARGV0 = "postgres";
const char* const PROGRAM_EXE = "mariadbd";

bool names_this_program(const std::string& name) { return name == PROGRAM_ARGV0 || name == PROGRAM_EXE; }

void reset_everything() {
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    mi::option_set_from(o, mi::option_desc(o).default_value, mi::OptionSource::default_, nullptr, 0);
  }
  mi::config_reset_nodes();
  mi::program_set_names(PROGRAM_ARGV0, PROGRAM_EXE);
  // every problem printed (a file may set these; then it is what it says)
  mi::option_set_from(mi_option_show_errors, 1, mi::OptionSource::default_, nullptr, 0);
  mi::option_set_from(mi_option_max_warnings, -1, mi::OptionSource::default_, nullptr, 0);
  mi::option_set_from(mi_option_verbose, 0, mi::OptionSource::default_, nullptr, 0);
}

// The [program.NAME] tables toml++ sees that name this program.
struct ProgramTable {
  std::string name;
  const toml::table* table;
};

// One key of a table that names an option.
struct OptionKey {
  std::string key;
  const toml::node* node;
  std::string program;  // "" for [options]
};

// In line order, the keys of one table that name option i: a key ours
// reported (a value it does not read, or the option set a second time) is
// skipped; the first other is the one applied (and must be valid), and
// there must be no other. Returns it, or nullptr.
const OptionKey* applied_key(const std::string& name, const mi::OptionDesc& d, std::vector<OptionKey>& keys,
                             const std::string& table) {
  std::sort(keys.begin(), keys.end(),
            [](const OptionKey& a, const OptionKey& b) { return line_of(*a.node) < line_of(*b.node); });
  const OptionKey* applied = nullptr;
  for (const OptionKey& k : keys) {
    const long line = line_of(*k.node);
    keys_compared++;
    if (problem_at(line)) continue;
    if (applied != nullptr) {
      fail(name, "option " + std::string(d.name) + " set again in " + table + " by '" + k.key + "' at line " +
                     std::to_string(line) + " without a problem");
      continue;
    }
    applied = &k;
    if (!expected_value(d, *k.node)) {
      fail(name, std::string("invalid value of ") + d.name + " at line " + std::to_string(line) + " was not reported");
    }
  }
  return applied;
}

// The keys of `opts` by option; unknown keys must be reported.
std::map<int, std::vector<OptionKey> > keys_by_option(const std::string& name, const toml::table& opts,
                                                      const std::string& program) {
  // keys of the file that name each option (a legacy name or another case names it too)
  std::map<int, std::vector<OptionKey> > by_option;
  for (auto&& [k, v] : opts) {
    const std::string key(k.str());
    const mi::OptionDesc* d = mi::option_find(key.c_str(), key.size());
    const long line = line_of(v);
    if (program != "" && key == "node" && v.is_table()) continue;  // [program.NAME.node.N]: compare_nodes
    if (d == nullptr || key.find('\0') != std::string::npos) {
      if (!problem_at(line))
        fail(name, "unknown option '" + printable(key) + "' (line " + std::to_string(line) + ") was not reported");
      continue;
    }
    by_option[static_cast<int>(d->option)].push_back({key, &v, program});
  }
  return by_option;
}

// Every option: the value of the last valid key of this program's
// [program.NAME] tables (in file order), else of [options], else none; and
// the tables of other programs only checked.
void compare_options(const std::string& name, const toml::table& opts, const std::vector<ProgramTable>& mine,
                     const std::vector<ProgramTable>& others) {
  std::map<int, std::vector<OptionKey> > global = keys_by_option(name, opts, "");
  std::vector<std::map<int, std::vector<OptionKey> > > programs;
  for (const ProgramTable& t : mine) programs.push_back(keys_by_option(name, *t.table, t.name));
  for (const ProgramTable& t : others) {
    for (auto& [i, keys] : keys_by_option(name, *t.table, t.name)) {
      applied_key(name, mi::option_desc(static_cast<mi_option_t>(i)), keys, "[program." + t.name + "]");
    }
  }
  for (int i = 0; i < mi::OPTION_COUNT; i++) {
    const mi_option_t o = static_cast<mi_option_t>(i);
    const mi::OptionDesc& d = mi::option_desc(o);
    const char* file = nullptr;
    const char* program = nullptr;
    int our_line = 0;
    const mi::OptionSource src = mi::option_source(o, &file, &our_line, &program);
    // the candidates: each table's applied key; a program's last one wins
    const OptionKey* want_key = nullptr;
    for (size_t t = 0; t < programs.size(); t++) {
      auto it = programs[t].find(i);
      if (it == programs[t].end()) continue;
      const OptionKey* k = applied_key(name, d, it->second, "[program." + mine[t].name + "]");
      if (k != nullptr && expected_value(d, *k->node) &&
          (want_key == nullptr || line_of(*k->node) > line_of(*want_key->node))) {
        want_key = k;
      }
    }
    auto git = global.find(i);
    const OptionKey* global_key = (git != global.end()) ? applied_key(name, d, git->second, "[options]") : nullptr;
    if (want_key == nullptr && global_key != nullptr && expected_value(d, *global_key->node)) want_key = global_key;
    if (want_key == nullptr) {
      if (src == mi::OptionSource::config_file) {
        fail(name,
             std::string(d.name) + " applied from line " + std::to_string(our_line) +
                 (global_key != nullptr || git == global.end() ? ", but toml++ has no valid key for it that applies"
                                                               : ", a line ours reported"));
      }
      continue;
    }
    const long line = line_of(*want_key->node);
    const long want = *expected_value(d, *want_key->node);
    const std::string where = want_key->program.empty() ? "[options]" : "[program." + want_key->program + "]";
    if (src != mi::OptionSource::config_file) {
      fail(name, std::string(d.name) + " = " + std::to_string(want) + " (toml++, line " + std::to_string(line) + ", " +
                     where + ") was neither applied nor reported");
      continue;
    }
    if (our_line != line) {
      fail(name, std::string(d.name) + ": applied from line " + std::to_string(our_line) + ", toml++ says line " +
                     std::to_string(line) + " (" + where + ")");
    }
    if (file == nullptr || name != file) fail(name, std::string(d.name) + ": the source file is not the file's name");
    if (!want_key->program.empty()) program_values++;
    const std::string our_program = program != nullptr ? program : "";
    if (our_program != want_key->program) {
      fail(name, std::string(d.name) + ": applied from [program." + our_program + "], toml++ says " + where);
    }
    if (mi::option_get(o) != want) {
      fail(name, std::string(d.name) + ": ours " + std::to_string(mi::option_get(o)) + ", toml++ " +
                     std::to_string(want) + " (line " + std::to_string(line) + ")");
    }
  }
}

// A node key of a [node.N] or [program.NAME.node.N] table.
struct NodeKeyValue {
  long line;
  Maybe value;
  std::string program;
};

// The keys of one [node] (or [program.NAME.node]) table, checked: what each
// valid one sets, by node and key (0: reserve_huge_os_pages, 1: arena_reserve).
void node_keys_of(const std::string& name, const toml::table& nodes, const std::string& program,
                  std::map<std::pair<int, int>, NodeKeyValue>* out) {
  const std::string prefix = program.empty() ? "[node." : "[program." + program + ".node.";
  for (auto&& [k, v] : nodes) {
    const std::string key(k.str());
    const long line = line_of(v);
    bool numeric = !key.empty() && key.size() <= 2 && (key == "0" || key[0] != '0');
    for (char c : key) numeric = numeric && c >= '0' && c <= '9';
    const int node = numeric ? atoi(key.c_str()) : -1;
    const toml::table* t = v.as_table();
    if (node < 0 || node >= mi::CONFIG_MAX_NODES || t == nullptr) {
      if (!problem_at(line) && !problem_mentions("node")) fail(name, prefix + printable(key) + "] was not reported");
      continue;
    }
    for (auto&& [nk, nv] : *t) {
      const std::string nkey(nk.str());
      const long nline = line_of(nv);
      int which;
      Maybe want;
      if (nkey == "reserve_huge_os_pages") {
        which = 0;
        want = expected_value(mi::option_desc(mi_option_reserve_huge_os_pages), nv);
      } else if (nkey == "arena_reserve") {
        which = 1;
        want = expected_value(mi::option_desc(mi_option_arena_reserve), nv);
      } else {
        if (!problem_at(nline))
          fail(name, "unknown key '" + printable(nkey) + "' of " + prefix + key + "] was not reported");
        continue;
      }
      keys_compared++;
      if (!want) {
        if (!problem_at(nline))
          fail(name,
               "invalid " + prefix + key + "] " + nkey + " (line " + std::to_string(nline) + ") was not reported");
        continue;
      }
      if (problem_at(nline)) continue;  // not read, but reported
      NodeKeyValue& slot = (*out)[{node, which}];
      if (slot.line == 0 || nline > slot.line) slot = NodeKeyValue{nline, want, program};
    }
  }
}

// Every node setting: this program's [program.NAME.node.N] value (the last
// in file order), else the [node.N] value; the others' only checked.
void compare_nodes(const std::string& name, const toml::table& nodes, const std::vector<ProgramTable>& mine,
                   const std::vector<ProgramTable>& others) {
  std::map<std::pair<int, int>, NodeKeyValue> global, program, ignored;
  node_keys_of(name, nodes, "", &global);
  for (const ProgramTable& t : mine) {
    if (const toml::table* n = t.table->get_as<toml::table>("node")) node_keys_of(name, *n, t.name, &program);
  }
  for (const ProgramTable& t : others) {
    if (const toml::table* n = t.table->get_as<toml::table>("node")) node_keys_of(name, *n, t.name, &ignored);
  }
  for (int n = 0; n < mi::CONFIG_MAX_NODES; n++) {
    for (int which = 0; which < 2; which++) {
      const NodeKeyValue* want = nullptr;
      auto p = program.find({n, which});
      auto g = global.find({n, which});
      if (p != program.end()) want = &p->second;
      else if (g != global.end()) want = &g->second;
      long ours;
      const char* from;
      if (which == 0) {
        ours = mi::config_node_huge_pages(n);
        from = mi::config_node_huge_pages_program(n);
      } else {
        ours = static_cast<long>(mi::config_node_arena_reserve(n) / 1024);
        if (ours == 0) ours = -1;
        from = mi::config_node_arena_reserve_program(n);
      }
      const std::string what = "node " + std::to_string(n) + (which == 0 ? " reserve_huge_os_pages" : " arena_reserve");
      if (want == nullptr) {
        if (ours != -1) fail(name, what + " applied (" + std::to_string(ours) + ") that toml++ does not see");
        continue;
      }
      if (!want->program.empty()) program_values++;
      if (ours != *want->value) {
        fail(name, what + ": ours " + std::to_string(ours) + ", toml++ " + std::to_string(*want->value) + " (line " +
                       std::to_string(want->line) + ")");
      }
      if ((from != nullptr ? std::string(from) : std::string()) != want->program) {
        fail(name,
             what + ": from [program." + (from != nullptr ? from : "") + "], toml++ says from " +
                 (want->program.empty() ? "[node." + std::to_string(n) + "]" : "[program." + want->program + "]"));
      }
    }
  }
}

// [program]: the tables of this program and of the others; a key that is
// not a table, or a name that names no program, must be reported.
void split_programs(const std::string& name, const toml::table& programs, std::vector<ProgramTable>* mine,
                    std::vector<ProgramTable>* others) {
  for (auto&& [k, v] : programs) {
    const std::string key(k.str());
    const toml::table* t = v.as_table();
    const bool nameable = !key.empty() && key.find('/') == std::string::npos && key.find('\0') == std::string::npos;
    if (t == nullptr || !nameable) {
      if (!problem_at(line_of(v)) && !problem_mentions("program")) {
        fail(name, "[program] key or table '" + printable(key) + "' (line " + std::to_string(line_of(v)) +
                       ") was not reported");
      }
      continue;
    }
    // a table ours does not read: a program beyond the 32 a file may have (reported at its first line)
    bool beyond = false;
    for (const Problem& p : problems)
      beyond = beyond || (p.line == line_of(v) && p.text.find("more than 32 [program.NAME]") != std::string::npos);
    if (beyond) continue;
    (names_this_program(key) ? mine : others)->push_back({key, t});
  }
}

void compare_reserve(const std::string& name, const std::string& path, const toml::table* res) {
  mi::ConfigReserve r;
  std::vector<Problem> saved = problems;
  const int n = mi::config_read_reserve(path.c_str(), &r, &discard, nullptr);
  if (static_cast<size_t>(n) != saved.size()) {
    fail(name,
         "config_read_reserve found " + std::to_string(n) + " problems, config_parse " + std::to_string(saved.size()));
  }
  problems = saved;
  auto check_long = [&](const char* key, long ours, Maybe want, long line) {
    keys_compared++;
    if (!want) {
      if (!problem_at(line)) fail(name, std::string("invalid [reserve] ") + key + " was not reported");
      if (ours != -1) fail(name, std::string("invalid [reserve] ") + key + " was read as " + std::to_string(ours));
    } else if (ours == -1 && problem_at(line)) {
      // not read, but reported
    } else if (ours != *want) {
      fail(name,
           std::string("[reserve] ") + key + ": ours " + std::to_string(ours) + ", toml++ " + std::to_string(*want));
    }
  };
  std::set<std::string> seen;
  if (res != nullptr) {
    for (auto&& [k, v] : *res) {
      const std::string key(k.str());
      const long line = line_of(v);
      seen.insert(key);
      if (key == "pages" || key == "per_node") {
        Maybe want;
        if (auto i = v.as_integer(); i && i->get() >= 0 && i->get() <= 1048576) want = static_cast<long>(i->get());
        check_long(key.c_str(), key == "pages" ? r.pages : r.per_node, want, line);
      } else if (key == "page_size") {
        // the string as toml++ decodes it, read by the rule mi-reserve's --page-size uses
        Maybe want;
        long kib = 0;
        if (auto s = v.as_string(); s && mi::config_page_size_parse(s->get().c_str(), &kib)) want = kib;
        check_long("page_size", r.page_size_kib, want, line);
      } else if (key == "timeout") {
        // as mi-reserve's --timeout reads it: a bare number is seconds
        Maybe want;
        long ms = 0;
        if (auto i = v.as_integer(); i && i->get() >= 0 && i->get() <= mi::CONFIG_TIMEOUT_MAX_MS / 1000) {
          want = static_cast<long>(i->get()) * 1000;
        } else if (auto s = v.as_string(); s && mi::config_timeout_parse(s->get().c_str(), &ms)) {
          want = ms;
        }
        check_long("timeout", r.timeout_ms, want, line);
      } else if (key == "nodes") {
        keys_compared++;
        auto s = v.as_string();
        if (s && r.nodes[0] != 0 && s->get() != r.nodes)
          fail(name, "[reserve] nodes: ours \"" + std::string(r.nodes) + "\", toml++ \"" + s->get() + "\"");
        if (r.nodes[0] == 0 && !problem_at(line)) fail(name, "[reserve] nodes not read and not reported");
      } else if (!problem_at(line)) {
        fail(name, "unknown [reserve] key '" + printable(key) + "' was not reported");
      }
    }
  }
  if (seen.count("pages") == 0 && r.pages != -1) fail(name, "[reserve] pages read that toml++ does not see");
  if (seen.count("per_node") == 0 && r.per_node != -1) fail(name, "[reserve] per_node read that toml++ does not see");
  if (seen.count("page_size") == 0 && r.page_size_kib != -1)
    fail(name, "[reserve] page_size read that toml++ does not see");
  if (seen.count("timeout") == 0 && r.timeout_ms != -1) fail(name, "[reserve] timeout read that toml++ does not see");
  if (seen.count("nodes") == 0 && r.nodes[0] != 0) fail(name, "[reserve] nodes read that toml++ does not see");
}

// Compares one input. `path` is a file holding `data` (config_read_reserve reads files).
void compare(const std::string& name, const std::string& path, const std::string& data) {
  files_checked++;
  reset_everything();
  problems.clear();
  current_name = name;
  // check pass: the problems, each with its line
  const int checked = mi::config_parse(name.c_str(), data.data(), data.size(), false, &collect, nullptr);
  // apply pass: the values (its warnings obey show_errors and max_warnings, which the file may set)
  mi_register_output(&discard, nullptr);
  const int n = mi::config_parse(name.c_str(), data.data(), data.size(), true, nullptr, nullptr);
  mi_register_output(nullptr, nullptr);
  if (static_cast<size_t>(checked) != problems.size()) {
    fail(name, "config_parse counted " + std::to_string(checked) + " problems but printed " +
                   std::to_string(problems.size()));
  }
  if (n != checked)
    fail(name, "checking found " + std::to_string(checked) + " problems, applying " + std::to_string(n));
  for (const Problem& p : problems) {
    if (p.line < 1) fail(name, "a message without file:line: " + printable(p.text));
  }
  toml::table tbl;
  try {
    tbl = toml::parse(std::string_view(data), name);
  } catch (const toml::parse_error& e) {
    files_rejected++;
    if (n == 0) {
      std::ostringstream os;
      os << e.description() << " at line " << e.source().begin.line;
      fail(name, "toml++ rejects the file (" + os.str() + ") but ours reports no problem");
    }
    return;
  }
  const size_t failures_before = failures;
  const toml::table empty;
  const toml::table* options = &empty;
  const toml::table* nodes = &empty;
  std::vector<ProgramTable> mine, others;
  for (auto&& [k, v] : tbl) {
    const std::string key(k.str());
    if (key == "options") {
      if (const toml::table* t = v.as_table()) options = t;
      else if (!problem_at(line_of(v))) fail(name, "'options' is not a table, not reported");
    } else if (key == "node") {
      if (const toml::table* t = v.as_table()) nodes = t;
      else if (!problem_at(line_of(v))) fail(name, "'node' is not a table, not reported");
    } else if (key == "program") {
      if (const toml::table* t = v.as_table()) split_programs(name, *t, &mine, &others);
      else if (!problem_at(line_of(v))) fail(name, "'program' is not a table, not reported");
    } else if (key == "reserve") {
      if (!v.is_table() && !problem_at(line_of(v))) fail(name, "'reserve' is not a table, not reported");
    } else if (!problem_mentions(key) && !problem_at(line_of(v))) {
      fail(name, "the key or table '" + printable(key) + "' was not reported");
    }
  }
  compare_options(name, *options, mine, others);
  compare_nodes(name, *nodes, mine, others);
  compare_reserve(name, path, tbl.get_as<toml::table>("reserve"));
  if (static_cast<size_t>(failures) != failures_before) dump_problems();
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

std::string tmp_dir;

// A file holding `data` for config_read_reserve (which takes a path): a
// memfd, opened through /proc/self/fd/N (no disk writes: thousands of inputs
// run), else a file in the temporary directory.
int memfd = -2;

std::string write_temp(const std::string& base, const std::string& data) {
  if (memfd == -2) memfd = memfd_create("tomlpp_compare", MFD_CLOEXEC);
  if (memfd >= 0 && ftruncate(memfd, 0) == 0 &&
      pwrite(memfd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size())) {
    return "/proc/self/fd/" + std::to_string(memfd);
  }
  std::string path = tmp_dir + "/" + base;
  std::ofstream f(path, std::ios::binary);
  f << data;
  return path;
}

// The file as it is, with CRLF line ends, and without its final newline.
void compare_variants(const std::string& name, const std::string& data) {
  compare(name, write_temp("plain.toml", data), data);
  std::string crlf;
  for (char c : data) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  if (crlf != data) compare(name + "(crlf)", write_temp("crlf.toml", crlf), crlf);
  if (!data.empty() && data.back() == '\n') {
    std::string cut = data.substr(0, data.size() - 1);
    compare(name + "(no final newline)", write_temp("cut.toml", cut), cut);
  }
}

uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
uint64_t rng() {  // xorshift64*: the same bytes every run
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

// A file of nearly 1 MB: comments and blank lines around every option (at its
// minimum), then every [node.N] table. 15/16 of the most the reader takes
// (CONFIG_FILE_MAX), so that with CRLF line ends too (one byte more per line
// of about 60) it is read whole; the limit itself: tests/unit/config_test.cpp.
std::string big_file() {
  std::string s = "# a 1 MB file\n[options]\n";
  const int per_key = 120;  // comment lines between two keys
  int i = 0;
  while (s.size() < mi::CONFIG_FILE_MAX / 16 * 15 || i / per_key < mi::OPTION_COUNT + mi::CONFIG_MAX_NODES) {
    s += (i % 7 == 0) ? "\n"
                      : "# comment line " + std::to_string(i) + " ..................................................\n";
    const int k = i / per_key;
    if (i % per_key == per_key / 2 && k < mi::OPTION_COUNT) {
      const mi::OptionDesc& d = mi::option_desc(static_cast<mi_option_t>(k));
      s += std::string(d.name) + " = " + std::to_string(d.kind == mi::OptionKind::size_kib ? d.min * 1024 : d.min) +
           "  # its minimum\n";
    } else if (i % per_key == per_key / 2 && k - mi::OPTION_COUNT < mi::CONFIG_MAX_NODES) {
      const int node = k - mi::OPTION_COUNT;
      s += "[node." + std::to_string(node) + "]\nreserve_huge_os_pages = " + std::to_string(node) +
           "\narena_reserve = \"" + std::to_string(node + 4) + "MiB\"\n";
    }
    i++;
  }
  return s;
}

// Random lines of TOML-like text built from the pieces a config file has:
// table headers, keys (option names, node keys, dotted, quoted), values of
// every TOML type and of every unit, comments, white space, and some junk.
std::string pick(const std::vector<std::string>& v) { return v[rng() % v.size()]; }

std::string random_key() {
  static const std::vector<std::string> keys = {"verbose",
                                                "os_tag",
                                                "purge_delay",
                                                "arena_reserve",
                                                "numa_bind",
                                                "show_stats",
                                                "max_errors",
                                                "decommit_delay",
                                                "Verbose",
                                                "reserve_huge_os_pages",
                                                "pages",
                                                "page_size",
                                                "nodes",
                                                "timeout",
                                                "per_node",
                                                "x",
                                                "0",
                                                "1",
                                                "63",
                                                "64",
                                                "01",
                                                "node",
                                                "options",
                                                "reserve",
                                                "guarded_min",
                                                "eager_commit",
                                                "max_segment_reclaim",
                                                "reset_delay",
                                                "program",
                                                "postgres",
                                                "mariadbd",
                                                "other"};
  // prefixes that reach into [program.NAME] and [program.NAME.node.N] tables
  static const std::vector<std::string> prefixes = {"program.postgres.", "program.mariadbd.",
                                                    "program.other.",    "postgres.",
                                                    "mariadbd.",         "node.0.",
                                                    "node.1.",           "program.postgres.node.0.",
                                                    "postgres.node.1.",  "program.\"python3.11\".",
                                                    "program.\"\".",     "program.\"/x\"."};
  std::string k = pick(keys);
  switch (rng() % 10) {
    case 8:
    case 9: return pick(prefixes) + k;
    case 0: return "\"" + k + "\"";
    case 1: return "'" + k + "'";
    case 2: return pick(keys) + "." + k;
    case 3: return pick(keys) + " . " + k;
    case 4: return "\"" + k + "\\u0041\"";
    default: return k;
  }
}

std::string random_value() {
  static const std::vector<std::string> values = {"true",
                                                  "false",
                                                  "True",
                                                  "1",
                                                  "0",
                                                  "-1",
                                                  "+1",
                                                  "42",
                                                  "0x2A",
                                                  "0o52",
                                                  "0b101010",
                                                  "1_000",
                                                  "1__0",
                                                  "_1",
                                                  "1_",
                                                  "0x",
                                                  "-0x1",
                                                  "007",
                                                  "-0",
                                                  "+0",
                                                  "9223372036854775807",
                                                  "9223372036854775808",
                                                  "-9223372036854775808",
                                                  "1.5",
                                                  "1e3",
                                                  "inf",
                                                  "nan",
                                                  "-inf",
                                                  "1979-05-27",
                                                  "07:32:00",
                                                  "1979-05-27T07:32:00Z",
                                                  "[1, 2]",
                                                  "[]",
                                                  "{ a = 1 }",
                                                  "{}",
                                                  "\"64MiB\"",
                                                  "\"1GiB\"",
                                                  "\"512k\"",
                                                  "\"10ms\"",
                                                  "\"2s\"",
                                                  "\"1min\"",
                                                  "\"on\"",
                                                  "\"off\"",
                                                  "\"yes\"",
                                                  "\"no\"",
                                                  "\"none\"",
                                                  "\"preferred\"",
                                                  "\"strict\"",
                                                  "'strict'",
                                                  "\"\\u0031\"",
                                                  "\"a\\tb\"",
                                                  "\"\\x41\"",
                                                  "\"unclosed",
                                                  "'unclosed",
                                                  "\"\"\"multi\"\"\"",
                                                  "'''lit'''",
                                                  "\"\"",
                                                  "''",
                                                  "\"1G\"",
                                                  "\"2M\"",
                                                  "\"all\"",
                                                  "\"0,2-3\"",
                                                  "\"30s\"",
                                                  "64MiB",
                                                  "10ms",
                                                  "yes",
                                                  "\"\\\"\"",
                                                  "\"#\"",
                                                  "1 2",
                                                  "\"\"\"",
                                                  "'''",
                                                  "[",
                                                  "[ \"\"\"",
                                                  "[\n  1,\n  2,\n]",
                                                  "{ a = \"\"\"",
                                                  "[ '''",
                                                  "\"\"\"\\",
                                                  "[ \"]\", '[' ",
                                                  "\"\"\"a\"\"\"\"",
                                                  "0x7fffffffffffffff",
                                                  "0xffffffffffffffff",
                                                  "1e",
                                                  "+",
                                                  "-",
                                                  "0_1",
                                                  "0b"};
  return pick(values);
}

std::string random_line() {
  static const std::vector<std::string> headers = {"[options]",
                                                   "[node]",
                                                   "[node.0]",
                                                   "[node.1]",
                                                   "[node.63]",
                                                   "[node.64]",
                                                   "[node.01]",
                                                   "[reserve]",
                                                   "[ options ]",
                                                   "[\"options\"]",
                                                   "[node.\"2\"]",
                                                   "[node . 3]",
                                                   "[[options]]",
                                                   "[options.x]",
                                                   "[other]",
                                                   "[options",
                                                   "[]",
                                                   "[node.0.x]",
                                                   "[program]",
                                                   "[program.postgres]",
                                                   "[program.mariadbd]",
                                                   "[program.other]",
                                                   "[program.\"python3.11\"]",
                                                   "[program.python3.11]",
                                                   "[program.postgres.node]",
                                                   "[program.postgres.node.0]",
                                                   "[program.mariadbd.node.1]",
                                                   "[program.postgres.node.64]",
                                                   "[program.\"\"]",
                                                   "[program.\"/bin/x\"]",
                                                   "[ program . postgres ]",
                                                   "[program.postgres.x]",
                                                   "[[program.postgres]]"};
  static const std::vector<std::string> ws = {"", " ", "  ", "\t"};
  static const std::vector<std::string> inside = {
      "]",          "],",           "1,",    "\"\"\",", "\"\"\"",   "'''", "\"]\",",         "[ 'a]', \"b]\" ],",
      "}",          "\"\"\" ]",     "''' }", "a\\",     "\\\"\"\"", "# ]", "verbose = true", "[options]",
      "\"\"\"\"\"", "x\"\"\"\"\" ]"};
  // whole values over several lines (valid TOML) whose text looks like keys and headers
  static const std::vector<std::string> spans = {
      "[\n  \"\"\"\nverbose = true\n\"\"\",\n  'a]',\n]",
      "\"\"\"\n[options]\nos_tag = 1\n\"\"\"",
      "'''\nverbose = true'''",
      "{ a = \"\"\"\nshow_stats = true\n\"\"\" }",
      "[ [ 1, 2 ],\n  [ \"]\", '[' ], # ] a comment\n  { b = 'x' },\n] # done",
      "\"\"\"\\\n  max_errors = 3 \\\"\"\"\n\"\"\"\"\"",
      "[\n\"\"\"\n\"\"\"\n]",
      "'''\n\"\"\"\nos_tag = 2\n''''",
  };
  switch (rng() % 14) {
    case 12:
    case 13: return "x" + std::to_string(rng() % 1000) + " = " + pick(spans);
    case 10:
    case 11: return pick(ws) + pick(inside);
    case 0: return pick(ws) + pick(headers) + pick(ws) + (rng() % 4 == 0 ? "# c" : "");
    case 1: return pick(ws) + "# a comment " + random_value();
    case 2: return "";
    case 3: return random_key() + "=" + random_value();
    default:
      return pick(ws) + random_key() + pick(ws) + "=" + pick(ws) + random_value() + pick(ws) +
             (rng() % 5 == 0 ? "# c" : "");
  }
}

std::string random_file() {
  std::string s = (rng() % 2 == 0) ? "[options]\n" : "";
  const int lines = 1 + static_cast<int>(rng() % 12);
  for (int i = 0; i < lines; i++) s += random_line() + "\n";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  char tmpl[] = "/tmp/tomlpp-compare-XXXXXX";
  if (const char* t = getenv("TMPDIR"); t != nullptr && t[0] != 0) {
    static std::string p = std::string(t) + "/tomlpp-compare-XXXXXX";
    if (mkdtemp(p.data()) != nullptr) tmp_dir = p;
  }
  if (tmp_dir.empty()) {
    if (mkdtemp(tmpl) == nullptr) {
      perror("mkdtemp");
      return 1;
    }
    tmp_dir = tmpl;
  }
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      std::vector<std::string> names;
      if (DIR* d = opendir(argv[i])) {
        while (dirent* e = readdir(d)) {
          if (e->d_name[0] != '.') names.push_back(std::string(argv[i]) + "/" + e->d_name);
        }
        closedir(d);
      }
      std::sort(names.begin(), names.end());
      if (names.empty()) fail(argv[i], "an empty directory");
      inputs.insert(inputs.end(), names.begin(), names.end());
    } else {
      inputs.push_back(argv[i]);
    }
  }
  for (const std::string& in : inputs) {
    std::string data;
    if (!read_file(in, &data)) {
      fail(in, "cannot read");
      continue;
    }
    compare_variants(in, data);
  }
  compare_variants("generated-1MB.toml", big_file());
  for (int k = 0; k < 8; k++) {  // random bytes, then random printable text with TOML's punctuation
    std::string data;
    const size_t len = 1 + rng() % 8192;
    for (size_t j = 0; j < len; j++) {
      if (k < 4) {
        data += static_cast<char>(rng() & 0xFF);
      } else {
        static const char alphabet[] = "[]=\"'#.\n\n  abcdefgnoptsv_019-+xu\\{},:";
        data += alphabet[rng() % (sizeof(alphabet) - 1)];
      }
    }
    compare("generated-random-" + std::to_string(k) + ".toml", write_temp("random.toml", data), data);
  }
  // random TOML-like lines (TOMLPP_COMPARE_RANDOM=N for more: a search for disagreements)
  const char* more = getenv("TOMLPP_COMPARE_RANDOM");
  const long files = more != nullptr ? atol(more) : 20000;
  for (long k = 0; k < files; k++) {
    const std::string data = random_file();
    compare("generated-lines-" + std::to_string(k) + ".toml", write_temp("random.toml", data), data);
  }
  for (const char* f : {"plain.toml", "crlf.toml", "cut.toml", "random.toml"}) unlink((tmp_dir + "/" + f).c_str());
  rmdir(tmp_dir.c_str());
  printf(
      "tomlpp_compare: %d inputs (%d rejected by toml++), %d values compared (%d applied from [program.NAME] tables), "
      "%d disagreements\n",
      files_checked, files_rejected, keys_compared, program_values, failures);
  return failures == 0 ? 0 : 1;
}

#endif
