// mi_reserve.cpp: mi-reserve, huge pages reserved per NUMA node at boot.
//
// Owns: the command line (Boost.Program_options), the four actions (reserve,
// --status, --release, --check-config), how a request becomes a page count
// per node (command line over config file; [node.N] numbered as the
// allocator numbers nodes), the retry loop with memory compaction, the
// cross-checks of the kernel's nodes with hwloc and the library's topology,
// the tables and the exit status. The pools as files are
// pools.h's (with the fake kernel tests use); what mi-reserve added is
// state.h's; value parsers are plan.h's.
//
// Exit status (the help text, mi-reserve(8) and the unit say the same):
//   0  done: everything reserved as asked, given back, or nothing to reserve
//   1  not permitted or not supported (not root, no such page size, no NUMA
//      node N); nothing changed. --check-config: the file has problems
//   2  usage error, or a problem in the config file's [reserve]; nothing changed
//   3  short, and what the kernel gave stays (on_shortfall = keep, the
//      default); also: pages in use that could not be given back
//   4  short, and everything was given back (on_shortfall = release)
//   5  short, everything was given back, and that is a failure
//      (on_shortfall = fail)
// mi-reserve.service counts 3 and 4 as success (SuccessExitStatus=3 4).
//
// The config file: a problem in [reserve], mi-reserve's own table, is an
// error (exit 2: a guessed count or page size could take the machine's memory,
// and a mistyped key would pass for "nothing to reserve"); problems elsewhere
// are warnings, and those lines are read as the allocator reads them
// (skipped), so that mi-reserve reserves what the allocator will claim.
// --check-config is the strict check of the whole file.
//
// Short pages: the retries (compact memory, ask again) go on while they gain
// pages, up to the timeout; two rounds in a row that gain nothing end them
// early, so that a boot where the machine simply has too little free memory
// does not wait out the timeout (the database units are ordered after it).
//
// The tool links the static allocator (mimalloc_numa_internal_dep), for the
// library's own config reader (mi::config_read_reserve): the tool and the
// allocator never disagree about a file. The allocator under the tool runs
// on its built-in defaults (quiet_allocator.cpp): no statistics, no option
// dump, no start-up reservation of its own, whatever the file or the
// environment say.
//
// Single-threaded. Messages: results on stdout; errors, warnings and
// --verbose steps on stderr, each line prefixed "mi-reserve: ".
#include <errno.h>
#include <mimalloc-numa.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../cli/cli.h"
#include "common/config.h"
#include "plan.h"
#include "pools.h"
#include "state.h"
#include "topology/topology.h"

#ifndef MI_RESERVE_VERSION
#define MI_RESERVE_VERSION "0.0.0"
#endif

namespace po = boost::program_options;

namespace mireserve {

namespace {

constexpr int EXIT_DONE = 0;
constexpr int EXIT_NOT_PERMITTED = 1;   // also: not supported; --check-config: problems
constexpr int EXIT_USAGE = 2;           // also: a problem in [reserve]
constexpr int EXIT_PARTIAL = 3;         // short and kept (on_shortfall = keep), or pages in use not given back
constexpr int EXIT_SHORT_RELEASED = 4;  // short and given back (on_shortfall = release)
constexpr int EXIT_SHORT_FAILED = 5;    // short, given back, failed (on_shortfall = fail)

// Rounds of compaction and retry in a row that gain no page before mi-reserve
// stops retrying (before the timeout): at boot, memory is not fragmented
// yet, and what the kernel cannot assemble after two full compactions it will
// not assemble by waiting.
constexpr int FRUITLESS_ROUNDS_MAX = 2;

constexpr long TIMEOUT_DEFAULT_MS = 30000;
constexpr const char* CONFIG_DEFAULT = "/etc/mimalloc-numa.toml";
constexpr const char* STATE_DEFAULT = "/run/mi-reserve/state";

using cli::Exit;
constexpr const char* TOOL = "mi-reserve";

bool verbose = false;

void say_error(const std::string& msg) { cli::say(TOOL, msg); }
void say_warning(const std::string& msg) { cli::say_warning(TOOL, msg); }
void say_verbose(const std::string& msg) {
  if (verbose) cli::say(TOOL, msg);
}
[[noreturn]] void fail(int code, const std::string& msg) {
  say_error(msg);
  throw Exit{code};
}
[[noreturn]] void usage_error(const std::string& msg) { cli::usage_error(TOOL, EXIT_USAGE, msg); }

const char* const HELP_TEXT = &R"(
usage: mi-reserve [--pages N | --per-node N] [--page-size 1G|2M] [--nodes LIST] [--timeout DURATION]
                  [--on-shortfall keep|release|fail] [--config FILE] [--dry-run]
       mi-reserve --status [--json] [--nodes LIST] [--page-size SIZE]
       mi-reserve --release [--nodes LIST] [--page-size SIZE] [--dry-run]
       mi-reserve --check-config FILE

Sets huge pages aside in the kernel's pools, per NUMA node, so that programs
started later can claim them: mimalloc-numa's reserve_huge_os_pages (database
servers). Run it as root at boot, before memory fragments. It writes each
node's nr_hugepages (/sys/devices/system/node/nodeN/hugepages/
hugepages-<size>kB/, or /sys/kernel/mm/hugepages/ without NUMA), reads back
what the kernel gave, and where a node falls short it compacts memory
(/proc/sys/vm/compact_memory) and tries again, while that gains pages, until
the timeout; --on-shortfall says what happens then.

What to reserve (the command line overrides the config file):
  --pages N            N pages in all, spread evenly over the nodes; the
                       remainder goes one each to the lowest nodes
  --per-node N         N pages on each node
  --page-size SIZE     1G (the default; what reserve_huge_os_pages claims) or
                       2M; any size the kernel has a pool of is accepted
  --nodes LIST         the kernel's node numbers, like 0,2-3, or all (the
                       default: every node with a pool of that page size;
                       the first K with [options] use_numa_nodes = K)
  --timeout DURATION   how long at most to keep compacting and retrying when
                       the kernel gives too few pages: 30s (default), 500ms,
                       2min; a plain number is seconds; 0 tries once, without
                       compacting. Retrying stops earlier once two rounds in a
                       row gain no page
  --on-shortfall WHAT  when the kernel gives fewer pages than asked: keep
                       (the default) holds what it gave; release gives it all
                       back; fail gives it all back and exits 5
  --config FILE        read [reserve] and [node.N] from FILE (the allocator's
                       mimalloc-numa.toml); default /etc/mimalloc-numa.toml
                       when it exists. A problem in its [reserve] is an error;
                       problems elsewhere are warnings (those lines are
                       skipped, as the allocator skips them)
  --dry-run            check everything and print what would be written;
                       change nothing

