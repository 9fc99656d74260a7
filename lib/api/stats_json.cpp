// stats_json.cpp: see stats_json.h. Also the public mi_stats_get_json.
#include "stats_json.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../../include/mimalloc-numa.h"
#include "../common/format.h"
#include "../common/messages.h"
#include "../common/stats.h"
#include "../os/os.h"
#include "stats_area.h"
#include "stats_file.h"

namespace mi {

namespace {

// Appends to a fixed buffer; counts what did not fit, so that the caller
// learns the length it needs.
struct Out {
  char* buf;
  size_t size;
  size_t n = 0;
  void put(const char* s, size_t len) {
    for (size_t i = 0; i < len; i++, n++) {
      if (n + 1 < size) buf[n] = s[i];
    }
  }
  void put(const char* s) { put(s, strlen(s)); }
  void num(const char* name, long long v) {
    char t[96];
    put(t, format(t, sizeof(t), "\"%s\":%lld,", name, v));
  }
  void unum(const char* name, unsigned long long v) {
    char t[96];
    put(t, format(t, sizeof(t), "\"%s\":%llu,", name, v));
  }
  // A string of the program's name: stats_program_name gives letters,
  // digits and .-_+ only; escaped anyway.
  void str(const char* name, const char* v, size_t max) {
    char t[64];
    put(t, format(t, sizeof(t), "\"%s\":\"", name));
    for (size_t i = 0; i < max && v[i] != 0; i++) {
      const unsigned char c = static_cast<unsigned char>(v[i]);
      if (c == '"' || c == '\\') {
        const char e[2] = {'\\', static_cast<char>(c)};
        put(e, 2);
      } else if (c < 0x20 || c >= 0x7f) {
        put(t, format(t, sizeof(t), "\\u%04x", c));
      } else {
        put(reinterpret_cast<const char*>(&c), 1);
      }
    }
    put("\",");
  }
  void drop_comma() { n--; }  // after num(), which ends with one
  void end() {
    if (size > 0) buf[n < size ? n : size - 1] = 0;
  }
};

void memory(Out& o, const mi_stats_area_memory_t& m) {
  o.num("reserved", m.reserved);
  o.num("committed", m.committed);
  o.num("in_use", m.in_use);
  o.num("purgeable", m.purgeable);
  o.num("huge_1g", m.huge_1g);
  o.num("large_2m", m.large_2m);
  o.num("local_frees", m.local_frees);
  o.num("remote_frees", m.remote_frees);
  o.num("fallbacks", m.fallbacks);
  o.num("purged", m.purged);
  o.drop_comma();
}

}  // namespace

size_t stats_json_write(const mi_stats_area_t* a, char* buf, size_t size) noexcept {
  Out o{buf, size};
  o.put("{");
  o.num("version", a->version);
  o.num("pid", a->pid);
  o.unum("start_ticks", a->start_ticks);
  o.num("start_unix_ms", a->start_unix_ms);
  o.num("updated_unix_ms", a->updated_unix_ms);
  o.num("updates", a->updates);
  o.num("interval_ms", a->interval_ms);
  o.str("program", a->program, sizeof(a->program));
  o.num("threads", a->threads);
  o.num("segments", a->segments);
  o.num("segments_abandoned", a->segments_abandoned);
  o.num("purges", a->purges);
  o.num("purge_ns", a->purge_ns);
  o.num("os_mmap_calls", a->os_mmap_calls);
  o.num("os_commit_calls", a->os_commit_calls);
  o.num("os_purge_calls", a->os_purge_calls);
  o.num("page_faults_minor", a->page_faults_minor);
  o.num("page_faults_major", a->page_faults_major);
  o.num("rss", a->rss);
  o.num("metadata_committed", a->metadata_committed);
  o.put("\"totals\":{");
  memory(o, a->totals);
  o.put("},");
  o.num("node_count", a->node_count);
  o.put("\"nodes\":[");
  for (uint32_t i = 0; i < a->node_count && i < MI_STATS_AREA_NODES_MAX; i++) {
    o.put(i > 0 ? ",{" : "{");
    o.num("node", i);
    memory(o, a->nodes[i]);
    o.put("}");
  }
  o.put("],");
  o.num("bin_count", a->bin_count);
  o.put("\"bins\":[");
  for (uint32_t i = 0; i < a->bin_count && i < MI_STATS_AREA_BINS_MAX; i++) {
    const mi_stats_area_bin_t& b = a->bins[i];
    o.put(i > 0 ? ",{" : "{");
    o.num("bin", i);
    o.num("block_size", b.block_size);
    o.num("live_blocks", b.live_blocks);
    o.num("live_bytes", b.live_bytes);
    o.num("allocations", b.allocations);
    o.drop_comma();
    o.put("}");
  }
  o.put("]}");
  o.end();
  return o.n;
}

namespace {

constexpr size_t JSON_MAX = 64 * KiB;  // the largest document (64 nodes, 80 bins) is about 30 KiB

// Fills an area and writes it as JSON into a scratch mapping of JSON_MAX
// bytes (the area itself sits in the same mapping); nullptr if the kernel
// has no memory for it.
char* json_now(size_t* len) {
  void* scratch = os_map_scratch(JSON_MAX + sizeof(mi_stats_area_t));
  if (scratch == nullptr) return nullptr;
  mi_stats_area_t* area = reinterpret_cast<mi_stats_area_t*>(static_cast<char*>(scratch) + JSON_MAX);
  stats_area_fill(area, 1, 0);
  char* text = static_cast<char*>(scratch);
  *len = stats_json_write(area, text, JSON_MAX);
  return text;
}

}  // namespace

void stats_json_print_at_exit() noexcept {
  size_t len = 0;
  char* text = json_now(&len);
  if (text == nullptr) return;
  if (len + 2 <= JSON_MAX) {
    text[len] = '\n';
    text[len + 1] = 0;
    const int fd = stats_file_open();
    if (fd >= 0) {
      size_t off = 0;
      while (off < len + 1) {
        ssize_t w = write(fd, text + off, len + 1 - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += static_cast<size_t>(w);
      }
      close(fd);
    } else {
      mi_output_fun* out = nullptr;
      void* arg = nullptr;
      output_get(&out, &arg);
      output_to(out, arg, text);
    }
  }
  os_unmap(text, JSON_MAX + sizeof(mi_stats_area_t));
}

}  // namespace mi

using namespace mi;

extern "C" {

char* mi_stats_get_json(size_t buf_size, char* buf) mi_attr_noexcept {
  size_t len = 0;
  char* text = json_now(&len);
  if (text == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  char* result = nullptr;
  if (buf == nullptr || buf_size == 0) {
    result = static_cast<char*>(mi_malloc(len + 1));  // the caller frees it with mi_free
    if (result != nullptr) memcpy(result, text, len + 1);
  } else if (len < buf_size) {
    memcpy(buf, text, len + 1);
    result = buf;
  } else {
    buf[0] = 0;  // a cut document would not parse: nothing, and ERANGE
    errno = ERANGE;
  }
  os_unmap(text, JSON_MAX + sizeof(mi_stats_area_t));
  return result;
}

}  // extern "C"