Other actions:
  --status             each node's pools: page size, total, free, reserved by
                       us (mi-reserve), surplus
  --json               with --status: the same as JSON
  --release            give back the pages mi-reserve added, and only those
  --check-config FILE  check a configuration file with the allocator's own
                       reader; print every problem; exit 0 if clean, 1 if not

Where (for tests and unusual systems):
  --sysfs-root DIR     use DIR instead of /sys. When DIR is not sysfs (a test's
                       tree of plain files) mi-reserve also plays the kernel
                       (see pools.h), and /proc, /run and /etc default to
                       DIR/../proc, DIR/../run and DIR/../etc
  --proc-root DIR      use DIR instead of /proc
  --state-file FILE    where mi-reserve remembers what it added (default
                       /run/mi-reserve/state)

  --verbose            say what is done, step by step (on stderr)
  --version            print the version
  -h, --help           print this help

Counts from the config file, used when neither --pages nor --per-node is given:
  [node.N] reserve_huge_os_pages = K   K pages on node N (1 GiB pages only:
                                       the allocator's count of 1 GiB pages).
                                       N counts the kernel's nodes from 0, as
                                       the allocator does: the kernel's number
                                       unless those have gaps (nodes 0,1,3:
                                       [node.2] is node 3)
  [reserve] per_node, else [reserve] pages, else [options]
  reserve_huge_os_pages (with reserve_huge_os_pages_at: on that node only):
  the selected nodes without a [node.N] count, as --per-node / --pages would.
  [reserve] page_size, nodes, timeout and on_shortfall stand in for those
  options. A file that gives no count has nothing to reserve: mi-reserve says
  so in one line and changes nothing (exit 0).

Counts are on top of what the pools hold without mi-reserve (the kernel
command line, vm.nr_hugepages): running it again with the same counts changes
nothing, a smaller count gives back the difference, and --release leaves the
pools as mi-reserve found them.

Exit status:
  0  done: everything reserved as asked, given back, or nothing to reserve
  1  not permitted or not supported (not root, no such page size, no NUMA
     node N); nothing changed. --check-config: the file has problems
  2  usage error, or a problem in the config file's [reserve]; nothing changed
  3  short, and what the kernel gave stays reserved (on_shortfall keep); also
     pages in use that could not be given back (the table shows where)
  4  short, and everything was given back (on_shortfall release)
  5  short, everything was given back, and mi-reserve fails (on_shortfall
     fail)
mi-reserve.service counts 3 and 4 as success, 5 as a failure.

Examples:
  mi-reserve --pages 8                   8 pages of 1 GiB, interleaved
  mi-reserve --per-node 512 --page-size 2M --nodes 0,1
  mi-reserve --status
  mi-reserve --release
)"[1];

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------
enum class Mode { reserve, status, release, check_config };

struct Args {
  Mode mode = Mode::reserve;
  bool json = false;
  bool dry_run = false;
  std::optional<long> pages, per_node, page_size_kib, timeout_ms;
  std::optional<mi::ConfigShortfall> on_shortfall;
  std::optional<std::string> nodes;  // as given (checked)
  std::optional<std::string> config;
  std::string check_config;
  std::optional<std::string> sysfs_root, proc_root, state_file;
};

// Where everything is, with the defaults filled in.
struct Paths {
  Roots roots;
  std::string state;
  std::string config_default;
};

std::string strip_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Paths paths_of(const Args& a) {
  Paths p;
  // Under --sysfs-root DIR, a fake tree mirrors /: DIR/../proc and so on.
  std::string base;
  if (a.sysfs_root) {
    p.roots.sys = strip_slashes(*a.sysfs_root);
    base = dir_of(p.roots.sys);
    if (base == "/") base = "";
  }
  p.roots.proc = a.proc_root ? strip_slashes(*a.proc_root) : base + "/proc";
  p.state = a.state_file ? *a.state_file : base + STATE_DEFAULT;
  p.config_default = base + CONFIG_DEFAULT;
  roots_detect_fake(&p.roots);
  return p;
}

Args parse_args(int argc, char** argv) {
  po::options_description desc;
  desc.add_options()                              //
      ("help,h", "")                              //
      ("version", "")                             //
      ("verbose", "")                             //
      ("pages", po::value<std::string>())         //
      ("per-node", po::value<std::string>())      //
      ("page-size", po::value<std::string>())     //
      ("nodes", po::value<std::string>())         //
      ("timeout", po::value<std::string>())       //
      ("on-shortfall", po::value<std::string>())  //
      ("config", po::value<std::string>())        //
      ("dry-run", "")                             //
      ("status", "")                              //
      ("json", "")                                //
      ("release", "")                             //
      ("check-config", po::value<std::string>())  //
      ("sysfs-root", po::value<std::string>())    //
      ("proc-root", po::value<std::string>())     //
      ("state-file", po::value<std::string>())    //
      ("arguments", po::value<std::vector<std::string>>());
  po::positional_options_description positional;  // none: collected to be refused
  positional.add("arguments", -1);
  const po::variables_map vm = cli::parse_command_line(argc, argv, desc, positional, TOOL, EXIT_USAGE);
  if (vm.count("arguments") != 0) {
    usage_error("unexpected argument '" + vm["arguments"].as<std::vector<std::string>>()[0] +
                "': mi-reserve takes options only");
  }
  cli::help_or_version(vm, HELP_TEXT,
                       std::string("mi-reserve ") + MI_RESERVE_VERSION + " (mimalloc-numa " +
                           std::to_string(MI_NUMA_VERSION_MAJOR) + "." + std::to_string(MI_NUMA_VERSION_MINOR) + "." +
                           std::to_string(MI_NUMA_VERSION_PATCH) + ")",
                       EXIT_DONE);
  Args a;
  verbose = vm.count("verbose") != 0;
  auto text = [&](const char* name) { return vm[name].as<std::string>(); };
  auto given = [&](const char* name) { return vm.count(name) != 0; };

  int modes = 0;
  if (given("status")) {
    a.mode = Mode::status;
    modes++;
  }
  if (given("release")) {
    a.mode = Mode::release;
    modes++;
  }
  if (given("check-config")) {
    a.mode = Mode::check_config;
    a.check_config = text("check-config");
    modes++;
  }
  if (modes > 1) usage_error("--status, --release and --check-config are separate actions: give one");
  for (const char* name : {"check-config", "config", "sysfs-root", "proc-root", "state-file"}) {
    if (given(name) && text(name).empty()) usage_error(std::string("--") + name + ": the name is empty");
  }

  long v;
  if (given("pages")) {
    if (!parse_count(text("pages"), &v))
      usage_error("--pages: expected a number of pages from 0 to 1048576, not '" + text("pages") + "'");
    a.pages = v;
  }
  if (given("per-node")) {
    if (!parse_count(text("per-node"), &v))
      usage_error("--per-node: expected a number of pages from 0 to 1048576, not '" + text("per-node") + "'");
    a.per_node = v;
  }
  if (given("page-size")) {
    if (!mi::config_page_size_parse(text("page-size").c_str(), &v))
      usage_error("--page-size: expected 1G or 2M (or another size with a unit, like 2048kB), not '" +
                  text("page-size") + "'");
    a.page_size_kib = v;
  }
  if (given("timeout")) {
    if (!mi::config_timeout_parse(text("timeout").c_str(), &v))
      usage_error("--timeout: expected a duration like 30s, 500ms or 2min, not '" + text("timeout") + "'");
    a.timeout_ms = v;
  }
  if (given("on-shortfall")) {
    mi::ConfigShortfall v;
    if (!mi::config_shortfall_parse(text("on-shortfall").c_str(), &v)) {
      usage_error("--on-shortfall: expected keep, release or fail, not '" + text("on-shortfall") + "'");
    }
    a.on_shortfall = v;
  }
  if (given("nodes")) {
    std::vector<int> nodes;
    bool all;
    if (!parse_node_list(text("nodes"), &nodes, &all))
      usage_error("--nodes: expected 'all' or a list of node numbers like 0,2-3, not '" + text("nodes") + "'");
    a.nodes = text("nodes");
  }
  if (given("config")) a.config = text("config");
  if (given("sysfs-root")) a.sysfs_root = text("sysfs-root");
  if (given("proc-root")) a.proc_root = text("proc-root");
  if (given("state-file")) a.state_file = text("state-file");
  a.json = given("json");
  a.dry_run = given("dry-run");
  if (a.sysfs_root && !is_directory(*a.sysfs_root))
    usage_error("--sysfs-root: " + *a.sysfs_root + " is not a directory");

  // what goes with what
  if (a.pages && a.per_node) usage_error("--pages and --per-node both give the count: give one");
  if (a.json && a.mode != Mode::status) usage_error("--json goes with --status");
  auto only_for_reserve = [&](const char* name) {
    if (given(name) && a.mode != Mode::reserve) {
      usage_error(std::string("--") + name + " has no meaning with --" +
                  (a.mode == Mode::status    ? "status"
                   : a.mode == Mode::release ? "release"
                                             : "check-config"));
    }
  };
  for (const char* name : {"pages", "per-node", "timeout", "on-shortfall", "config"}) only_for_reserve(name);
  if (a.dry_run && (a.mode == Mode::status || a.mode == Mode::check_config))
    usage_error("--dry-run goes with a reservation or --release");
  if (a.mode == Mode::check_config) {
    for (const char* name : {"nodes", "page-size", "sysfs-root", "proc-root", "state-file"}) {
      if (given(name)) usage_error(std::string("--") + name + " has no meaning with --check-config");
    }
  }
  return a;
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------
// A table: columns two spaces apart, right-aligned (numbers) but for a last text column.
class Table {
 public:
  // last_left: the last column is text (left-aligned)
  Table(std::vector<std::string> header, bool last_left) : rows_{std::move(header)}, last_left_(last_left) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print() const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size(); i++) width[i] = std::max(width[i], r[i].size());
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); i++) {
        if (i > 0) line += "  ";
        std::string pad(width[i] - r[i].size(), ' ');
        line += (last_left_ && i + 1 == r.size()) ? r[i] + pad : pad + r[i];
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::cout << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  bool last_left_;
};

std::string count_text(long v) { return v < 0 ? "-" : std::to_string(v); }
std::string json_count(long v) { return v < 0 ? "null" : std::to_string(v); }

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------
// The machine, the selection and the state
// ---------------------------------------------------------------------------
Machine discover(const Paths& p) {
  Machine m;
  std::string why;
  if (!machine_discover(p.roots, &m, &why)) fail(EXIT_NOT_PERMITTED, "not supported: " + why);
  std::string sizes;
  for (long kib : m.all_sizes()) sizes += (sizes.empty() ? "" : ", ") + page_size_text(kib);
  say_verbose("the kernel's nodes: " + node_list_text(m.nodes) +
              (m.numa_sysfs ? "" : " (no NUMA in sysfs: the global pools)") + "; huge page sizes: " + sizes +
              (p.roots.fake_sys ? " (a fake sysfs tree: mi-reserve plays the kernel)" : ""));
  if (!p.roots.fake_sys) {
    std::string note;
    std::vector<std::string> diffs = hwloc_cross_check(m, &note);
    say_verbose(note);
    for (const std::string& d : diffs) say_warning(d + "; going by the kernel's view");
    // The allocator's own view (lib/topology), by which it numbers [node.N]
    // and reserve_huge_os_pages_at: the kernel's online nodes, ascending, as
    // read here. (The allocator in this process keeps to its defaults, so
    // use_numa_nodes does not cap them here; make_request applies the file's.)
    // Not when hwloc's environment describes another machine (the allocator
    // then takes it).
    if (note.rfind("hwloc not consulted: HWLOC_", 0) != 0) {
      const mi::Topology& topo = mi::topology();
      std::vector<int> lib_nodes;
      for (int i = 0; i < topo.node_count; i++) lib_nodes.push_back(topo.nodes[i].os_index);
      std::vector<int> head(m.nodes.begin(),
                            m.nodes.begin() + static_cast<long>(std::min(m.nodes.size(), lib_nodes.size())));
      if (lib_nodes != head) {
        say_warning("the allocator's topology has node(s) " + node_list_text(lib_nodes) +
                    ", the kernel's pools are on " + node_list_text(m.nodes) +
                    ": [node.N] counts may name other nodes for the allocator; going by the kernel's view");
      } else {
        say_verbose("the allocator's topology agrees: " + std::to_string(lib_nodes.size()) + " node(s), " +
                    node_list_text(lib_nodes));
      }
    }
  }
  return m;
}

// Checks that `size` exists on the machine; exit 1 naming what there is.
void require_page_size(const Machine& m, long size_kib) {
  std::vector<long> sizes = m.all_sizes();
  if (std::find(sizes.begin(), sizes.end(), size_kib) != sizes.end()) return;
  std::string have;
  for (long kib : sizes) have += (have.empty() ? "" : ", ") + page_size_text(kib);
  fail(EXIT_NOT_PERMITTED, "no such page size: the kernel has no pool of " + page_size_text(size_kib) + " pages (no " +
                               pool_dir_name(size_kib) + " under " + m.pools_where() + "); it has " + have);
}

// The nodes a --nodes / [reserve] nodes list names, each checked to exist
// (exit 1). "all": every node (with a pool of `size`, when one is given).
std::vector<int> select_nodes(const Machine& m, const std::string& list, long size_kib, const std::string& origin) {
  std::vector<int> nodes;
  bool all = false;
  if (!parse_node_list(list, &nodes, &all)) usage_error(origin + ": not a node list: '" + list + "'");
  if (all) {
    nodes.clear();
    for (int n : m.nodes) {
      if (size_kib <= 0 || m.has_pool(n, size_kib)) nodes.push_back(n);
      else
        say_verbose("node " + std::to_string(n) + " has no pool of " + page_size_text(size_kib) +
                    " pages (no memory?): skipped");
    }
    return nodes;
  }
  for (int n : nodes) {
    if (!m.has_node(n)) {
      fail(EXIT_NOT_PERMITTED, "no NUMA node " + std::to_string(n) + " (" + origin + "; the kernel's nodes are " +
                                   node_list_text(m.nodes) + ")");
    }
    if (size_kib > 0 && !m.has_pool(n, size_kib)) {
      fail(EXIT_NOT_PERMITTED, "node " + std::to_string(n) + " has no pool of " + page_size_text(size_kib) +
                                   " pages (no " + m.pool_dir(n, size_kib) + "; a node without memory?)");
    }
  }
  return nodes;
}

// Reads the state; unreadable or damaged: an error (exit 1) when it is to be
// changed, a warning (and nothing by us) when it is only shown.
State load_state(const Paths& p, bool for_change) {
  State st;
  bool stale = false;
  std::string why;
  const std::string boot = boot_id_read(p.roots.proc);
  if (!state_read(p.state, boot, &st, &stale, &why)) {
    if (for_change) fail(EXIT_NOT_PERMITTED, why);
    say_warning(why + "; showing nothing as reserved by us");
    st = State{};
    st.boot_id = boot;
  }
  if (stale) say_verbose("the state file " + p.state + " is from another boot: ignored");
  return st;
}

void save_state(const Paths& p, const State& st) {
  std::string why;
  if (!state_write(p.state, st, &why)) say_error(why + "; mi-reserve --release cannot know what was added");
}

// Before the first write: every file we will write is writable (else exit 1,
// nothing changed), and the state can be kept.
void check_permissions(const Paths& p, const Machine& m, const std::vector<std::pair<int, long>>& pools,
                       StateLock* lock) {
  for (const auto& [node, size] : pools) {
    int err = pool_check_writable(m, node, size);
    if (err == 0) continue;
    std::string hint;
    if ((err == EACCES || err == EPERM) && geteuid() != 0) hint = " (changing the huge page pools needs root)";
    if (err == EROFS) hint = " (/sys is mounted read-only here: a container?)";
    fail(EXIT_NOT_PERMITTED,
         "not permitted: cannot write " + m.nr_path(node, size) + ": " + errno_text(err) + hint + "; nothing changed");
  }
  if (lock != nullptr) {
    std::string why;
    int err = 0;
    if (!lock->acquire(p.state, &why, &err)) {
      std::string hint = ((err == EACCES || err == EPERM) && geteuid() != 0) ? " (needs root)" : "";
      fail(EXIT_NOT_PERMITTED, "not permitted: " + why + hint + "; nothing changed");
    }
  }
}

// ---------------------------------------------------------------------------
// --status
// ---------------------------------------------------------------------------
int run_status(const Args& a, const Paths& p) {
  const Machine m = discover(p);
  if (a.page_size_kib) require_page_size(m, *a.page_size_kib);
  std::vector<int> nodes = select_nodes(m, a.nodes.value_or("all"), 0, "--nodes");
  const State st = load_state(p, false);
  struct Row {
    int node;
    long size_kib;
    PoolCounts c;
    long ours;
  };
  std::vector<Row> rows;
  for (int n : nodes) {
    auto it = m.sizes_kib.find(n);
    if (it == m.sizes_kib.end()) continue;
    for (long kib : it->second) {
      if (a.page_size_kib && kib != *a.page_size_kib) continue;
      rows.push_back({n, kib, pool_read(m, n, kib), st.added(n, kib)});
    }
  }
  if (a.json) {
    std::cout << "{\n  \"version\": " << json_string(MI_RESERVE_VERSION)
              << ",\n  \"sysfs_root\": " << json_string(p.roots.sys) << ",\n  \"state_file\": " << json_string(p.state)
              << ",\n  \"numa\": " << (m.numa_sysfs ? "true" : "false") << ",\n  \"pools\": [";
    for (size_t i = 0; i < rows.size(); i++) {
      const Row& r = rows[i];
      std::cout << (i == 0 ? "\n" : ",\n") << "    {\"node\": " << r.node << ", \"page_size_kib\": " << r.size_kib
                << ", \"page_size\": " << json_string(page_size_text(r.size_kib))
                << ", \"total\": " << json_count(r.c.total) << ", \"free\": " << json_count(r.c.free)
                << ", \"reserved_by_us\": " << r.ours << ", \"surplus\": " << json_count(r.c.surplus) << "}";
    }
    std::cout << (rows.empty() ? "]\n}\n" : "\n  ]\n}\n");
    return EXIT_DONE;
  }
  Table t({"node", "page size", "total", "free", "reserved by us", "surplus"}, false);
  for (const Row& r : rows) {
    t.add({std::to_string(r.node), page_size_text(r.size_kib), count_text(r.c.total), count_text(r.c.free),
           std::to_string(r.ours), count_text(r.c.surplus)});
  }
  t.print();
  return EXIT_DONE;
}

// ---------------------------------------------------------------------------
// --check-config
// ---------------------------------------------------------------------------
void problem_out(const char* msg, void* arg) {
  ++*static_cast<int*>(arg);
  std::cerr << "mi-reserve: " << msg;
}

int run_check_config(const Args& a) {
  int printed = 0;
  const int problems = mi_config_check(a.check_config.c_str(), &problem_out, &printed);
  if (problems == 0) {
    std::cout << a.check_config << ": no problems\n";
    return EXIT_DONE;
  }
  say_error(a.check_config + ": " + std::to_string(problems) + (problems == 1 ? " problem" : " problems"));
  return 1;
}

// ---------------------------------------------------------------------------
// Reserving
// ---------------------------------------------------------------------------
// The config file as mi-reserve read it.
struct ConfigFile {
  std::string path;  // "" when there is none
  mi::ConfigReserve cfg{};
};

// Each problem of the file as it is reported: those in [reserve] are errors,
// the others warnings (the reader counts reserve_problems before calling).
struct ProblemOut {
  const mi::ConfigReserve* cfg;
  int reserve_seen = 0;
};

void config_problem_out(const char* msg, void* arg) {
  auto* out = static_cast<ProblemOut*>(arg);
  const bool reserve = out->cfg->reserve_problems > out->reserve_seen;
  out->reserve_seen = out->cfg->reserve_problems;
  std::cerr << (reserve ? "mi-reserve: " : "mi-reserve: warning: ") << msg;
}

// --config, else the default if it exists. A problem in [reserve] is an
// error (exit 2, nothing changed); the others are warnings, and mi-reserve
// goes on with the file as the allocator reads it.
ConfigFile read_config(const Args& a, const Paths& p) {
  ConfigFile f;
  if (a.config) f.path = *a.config;
  else if (path_exists(p.config_default)) f.path = p.config_default;
  if (f.path.empty()) {
    say_verbose("no config file (" + p.config_default + " does not exist)");
    return f;
  }
  ProblemOut out{&f.cfg};
  const int problems = mi::config_read_reserve(f.path.c_str(), &f.cfg, &config_problem_out, &out);
  const int in_reserve = f.cfg.reserve_problems;
  if (in_reserve > 0) {
    fail(EXIT_USAGE, "config error: " + f.path + ": " + std::to_string(in_reserve) +
                         (in_reserve == 1 ? " problem" : " problems") +
                         " in [reserve] (above); nothing changed (mi-reserve --check-config " + f.path +
                         " lists every problem of the file)");
  }
  if (problems > 0) {  // none of them in [reserve]
    say_warning(f.path + ": " + std::to_string(problems) + (problems == 1 ? " problem" : " problems") +
                " outside [reserve] (above): skipped, as the allocator skips them; going on");
  }
  say_verbose("read " + f.path);
  return f;
}

// The page size asked for: the command line, else [reserve] page_size, else 1 GiB.
long page_size_asked(const Args& a, const ConfigFile& f) {
  if (a.page_size_kib) return *a.page_size_kib;
  if (!f.path.empty() && f.cfg.page_size_kib > 0) return f.cfg.page_size_kib;
  return PAGE_1G_KIB;
}

// When the command line and the file ask for no page, the one line that says
// so (else nothing): no count at all, or counts that are all 0 while
// mi-reserve holds no page of that size (a 0 with pages held gives them back,
// as any smaller count does). Decided before the machine is looked at, so
// that a file with nothing to reserve is a clean no-op on any machine, even
// one without pools of that page size.
std::optional<std::string> nothing_to_reserve(const Args& a, const Paths& p, const ConfigFile& f) {
  const long size_kib = page_size_asked(a, f);
  bool any = false, nonzero = false;
  auto count = [&](long v) {
    if (v < 0) return;
    any = true;
    nonzero = nonzero || v > 0;
  };
  bool node_counts_unused = false;
  if (a.pages || a.per_node) {
    count(a.pages.value_or(-1));
    count(a.per_node.value_or(-1));
  } else if (!f.path.empty()) {
    const mi::ConfigReserve& c = f.cfg;
    for (long k : c.node_pages) {
      if (size_kib == PAGE_1G_KIB) count(k);
      else node_counts_unused = node_counts_unused || k > 0;
    }
    // as make_request: per_node, else pages, else what the allocator claims
    if (c.per_node >= 0) count(c.per_node);
    else if (c.pages >= 0) count(c.pages);
    else if (size_kib == PAGE_1G_KIB && c.options_huge_pages > 0) count(c.options_huge_pages);
  } else {
    usage_error("nothing to reserve: give --pages N or --per-node N, or set [reserve] pages or per_node in " +
                p.config_default);
  }
  if (nonzero) return std::nullopt;
  const std::string where = f.path.empty() || a.pages || a.per_node ? std::string("") : " in " + f.path;
  const State st = load_state(p, false);
  long held = 0;
  for (const StateEntry& e : st.entries) held += (e.size_kib == size_kib) ? e.added : 0;
  if (any && held > 0) return std::nullopt;  // a count of 0 gives back what mi-reserve holds
  std::string why;
  if (!any) {
    why = "it sets no [reserve] pages or per_node and no reserve_huge_os_pages";
    if (node_counts_unused)
      why += " for " + page_size_text(size_kib) + " pages ([node.N] reserve_huge_os_pages counts 1 GiB pages)";
  } else {
    why = "every count is 0";
  }
  std::string line = "nothing to reserve" + where + ": " + why + "; nothing changed";
  long held_all = 0;
  for (const StateEntry& e : st.entries) held_all += e.added;
  if (!any && held_all > 0) {
    line += " (the " + pages_text(held_all) + " mi-reserve reserved before stay; mi-reserve --release gives them back)";
  }
  return line;
}

// The request once the command line and the config file are combined.
struct Request {
  long size_kib = PAGE_1G_KIB;
  long timeout_ms = TIMEOUT_DEFAULT_MS;
  mi::ConfigShortfall on_shortfall = mi::shortfall_keep;
  std::vector<std::pair<int, long>> want;  // node -> pages mi-reserve is to have added there
  std::string nothing;                     // when no selected node has a count: the line that says so
};

Request make_request(const Args& a, const Machine& m, const ConfigFile& f) {
  const mi::ConfigReserve& cfg = f.cfg;
  const std::string& config_path = f.path;
  const bool have_cfg = !config_path.empty();
  Request r;
  r.size_kib = page_size_asked(a, f);
  if (a.timeout_ms) r.timeout_ms = *a.timeout_ms;
  else if (have_cfg && cfg.timeout_ms >= 0) r.timeout_ms = cfg.timeout_ms;
  if (a.on_shortfall) r.on_shortfall = *a.on_shortfall;
  else if (have_cfg && cfg.on_shortfall != mi::shortfall_unset) r.on_shortfall = cfg.on_shortfall;
  std::string list = "all", origin = "--nodes";
  if (a.nodes) list = *a.nodes;
  else if (have_cfg && cfg.nodes[0] != 0) list = cfg.nodes, origin = "[reserve] nodes in " + config_path;

  require_page_size(m, r.size_kib);
  std::vector<int> nodes = select_nodes(m, list, r.size_kib, origin);
  // "all" is every node the allocator uses: with [options] use_numa_nodes = K
  // in the file, its first K nodes (lib/topology caps the same way), so that
  // no page is set aside where no server will claim it
  std::vector<int> unused;
  if (list == "all" && have_cfg && cfg.options_use_numa_nodes > 0) {
    const size_t k = static_cast<size_t>(cfg.options_use_numa_nodes);
    for (int n : nodes) {
      auto at = std::find(m.nodes.begin(), m.nodes.end(), n);
      if (static_cast<size_t>(at - m.nodes.begin()) >= k) unused.push_back(n);
    }
    if (!unused.empty()) {
      nodes.erase(std::remove_if(nodes.begin(), nodes.end(),
                                 [&](int n) { return std::find(unused.begin(), unused.end(), n) != unused.end(); }),
                  nodes.end());
      say_verbose("use_numa_nodes = " + std::to_string(k) + " in " + config_path + ": the allocator uses node(s) " +
                  node_list_text(nodes) + "; nothing reserved on " + node_list_text(unused));
    }
  }
  if (nodes.empty()) fail(EXIT_NOT_PERMITTED, "no node has a pool of " + page_size_text(r.size_kib) + " pages");

  if (a.per_node) {
    for (int n : nodes) r.want.push_back({n, *a.per_node});
    return r;
  }
  if (a.pages) {
    std::vector<long> share = interleave(*a.pages, nodes.size());
    for (size_t i = 0; i < nodes.size(); i++) r.want.push_back({nodes[i], share[i]});
    return r;
  }
  // From the file: [node.N] counts first, the rest over the other nodes.
  // N is the allocator's node number, which is what it claims the pages by:
  // the index of the node in the library's topology, the kernel's online
  // nodes in ascending order (lib/topology: boot_view), so N is the kernel's
  // node m.nodes[N]. The two differ only when the kernel's numbers have gaps
  // (nodes 0,1,3: [node.2] is the kernel's node 3).
  auto config_index_of = [&](int kernel_node) {
    auto it = std::find(m.nodes.begin(), m.nodes.end(), kernel_node);
    return static_cast<int>(it - m.nodes.begin());
  };
  auto config_name = [&](int index) {
    std::string name = "[node." + std::to_string(index) + "]";
    if (static_cast<size_t>(index) < m.nodes.size() && m.nodes[static_cast<size_t>(index)] != index) {
      name += " (the allocator's node " + std::to_string(index) + ", the kernel's node " +
              std::to_string(m.nodes[static_cast<size_t>(index)]) + ")";
    }
    return name;
  };
  bool any = false;
  std::vector<int> others;
  for (int n : nodes) {
    const int index = config_index_of(n);
    long k = (have_cfg && index < mi::CONFIG_MAX_NODES) ? cfg.node_pages[index] : -1;
    if (k >= 0 && r.size_kib != PAGE_1G_KIB) {
      say_verbose(config_name(index) + " reserve_huge_os_pages counts 1 GiB pages: not used for " +
                  page_size_text(r.size_kib) + " pages");
      k = -1;
    }
    if (k >= 0) {
      if (m.nodes[static_cast<size_t>(index)] != index) say_verbose(config_name(index) + ": " + pages_text(k));
      r.want.push_back({n, k});
      any = true;
    } else {
      others.push_back(n);
    }
  }
  if (have_cfg && r.size_kib == PAGE_1G_KIB) {
    for (int index = 0; index < mi::CONFIG_MAX_NODES; index++) {
      if (cfg.node_pages[index] <= 0) continue;
      if (static_cast<size_t>(index) >= m.nodes.size()) {
        fail(EXIT_NOT_PERMITTED, "no NUMA node " + std::to_string(index) + " ([node." + std::to_string(index) +
                                     "] reserve_huge_os_pages in " + config_path + "; the kernel has " +
                                     std::to_string(m.nodes.size()) + (m.nodes.size() == 1 ? " node" : " nodes") +
                                     ", numbered " + node_list_text(m.nodes) + ", which the allocator counts from 0)");
      }
      const int n = m.nodes[static_cast<size_t>(index)];
      if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) {
        say_verbose(config_name(index) + " is not among the selected nodes: skipped");
      }
    }
  }
  if (have_cfg && cfg.per_node >= 0) {
    for (int n : others) r.want.push_back({n, cfg.per_node});
    any = true;
  } else if (have_cfg && cfg.pages >= 0) {
    std::vector<long> share = interleave(cfg.pages, others.size());
    for (size_t i = 0; i < others.size(); i++) r.want.push_back({others[i], share[i]});
    any = true;
  } else if (have_cfg && cfg.options_huge_pages > 0 && r.size_kib == PAGE_1G_KIB) {
    // what the allocator will claim: [options] reserve_huge_os_pages (all on
    // node _at, by its index in the node order, as the allocator counts)
    long at = cfg.options_huge_pages_at;
    int at_node = (at >= 0) ? m.nodes[static_cast<size_t>(at) % m.nodes.size()] : -1;
    if (at_node >= 0 && std::find(others.begin(), others.end(), at_node) != others.end()) {
      r.want.push_back({at_node, cfg.options_huge_pages});
    } else {
      std::vector<long> share = interleave(cfg.options_huge_pages, others.size());
      for (size_t i = 0; i < others.size(); i++) r.want.push_back({others[i], share[i]});
    }
    any = true;
  }
  if (!any) {  // the file's counts are all for nodes not selected
    r.nothing = "nothing to reserve on node(s) " + node_list_text(nodes) + ": the counts in " + config_path +
                " are for other nodes; nothing changed";
  }
  std::sort(r.want.begin(), r.want.end());
  return r;
}

int run_reserve(const Args& a, const Paths& p) {
  const ConfigFile f = read_config(a, p);
  if (std::optional<std::string> nothing = nothing_to_reserve(a, p, f)) {
    std::cout << *nothing << "\n";
    return EXIT_DONE;
  }
  const Machine m = discover(p);
  const Request r = make_request(a, m, f);
  if (!r.nothing.empty()) {
    std::cout << r.nothing << "\n";
    return EXIT_DONE;
  }
  StateLock lock;
  State st = load_state(p, !a.dry_run);

  // our pages are on top of a base: what the pool holds without them
  struct Node {
    int node;
    long want;
    long base;
    long target;
    long got = 0;         // ours after the writes
    int err = 0;          // of the last write
    long given_back = 0;  // on_shortfall release / fail
  };
  std::vector<Node> work;
  std::vector<std::pair<int, long>> to_write;
  for (const auto& [n, want] : r.want) {
    PoolCounts c = pool_read(m, n, r.size_kib);
    if (c.total < 0) {
      std::string text;
      const int err = file_read(m.nr_path(n, r.size_kib), &text);
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      fail(EXIT_NOT_PERMITTED, "cannot read " + m.nr_path(n, r.size_kib) + ": " +
                                   (err != 0 ? errno_text(err) : "not a page count ('" + text.substr(0, 40) + "')") +
                                   "; nothing changed");
    }
    long ours = std::min(st.added(n, r.size_kib), c.total);
    long base = c.total - ours;
    work.push_back({n, want, base, base + want});
    if (base + want != c.total) to_write.push_back({n, r.size_kib});
    say_verbose("node " + std::to_string(n) + ": " + pages_text(c.total) + " of " + page_size_text(r.size_kib) + " (" +
                std::to_string(ours) + " by mi-reserve); asked " + std::to_string(want) + " by mi-reserve: target " +
                std::to_string(base + want));
  }
  if (a.dry_run) {
    for (const Node& w : work) {
      long now = pool_read(m, w.node, r.size_kib).total;
      if (w.target == now)
        std::cout << "node " << w.node << ": " << m.nr_path(w.node, r.size_kib) << " stays " << now << "\n";
      else
        std::cout << "node " << w.node << ": would write " << w.target << " to " << m.nr_path(w.node, r.size_kib)
                  << " (now " << now << ")\n";
    }
    check_permissions(p, m, to_write, nullptr);
    std::cout << "dry run: nothing changed\n";
    return EXIT_DONE;
  }
  check_permissions(p, m, to_write, &lock);
  st = load_state(p, true);  // again, under the lock

  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::milliseconds(r.timeout_ms);
  auto attempt = [&](Node& w) {
    long now = pool_read(m, w.node, r.size_kib).total;
    if (now != w.target) {
      w.err = pool_write_nr(m, w.node, r.size_kib, w.target);
      if (w.err != 0)
        say_error("writing " + std::to_string(w.target) + " to " + m.nr_path(w.node, r.size_kib) + ": " +
                  errno_text(w.err));
      now = pool_read(m, w.node, r.size_kib).total;
      say_verbose("node " + std::to_string(w.node) + ": wrote " + std::to_string(w.target) + ", the kernel gave " +
                  std::to_string(now));
    }
    w.got = std::max(0L, now - w.base);
    st.set(w.node, r.size_kib, w.got);
  };
  auto short_nodes = [&] {
    int k = 0;
    for (const Node& w : work) k += (w.base + w.got < w.target && w.err == 0) ? 1 : 0;
    return k;
  };
  auto pages_got = [&] {
    long sum = 0;
    for (const Node& w : work) sum += w.got;
    return sum;
  };
  for (Node& w : work) attempt(w);
  save_state(p, st);
  // Retry the short nodes after compacting memory, while that gains pages,
  // until the deadline. With any timeout at all, one round of compaction and
  // retry happens even when the first writes used it up (a slow machine): the
  // kernel often has the pages once compacted. --timeout 0 tries once,
  // without compacting.
  std::string no_compaction;
  long sleep_ms = 100;
  bool retried = false;
  int rounds = 0, fruitless = 0;
  while (short_nodes() > 0 && (Clock::now() < deadline || (!retried && r.timeout_ms > 0))) {
    retried = true;
    rounds++;
    const long before = pages_got();
    std::string why;
    if (no_compaction.empty()) {
      if (memory_compact(m, &why)) {
        say_verbose("compacted memory (" + std::to_string(memory_compactions()) + ")");
      } else {
        no_compaction = why;
        say_verbose(why + "; retrying without");
      }
    }
    for (Node& w : work) {
      if (w.base + w.got < w.target && w.err == 0) attempt(w);
    }
    save_state(p, st);
    if (short_nodes() == 0) break;
    fruitless = (pages_got() > before) ? 0 : fruitless + 1;
    if (fruitless >= FRUITLESS_ROUNDS_MAX) {
      say_verbose(std::to_string(fruitless) + " rounds in a row gained no page: no more retries");
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long>(sleep_ms, left)));
    sleep_ms = std::min<long>(sleep_ms * 2, 1000);
  }
  const long elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();

  // A shortfall (a node short, or a write the kernel refused) is handled as
  // on_shortfall says: keep what was got, or give back every page
  // mi-reserve holds in these pools (release, fail): all or nothing.
  bool any_short = false, any_over = false;
  for (const Node& w : work) {
    any_short = any_short || w.err != 0 || w.got < w.want;
    any_over = any_over || (w.err == 0 && w.got > w.want);
  }
  const bool give_back = any_short && r.on_shortfall != mi::shortfall_keep;
  long kept_in_use = 0;
  if (give_back) {
    for (Node& w : work) {
      if (w.got <= 0) continue;
      const long had = w.got;
      const int err = pool_write_nr(m, w.node, r.size_kib, w.base);
      if (err != 0)
        say_error("writing " + std::to_string(w.base) + " to " + m.nr_path(w.node, r.size_kib) + ": " +
                  errno_text(err));
      const long now = pool_read(m, w.node, r.size_kib).total;
      w.got = std::max(0L, now - w.base);
      w.given_back = had - w.got;
      kept_in_use += w.got;
      st.set(w.node, r.size_kib, w.got);
      say_verbose("node " + std::to_string(w.node) + ": wrote " + std::to_string(w.base) + " (on_shortfall " +
                  mi::config_shortfall_name(r.on_shortfall) + "), the kernel has " + std::to_string(now));
    }
    save_state(p, st);
  }

  Table t({"node", "page size", "asked", "reserved by us", "total", "free", "result"}, true);
  for (const Node& w : work) {
    PoolCounts c = pool_read(m, w.node, r.size_kib);
    const long got = w.got + w.given_back;  // before any giving back
    std::string result = "ok";
    if (w.err != 0) result = "failed";
    else if (got < w.want) result = "short by " + std::to_string(w.want - got);
    else if (got > w.want) result = "over by " + std::to_string(got - w.want);  // pages in use could not be given back
    if (w.given_back > 0) result += ", gave back " + std::to_string(w.given_back);
    if (give_back && w.got > 0) result += ", kept " + std::to_string(w.got) + " (in use)";
    t.add({std::to_string(w.node), page_size_text(r.size_kib), std::to_string(w.want), std::to_string(w.got),
           count_text(c.total), count_text(c.free), result});
  }
  t.print();
  long short_by = 0, total_given_back = 0;
  for (const Node& w : work) {
    const long got = w.got + w.given_back;
    total_given_back += w.given_back;
    if (w.err != 0) {
      short_by += std::max(0L, w.want - got);
      say_error("node " + std::to_string(w.node) + ": the kernel refused " + std::to_string(w.target) + " pages of " +
                page_size_text(r.size_kib) + ": " + errno_text(w.err));
    } else if (got < w.want) {
      short_by += w.want - got;
      std::string how;
      if (r.timeout_ms == 0) how = "in one try (--timeout 0)";
      else if (fruitless >= FRUITLESS_ROUNDS_MAX)
        how = "after " + std::to_string(rounds) + " rounds of retrying in " + std::to_string(elapsed_ms) +
              " ms, the last " + std::to_string(fruitless) + " of which gained nothing";
      else how = "within " + std::to_string(r.timeout_ms) + " ms";
      say_error("node " + std::to_string(w.node) + ": " + std::to_string(got) + " of " + pages_text(w.want) + " of " +
                page_size_text(r.size_kib) + " reserved; the kernel found no more free contiguous memory there " + how +
                " (" + std::to_string(memory_compactions()) + " compactions" +
                (no_compaction.empty() ? "" : "; " + no_compaction) + ")");
    } else if (got > w.want) {
      say_error("node " + std::to_string(w.node) + ": " + std::to_string(got - w.want) +
                " pages could not be given back: they are in use");
    }
  }
  if (!any_short) return any_over ? EXIT_PARTIAL : EXIT_DONE;
  const std::string policy = std::string("on_shortfall = ") + mi::config_shortfall_name(r.on_shortfall) + ": ";
  const std::string short_text = "short by " + pages_text(short_by) + " of " + page_size_text(r.size_kib);
  if (r.on_shortfall == mi::shortfall_keep) {
    say_error(policy + short_text + "; the " + pages_text(pages_got()) + " the kernel gave stay reserved (exit 3)");
    return EXIT_PARTIAL;
  }
  std::string back = "gave back the " + pages_text(total_given_back) + " mi-reserve held there";
  if (kept_in_use > 0) back += "; " + pages_text(kept_in_use) + " in use could not be given back";
  if (r.on_shortfall == mi::shortfall_release) {
    say_error(policy + short_text + "; " + back + " (exit 4)");
    return EXIT_SHORT_RELEASED;
  }
  say_error(policy + short_text + "; " + back + "; failing (exit 5)");
  return EXIT_SHORT_FAILED;
}

// ---------------------------------------------------------------------------
// --release
// ---------------------------------------------------------------------------
int run_release(const Args& a, const Paths& p) {
  // Nothing added, nothing to do: exit 0 even on a machine without pools (the
  // unit's ExecStop after a reservation that had nothing to reserve)
  if (load_state(p, !a.dry_run).entries.empty()) {
    std::cout << "nothing to release: mi-reserve added no pages (" << p.state
              << (path_exists(p.state) ? ")" : " does not exist)") << "\n";
    return EXIT_DONE;
  }
  const Machine m = discover(p);
  if (a.page_size_kib) require_page_size(m, *a.page_size_kib);
  std::vector<int> nodes = select_nodes(m, a.nodes.value_or("all"), 0, "--nodes");
  StateLock lock;
  State st = load_state(p, !a.dry_run);
  auto selected = [&](const StateEntry& e) {
    return std::find(nodes.begin(), nodes.end(), e.node) != nodes.end() &&
           (!a.page_size_kib || e.size_kib == *a.page_size_kib);
  };
  std::vector<std::pair<int, long>> to_write;
  for (const StateEntry& e : st.entries) {
    if (selected(e) && m.has_pool(e.node, e.size_kib)) to_write.push_back({e.node, e.size_kib});
  }
  if (to_write.empty()) {
    std::cout << "nothing to release: mi-reserve added no pages" << (a.nodes || a.page_size_kib ? " there" : "") << " ("
              << p.state << (path_exists(p.state) ? ")" : " does not exist)") << "\n";
    return EXIT_DONE;
  }
  if (a.dry_run) {
    for (const auto& [n, kib] : to_write) {
      long now = pool_read(m, n, kib).total;
      long ours = std::min(st.added(n, kib), std::max(0L, now));
      std::cout << "node " << n << ": would write " << now - ours << " to " << m.nr_path(n, kib) << " (now " << now
                << ", " << ours << " by mi-reserve)\n";
    }
    check_permissions(p, m, to_write, nullptr);
    std::cout << "dry run: nothing changed\n";
    return EXIT_DONE;
  }
  check_permissions(p, m, to_write, &lock);
  st = load_state(p, true);  // again, under the lock
  for (const StateEntry& e : std::vector<StateEntry>(st.entries)) {
    if (selected(e) && !m.has_pool(e.node, e.size_kib)) {
      say_warning("node " + std::to_string(e.node) + " no longer has a pool of " + page_size_text(e.size_kib) +
                  " pages; forgotten");
      st.set(e.node, e.size_kib, 0);
    }
  }
  Table t({"node", "page size", "released", "total", "free", "surplus", "result"}, true);
  bool all_ok = true;
  for (const auto& [n, kib] : to_write) {
    PoolCounts before = pool_read(m, n, kib);
    long ours = std::min(st.added(n, kib), std::max(0L, before.total));
    long target = before.total - ours;
    int err = pool_write_nr(m, n, kib, target);
    PoolCounts after = pool_read(m, n, kib);
    long released = std::max(0L, before.total - after.total);
    say_verbose("node " + std::to_string(n) + ": wrote " + std::to_string(target) + " (was " +
                std::to_string(before.total) + "), the kernel has " + std::to_string(after.total));
    st.set(n, kib, ours - released);
    std::string result = "ok";
    if (err != 0) {
      result = "failed";
      say_error("writing " + std::to_string(target) + " to " + m.nr_path(n, kib) + ": " + errno_text(err));
    } else if (released < ours) {
      result = "kept " + std::to_string(ours - released);
    } else if (after.surplus > std::max(0L, before.surplus)) {
      result = "ok; " + std::to_string(after.surplus - std::max(0L, before.surplus)) + " in use";
      say_warning("node " + std::to_string(n) + ": " + pages_text(after.surplus - std::max(0L, before.surplus)) +
                  " of " + page_size_text(kib) +
                  " are still in use; the kernel frees them when their program lets go (surplus)");
    }
    if (err != 0 || released < ours) all_ok = false;
    t.add({std::to_string(n), page_size_text(kib), std::to_string(released), count_text(after.total),
           count_text(after.free), count_text(after.surplus), result});
  }
  save_state(p, st);
  t.print();
  return all_ok ? EXIT_DONE : EXIT_PARTIAL;
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------
int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (a.mode == Mode::check_config) return run_check_config(a);
  const Paths p = paths_of(a);
  say_verbose("sysfs " + p.roots.sys + ", proc " + p.roots.proc + ", state " + p.state);
  switch (a.mode) {
    case Mode::status: return run_status(a, p);
    case Mode::release: return run_release(a, p);
    default: return run_reserve(a, p);
  }
}

}  // namespace

}  // namespace mireserve

int main(int argc, char** argv) {
  return cli::run_main(
      mireserve::TOOL, [&] { return mireserve::run(argc, argv); }, mireserve::EXIT_NOT_PERMITTED, "internal error: ");
}
