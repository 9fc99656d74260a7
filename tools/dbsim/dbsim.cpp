// dbsim: a database-like allocation workload for mimalloc-numa.
//
// Several worker threads run a mix of operations on a sharded in-memory
// "table" (per shard: std::unordered_map<uint64_t, Record*> under a mutex).
// A Record is one heap block: a 32-byte header followed by a payload whose size
// comes from a skewed distribution (mostly 16-511 B, some 1-16 KiB, a few
// 64 KiB-1 MiB blobs).  Every write appends to a per-thread write-ahead-log
// buffer that grows with realloc and, once full, is handed to a background
// flusher thread through a bounded queue; replaced and erased records are
// handed to the same thread (or freed locally), so many blocks are freed by a
// thread other than the one that allocated them.
//
// Payload bytes are a pure function of (key, version), and every record
// carries a checksum of its payload: reads, scans, realloc'd prefixes, the
// flusher and a final pass over the whole table verify them, and the program
// exits 1 if anything was corrupted.
//
// It uses only malloc/realloc/free and operator new/delete (through the
// standard containers), never the mi_* API: it is meant to be run under any
// allocator with LD_PRELOAD (see tools/mi-run).

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr const char* kVersion = "0.1.0";

// ---------------------------------------------------------------------------
// Hashing and random numbers

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(mix64(seed ^ 0x6a09e667f3bcc908ULL)) {}
  uint64_t next() {
    state += kGolden;
    return mix64(state);
  }
  // Uniform in [0, n); n > 0.  The modulo bias is irrelevant here.
  uint64_t below(uint64_t n) { return next() % n; }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

struct Hasher {
  uint64_t h;
  explicit Hasher(uint64_t n) : h(0x243f6a8885a308d3ULL ^ n) {}
  void add(uint64_t w) { h = std::rotl(h ^ w, 29) * 0x9fb21c651e98df25ULL; }
  uint64_t finish() const { return mix64(h); }
};

// ---------------------------------------------------------------------------
// Error reporting

std::atomic<uint64_t> g_corruptions{0};
std::mutex g_report_mu;

[[gnu::format(printf, 1, 2)]] void corruption(const char* fmt, ...) {
  const uint64_t n = g_corruptions.fetch_add(1, std::memory_order_relaxed);
  if (n >= 20) return;
  std::lock_guard<std::mutex> lock(g_report_mu);
  std::fputs("dbsim: CORRUPTION: ", stderr);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  if (n == 19) std::fputs("dbsim: (further corruption messages suppressed)\n", stderr);
}

[[noreturn]] void out_of_memory(size_t size) {
  std::fprintf(stderr, "dbsim: out of memory allocating %zu bytes\n", size);
  std::fflush(stderr);
  std::_Exit(3);
}

void* xmalloc(size_t size) {
  void* p = std::malloc(size);
  if (p == nullptr) out_of_memory(size);
  return p;
}

void* xrealloc(void* p, size_t size) {
  void* q = std::realloc(p, size);
  if (q == nullptr) out_of_memory(size);
  return q;
}

// ---------------------------------------------------------------------------
// Records: header + payload in one malloc'd block

constexpr uint64_t kRecordMagic = 0x44425349'4d524543ULL;  // "DBSIMREC"
constexpr uint64_t kDeadMagic = 0xdeadbeef'dead0001ULL;
constexpr size_t kMaxPayload = size_t{1} << 20;

struct Record {
  uint64_t magic;  // kRecordMagic ^ key
  uint64_t key;
  uint64_t checksum;  // of the payload
  uint32_t size;      // payload bytes
  uint32_t version;

  unsigned char* payload() { return reinterpret_cast<unsigned char*>(this + 1); }
  const unsigned char* payload() const { return reinterpret_cast<const unsigned char*>(this + 1); }
};
static_assert(sizeof(Record) == 32);

inline uint64_t content_seed(uint64_t key, uint32_t version) {
  return mix64(key * kGolden ^ (static_cast<uint64_t>(version) << 40) ^ 0x5bd1e995ULL);
}
inline uint64_t content_word(uint64_t cseed, size_t i) { return mix64(cseed + i * kGolden); }

// Writes the payload for `cseed` and returns its checksum.
uint64_t fill_payload(unsigned char* p, size_t n, uint64_t cseed) {
  Hasher h(n);
  const size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    const uint64_t w = content_word(cseed, i);
    std::memcpy(p + 8 * i, &w, 8);
    h.add(w);
  }
  if (const size_t tail = n % 8; tail != 0) {
    const uint64_t w = content_word(cseed, words);
    std::memcpy(p + 8 * words, &w, tail);
    uint64_t t = 0;
    std::memcpy(&t, p + 8 * words, tail);
    h.add(t);
  }
  return h.finish();
}

uint64_t payload_checksum(const unsigned char* p, size_t n) {
  Hasher h(n);
  const size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    std::memcpy(&w, p + 8 * i, 8);
    h.add(w);
  }
  if (const size_t tail = n % 8; tail != 0) {
    uint64_t t = 0;
    std::memcpy(&t, p + 8 * words, tail);
    h.add(t);
  }
  return h.finish();
}

// True if the first n bytes of p are the content generated for cseed.
bool payload_matches(const unsigned char* p, size_t n, uint64_t cseed) {
  const size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    std::memcpy(&w, p + 8 * i, 8);
    if (w != content_word(cseed, i)) return false;
  }
  if (const size_t tail = n % 8; tail != 0) {
    const uint64_t w = content_word(cseed, words);
    if (std::memcmp(p + 8 * words, &w, tail) != 0) return false;
  }
  return true;
}

Record* make_record(uint64_t key, size_t size, uint32_t version) {
  auto* r = static_cast<Record*>(xmalloc(sizeof(Record) + size));
  r->magic = kRecordMagic ^ key;
  r->key = key;
  r->size = static_cast<uint32_t>(size);
  r->version = version;
  r->checksum = fill_payload(r->payload(), size, content_seed(key, version));
  return r;
}

bool check_header(const Record* r, uint64_t key, const char* where) {
  if (r->magic != (kRecordMagic ^ key) || r->key != key || r->size > kMaxPayload) {
    corruption("%s: record %p for key %llu has a bad header (magic %016llx key %llu size %u)", where,
               static_cast<const void*>(r), static_cast<unsigned long long>(key),
               static_cast<unsigned long long>(r->magic), static_cast<unsigned long long>(r->key), r->size);
    return false;
  }
  return true;
}

bool check_record(const Record* r, uint64_t key, const char* where) {
  if (!check_header(r, key, where)) return false;
  const uint64_t sum = payload_checksum(r->payload(), r->size);
  if (sum != r->checksum) {
    corruption("%s: record for key %llu (version %u, %u bytes) fails its checksum", where,
               static_cast<unsigned long long>(key), r->version, r->size);
    return false;
  }
  return true;
}

void free_record(Record* r) {
  r->magic = kDeadMagic;  // a use-after-free then fails check_header
  std::free(r);
}

// Payload sizes: 88% 16-511 B, 11.8% 1-16 KiB, 0.2% 64 KiB-1 MiB; log-uniform
// inside each class (a power-of-two bucket, then uniform within it).
size_t draw_size(Rng& rng) {
  const uint64_t p = rng.below(10000);
  unsigned lo_bit;
  unsigned buckets;
  if (p < 20) {
    lo_bit = 16;  // 64 KiB .. 1 MiB - 1
    buckets = 4;
  } else if (p < 1200) {
    lo_bit = 10;  // 1 KiB .. 16 KiB - 1
    buckets = 4;
  } else {
    lo_bit = 4;  // 16 B .. 511 B
    buckets = 5;
  }
  const unsigned bit = lo_bit + static_cast<unsigned>(rng.below(buckets));
  const size_t base = size_t{1} << bit;
  return base + rng.below(base);
}

// New size for an in-place update: half the time a fresh draw, else the old
// size scaled by a factor in [0.5, 2).
size_t resize_size(Rng& rng, size_t old_size) {
  if (rng.below(2) == 0) return draw_size(rng);
  const double f = 0.5 + 1.5 * rng.unit();
  const auto n = static_cast<size_t>(static_cast<double>(old_size) * f);
  return std::clamp<size_t>(n, 8, kMaxPayload - 1);
}

// ---------------------------------------------------------------------------
// Write-ahead-log buffers: a header followed by entries; grown with realloc,
// handed to the flusher when full.

constexpr uint64_t kLogMagic = 0x44425349'4d4c4f47ULL;  // "DBSIMLOG"

struct LogHeader {
  uint64_t magic;
  uint64_t checksum;  // over the entries, set when the buffer is sealed
  uint32_t count;
  uint32_t capacity;  // entries that fit in the block
  uint32_t owner;     // worker id
  uint32_t limit;     // seal the buffer at this many entries
};
struct LogEntry {
  uint64_t key;
  uint32_t op;
  uint32_t size;
  uint64_t version;
};
static_assert(sizeof(LogHeader) == 32 && sizeof(LogEntry) == 24);

inline LogEntry* log_entries(LogHeader* h) { return reinterpret_cast<LogEntry*>(h + 1); }
inline const LogEntry* log_entries(const LogHeader* h) { return reinterpret_cast<const LogEntry*>(h + 1); }

uint64_t log_checksum(const LogHeader* h) {
  Hasher hs(h->count);
  const LogEntry* e = log_entries(h);
  for (uint32_t i = 0; i < h->count; i++) {
    hs.add(e[i].key);
    hs.add((static_cast<uint64_t>(e[i].op) << 32) | e[i].size);
    hs.add(e[i].version);
  }
  return hs.finish();
}

// ---------------------------------------------------------------------------
// Bounded multi-producer multi-consumer queue (mutex + condition variables)

struct Item {
  enum Kind : uint32_t { kRecord, kLog } kind;
  uint32_t pad;
  void* ptr;
  uint64_t key;
};

class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : ring_(capacity) {}

  // Blocks while the queue is full.
  void push(const Item& item) {
    std::unique_lock<std::mutex> lock(mu_);
    if (count_ == ring_.size()) {
      full_waits_++;
      not_full_.wait(lock, [&] { return count_ < ring_.size(); });
    }
    ring_[(head_ + count_) % ring_.size()] = item;
    count_++;
    lock.unlock();
    not_empty_.notify_one();
  }

  // Takes up to max items; blocks while empty.  Returns 0 once closed and drained.
  size_t pop_batch(Item* out, size_t max) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return count_ > 0 || closed_; });
    const size_t n = std::min(max, count_);
    for (size_t i = 0; i < n; i++) {
      out[i] = ring_[head_];
      head_ = (head_ + 1) % ring_.size();
    }
    count_ -= n;
    lock.unlock();
    if (n > 0) not_full_.notify_all();
    return n;
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
  }

  uint64_t full_waits() {
    std::lock_guard<std::mutex> lock(mu_);
    return full_waits_;
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::vector<Item> ring_;
  size_t head_ = 0;
  size_t count_ = 0;
  bool closed_ = false;
  uint64_t full_waits_ = 0;
};

// ---------------------------------------------------------------------------
// The table

struct alignas(64) Shard {
  std::mutex mu;
  std::unordered_map<uint64_t, Record*> map;
};

class Table {
 public:
  explicit Table(size_t shards) : n_(shards), shards_(std::make_unique<Shard[]>(shards)) {}
  Shard& shard_for(uint64_t key) { return shards_[mix64(key ^ 0x3c6ef372fe94f82bULL) % n_]; }
  size_t size() const { return n_; }
  Shard& operator[](size_t i) { return shards_[i]; }

 private:
  size_t n_;
  std::unique_ptr<Shard[]> shards_;
};

// ---------------------------------------------------------------------------
// Options

enum Op : unsigned { kRead, kInsert, kUpdate, kErase, kScan, kNumOps };
constexpr const char* kOpNames[kNumOps] = {"read", "insert", "update", "erase", "scan"};

struct Options {
  unsigned threads = 4;
  unsigned flushers = 1;
  double seconds = 3.0;
  bool seconds_given = false;
  uint64_t ops = 0;  // 0: timed mode
  uint64_t seed = 42;
  uint64_t keys = 50000;
  uint64_t preload = 0;
  bool preload_given = false;
  size_t shards = 64;
  size_t queue = 256;
  unsigned handoff = 50;  // percent of retired records freed by the flusher
  unsigned mix[kNumOps] = {45, 20, 20, 10, 5};
  bool json = false;
  bool quiet = false;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: dbsim [OPTIONS]\n"
               "\n"
               "A database-like allocation workload: worker threads insert, read, update\n"
               "(realloc or replace), erase and scan variable-size records in a sharded\n"
               "hash table, and hand write-ahead-log buffers and retired records to a\n"
               "flusher thread that frees them. Uses plain malloc/new only; run it under\n"
               "an allocator with LD_PRELOAD (e.g. tools/mi-run). Exits 1 on data corruption.\n"
               "\n"
               "options:\n"
               "  --threads N      worker threads (default 4)\n"
               "  --seconds S      run for S seconds (default 3; timed mode)\n"
               "  --ops N          run N operations in total, split evenly over the workers\n"
               "                   (deterministic mode: for a seed, each worker runs the same\n"
               "                   operations on the same keys every time; with --seconds\n"
               "                   too, stop at whichever comes first)\n"
               "  --seed N         random seed (default 42)\n"
               "  --keys N         key space (default 50000)\n"
               "  --preload N      records inserted before the timed phase (default keys/2)\n"
               "  --shards N       table shards, each a mutex + unordered_map (default 64)\n"
               "  --mix R:I:U:E:S  weights of read:insert:update:erase:scan (default 45:20:20:10:5)\n"
               "  --handoff PCT    percent of replaced/erased records freed by the flusher\n"
               "                   thread instead of the worker (default 50)\n"
               "  --flushers N     flusher threads (default 1)\n"
               "  --queue N        hand-off queue capacity in items (default 256)\n"
               "  --json           print the report as one JSON object\n"
               "  --quiet          print nothing on success\n"
               "  --version        print the version\n"
               "  --help           print this help\n"
               "\n"
               "exit status: 0 ok, 1 data corruption detected, 2 usage error, 3 out of memory\n");
}

[[noreturn]] void bad_usage(const std::string& msg) {
  std::fprintf(stderr, "dbsim: %s\n(try dbsim --help)\n", msg.c_str());
  std::exit(2);
}

uint64_t parse_u64(const std::string& opt, const std::string& v, uint64_t lo, uint64_t hi) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
    bad_usage(opt + ": not a number: '" + v + "'");
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), nullptr, 10);
  if (errno != 0 || x < lo || x > hi)
    bad_usage(opt + ": out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]: " + v);
  return x;
}

double parse_seconds(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end == nullptr || *end != '\0' || errno != 0 || !(x > 0) || x > 86400)
    bad_usage(opt + ": expected seconds in (0, 86400]: '" + v + "'");
  return x;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    std::string val;
    bool has_val = false;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      val = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_val = true;
    }
    auto value = [&]() -> std::string {
      if (has_val) return val;
      if (i + 1 >= argc) bad_usage(arg + " needs a value");
      return argv[++i];
    };
    auto no_value = [&] {
      if (has_val) bad_usage(arg + " takes no value");
    };
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (arg == "--version") {
      std::printf("dbsim (mimalloc-numa) %s\n", kVersion);
      std::exit(0);
    } else if (arg == "--threads" || arg == "-t") {
      o.threads = static_cast<unsigned>(parse_u64(arg, value(), 1, 1024));
    } else if (arg == "--flushers") {
      o.flushers = static_cast<unsigned>(parse_u64(arg, value(), 1, 64));
    } else if (arg == "--seconds" || arg == "-s") {
      o.seconds = parse_seconds(arg, value());
      o.seconds_given = true;
    } else if (arg == "--ops" || arg == "-n") {
      o.ops = parse_u64(arg, value(), 1, uint64_t{1} << 50);
    } else if (arg == "--seed") {
      o.seed = parse_u64(arg, value(), 0, UINT64_MAX);
    } else if (arg == "--keys") {
      o.keys = parse_u64(arg, value(), 1, uint64_t{1} << 32);
    } else if (arg == "--preload") {
      o.preload = parse_u64(arg, value(), 0, uint64_t{1} << 32);
      o.preload_given = true;
    } else if (arg == "--shards") {
      o.shards = parse_u64(arg, value(), 1, 1u << 20);
    } else if (arg == "--queue") {
      o.queue = parse_u64(arg, value(), 1, 1u << 24);
    } else if (arg == "--handoff") {
      o.handoff = static_cast<unsigned>(parse_u64(arg, value(), 0, 100));
    } else if (arg == "--mix") {
      const std::string v = value();
      unsigned m[kNumOps];
      size_t pos = 0;
      unsigned total = 0;
      for (unsigned k = 0; k < kNumOps; k++) {
        const size_t colon = v.find(':', pos);
        const bool last = k + 1 == kNumOps;
        if (last != (colon == std::string::npos)) bad_usage("--mix: expected five weights R:I:U:E:S, got '" + v + "'");
        const std::string part = v.substr(pos, last ? std::string::npos : colon - pos);
        m[k] = static_cast<unsigned>(parse_u64("--mix", part, 0, 1000000));
        total += m[k];
        pos = colon + 1;
      }
      if (total == 0) bad_usage("--mix: all weights are zero");
      std::copy(std::begin(m), std::end(m), std::begin(o.mix));
    } else if (arg == "--json") {
      no_value();
      o.json = true;
    } else if (arg == "--quiet" || arg == "-q") {
      no_value();
      o.quiet = true;
    } else {
      bad_usage("unknown argument '" + arg + "'");
    }
  }
  if (!o.preload_given) o.preload = o.keys / 2;
  if (o.preload > o.keys) bad_usage("--preload exceeds --keys");
  return o;
}

// ---------------------------------------------------------------------------
// Workers

struct WorkerStats {
  uint64_t ops[kNumOps] = {};
  uint64_t read_hits = 0;
  uint64_t scan_rows = 0;
  uint64_t scan_bytes = 0;  // payload bytes of the rows scanned
  uint64_t realloc_updates = 0;
  uint64_t replace_updates = 0;
  uint64_t handed_off = 0;     // records freed by the flusher
  uint64_t freed_locally = 0;  // records freed by this worker
  uint64_t log_buffers = 0;
  uint64_t verified = 0;    // records whose checksum was checked
  int64_t live_delta = 0;   // records
  int64_t bytes_delta = 0;  // payload bytes
  uint64_t preloaded = 0;
};

struct FlusherStats {
  uint64_t records = 0;
  uint64_t log_buffers = 0;
  uint64_t log_bytes = 0;
  uint64_t log_entries = 0;
};

struct Shared {
  const Options& opt;
  Table table;
  BoundedQueue queue;
  std::atomic<bool> stop{false};
  std::atomic<unsigned> workers_done{0};
  std::latch ready;
  uint64_t mix_total = 0;

  explicit Shared(const Options& o)
      : opt(o), table(o.shards), queue(o.queue), ready(static_cast<std::ptrdiff_t>(o.threads) + 1) {
    for (unsigned w : o.mix) mix_total += w;
  }
};

// Aligned so that two workers' counters never share a cache line.
class alignas(64) Worker {
 public:
  Worker(Shared& s, unsigned id, uint64_t my_ops)
      : s_(s),
        id_(id),
        my_ops_(my_ops),
        pick_rng_(s.opt.seed * 0x100000001b3ULL + id + 1),
        rng_(~(s.opt.seed * 0x100000001b3ULL + id + 1)) {}

  void run() {
    preload();
    s_.ready.arrive_and_wait();
    const bool counted = s_.opt.ops > 0;
    for (uint64_t done = 0;; done++) {
      if (counted && done >= my_ops_) break;
      if ((done & 31) == 0 && s_.stop.load(std::memory_order_relaxed)) break;
      const Op op = pick_op();
      const uint64_t key = pick_key();
      switch (op) {
        case kRead: do_read(key); break;
        case kInsert: do_insert(key); break;
        case kUpdate: do_update(key); break;
        case kErase: do_erase(key); break;
        case kScan: do_scan(key); break;
        case kNumOps: break;
      }
      st.ops[op]++;
    }
    seal_log();
    s_.workers_done.fetch_add(1, std::memory_order_release);
  }

  WorkerStats st;

 private:
  Op pick_op() {
    uint64_t r = pick_rng_.below(s_.mix_total);
    for (unsigned k = 0; k < kNumOps; k++) {
      if (r < s_.opt.mix[k]) return static_cast<Op>(k);
      r -= s_.opt.mix[k];
    }
    return kRead;
  }

  // Skewed: key = keys * u^2, so low keys are hot.
  uint64_t pick_key() {
    const double u = pick_rng_.unit();
    const auto k = static_cast<uint64_t>(u * u * static_cast<double>(s_.opt.keys));
    return std::min(k, s_.opt.keys - 1);
  }

  void preload() {
    const uint64_t n = s_.opt.preload;
    for (uint64_t i = id_; i < n; i += s_.opt.threads) {
      const uint64_t key = i * s_.opt.keys / n;
      put(key, make_record(key, draw_size(rng_), new_version()));
      st.preloaded++;
    }
  }

  void log(Op op, uint64_t key, size_t size, uint32_t version) {
    if (log_ == nullptr) {
      // Start small and grow with realloc; seal at a random size of 4-64 KiB.
      const uint32_t cap = 32;
      log_ = static_cast<LogHeader*>(xmalloc(sizeof(LogHeader) + cap * sizeof(LogEntry)));
      log_->magic = kLogMagic;
      log_->checksum = 0;
      log_->count = 0;
      log_->capacity = cap;
      log_->owner = id_;
      log_->limit = static_cast<uint32_t>((4096 + rng_.below(60 * 1024)) / sizeof(LogEntry));
    }
    if (log_->count == log_->capacity) {
      const uint32_t cap = log_->capacity * 2;
      log_ = static_cast<LogHeader*>(xrealloc(log_, sizeof(LogHeader) + cap * sizeof(LogEntry)));
      log_->capacity = cap;
    }
    LogEntry& e = log_entries(log_)[log_->count++];
    e.key = key;
    e.op = op;
    e.size = static_cast<uint32_t>(size);
    e.version = (static_cast<uint64_t>(id_) << 32) | version;
    if (log_->count >= log_->limit) seal_log();
  }

  void seal_log() {
    if (log_ == nullptr) return;
    log_->checksum = log_checksum(log_);
    s_.queue.push(Item{Item::kLog, 0, log_, 0});
    st.log_buffers++;
    log_ = nullptr;
  }

  // A record that left the table: free it here or hand it to the flusher.
  void retire(Record* r, uint64_t key) {
    st.live_delta--;
    st.bytes_delta -= r->size;
    if (rng_.below(100) < s_.opt.handoff) {
      s_.queue.push(Item{Item::kRecord, 0, r, key});
      st.handed_off++;
    } else {
      check_header(r, key, "retire");
      free_record(r);
      st.freed_locally++;
    }
  }

  void do_read(uint64_t key) {
    Shard& sh = s_.table.shard_for(key);
    std::lock_guard<std::mutex> lock(sh.mu);
    const auto it = sh.map.find(key);
    if (it == sh.map.end()) return;
    st.read_hits++;
    st.verified++;
    check_record(it->second, key, "read");
  }

  // Puts r under key; a record already there is retired (replaced).  Once r
  // is published another thread may replace and free it: don't touch it after.
  void put(uint64_t key, Record* r) {
    const uint32_t size = r->size;
    Record* old = nullptr;
    {
      Shard& sh = s_.table.shard_for(key);
      std::lock_guard<std::mutex> lock(sh.mu);
      auto [it, inserted] = sh.map.try_emplace(key, r);
      if (!inserted) {
        old = it->second;
        it->second = r;
      }
    }
    st.live_delta++;
    st.bytes_delta += size;
    if (old != nullptr) retire(old, key);
  }

  // A new record gets a random version, so a replacement has new contents.
  uint32_t new_version() { return static_cast<uint32_t>(rng_.next() >> 33) + 1; }

  void do_insert(uint64_t key) {
    // Allocate and fill outside the lock.
    const size_t size = draw_size(rng_);
    const uint32_t version = new_version();
    put(key, make_record(key, size, version));
    log(kInsert, key, size, version);
  }

  void do_update(uint64_t key) {
    if (rng_.below(2) == 0) {
      // In place: realloc the record to a new size; the kept prefix must survive.
      Shard& sh = s_.table.shard_for(key);
      std::unique_lock<std::mutex> lock(sh.mu);
      const auto it = sh.map.find(key);
      if (it != sh.map.end()) {
        Record* r = it->second;
        if (!check_header(r, key, "update")) return;
        const size_t old_size = r->size;
        const uint32_t old_version = r->version;
        const size_t new_size = resize_size(rng_, old_size);
        r = static_cast<Record*>(xrealloc(r, sizeof(Record) + new_size));
        it->second = r;
        const size_t keep = std::min(old_size, new_size);
        if (r->magic != (kRecordMagic ^ key) || r->key != key ||
            !payload_matches(r->payload(), keep, content_seed(key, old_version))) {
          corruption("update: realloc of key %llu from %zu to %zu bytes lost the old contents",
                     static_cast<unsigned long long>(key), old_size, new_size);
        }
        r->magic = kRecordMagic ^ key;
        r->key = key;
        r->size = static_cast<uint32_t>(new_size);
        r->version = old_version + 1;
        r->checksum = fill_payload(r->payload(), new_size, content_seed(key, r->version));
        lock.unlock();
        st.bytes_delta += static_cast<int64_t>(new_size) - static_cast<int64_t>(old_size);
        st.realloc_updates++;
        log(kUpdate, key, new_size, old_version + 1);
        return;
      }
    }
    // Replace: build a new record outside the lock and swap it in (inserts
    // the key if it is missing).
    const size_t size = draw_size(rng_);
    const uint32_t version = new_version();
    put(key, make_record(key, size, version));
    st.replace_updates++;
    log(kUpdate, key, size, version);
  }

  void do_erase(uint64_t key) {
    Record* r = nullptr;
    {
      Shard& sh = s_.table.shard_for(key);
      std::lock_guard<std::mutex> lock(sh.mu);
      const auto it = sh.map.find(key);
      if (it == sh.map.end()) return;
      r = it->second;
      sh.map.erase(it);
    }
    retire(r, key);
    log(kErase, key, 0, 0);
  }

  // A range query over [key, key+len): materialises a small projection of
  // each row into a result vector, as a query executor would.
  void do_scan(uint64_t key) {
    const uint64_t len = 8 + pick_rng_.below(57);
    std::vector<std::string> rows;
    uint64_t total = 0;
    for (uint64_t k = key; k < key + len && k < s_.opt.keys; k++) {
      Shard& sh = s_.table.shard_for(k);
      std::lock_guard<std::mutex> lock(sh.mu);
      const auto it = sh.map.find(k);
      if (it == sh.map.end()) continue;
      const Record* r = it->second;
      if (!check_header(r, k, "scan")) continue;
      if (r->size <= 512) {
        st.verified++;
        check_record(r, k, "scan");
      }
      std::string row = std::to_string(k);
      row.push_back('|');
      row.append(reinterpret_cast<const char*>(r->payload()), std::min<size_t>(r->size, 48));
      total += r->size;
      rows.push_back(std::move(row));
    }
    st.scan_rows += rows.size();
    st.scan_bytes += total;
  }

  Shared& s_;
  unsigned id_;
  uint64_t my_ops_;
  // The sequence of operations and keys comes from its own generator, so that
  // with --ops each worker runs the same operations whatever the interleaving;
  // sizes, versions and hand-off decisions come from the other one.
  Rng pick_rng_;
  Rng rng_;
  LogHeader* log_ = nullptr;
};

void flusher_main(Shared& s, FlusherStats& fs) {
  Item batch[64];
  for (;;) {
    const size_t n = s.queue.pop_batch(batch, 64);
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      if (batch[i].kind == Item::kRecord) {
        auto* r = static_cast<Record*>(batch[i].ptr);
        check_record(r, batch[i].key, "flusher");
        free_record(r);
        fs.records++;
      } else {
        auto* h = static_cast<LogHeader*>(batch[i].ptr);
        if (h->magic != kLogMagic || h->count > h->capacity || log_checksum(h) != h->checksum) {
          corruption("flusher: log buffer %p of worker %u fails its checksum", static_cast<void*>(h), h->owner);
        }
        fs.log_entries += h->count;
        fs.log_bytes += sizeof(LogHeader) + h->capacity * sizeof(LogEntry);
        h->magic = kDeadMagic;
        std::free(h);
        fs.log_buffers++;
      }
    }
  }
}

double peak_rss_mib() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  const bool counted = opt.ops > 0;
  const bool timed = !counted || opt.seconds_given;

  auto shared = std::make_unique<Shared>(opt);
  Shared& s = *shared;

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < opt.threads; t++) {
    const uint64_t my_ops = counted ? opt.ops / opt.threads + (t < opt.ops % opt.threads ? 1 : 0) : 0;
    workers.push_back(std::make_unique<Worker>(s, t, my_ops));
  }
  std::vector<FlusherStats> fstats(opt.flushers);
  std::vector<std::thread> flushers;
  for (unsigned f = 0; f < opt.flushers; f++) flushers.emplace_back(flusher_main, std::ref(s), std::ref(fstats[f]));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  // Wait until every worker has preloaded its share, then start the clock.
  const auto t_load = std::chrono::steady_clock::now();
  s.ready.arrive_and_wait();
  const auto t0 = std::chrono::steady_clock::now();
  if (timed) {
    const auto deadline = t0 + std::chrono::duration<double>(opt.seconds);
    while (std::chrono::steady_clock::now() < deadline &&
           s.workers_done.load(std::memory_order_acquire) < opt.threads) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    s.stop.store(true, std::memory_order_relaxed);
  }
  for (auto& t : threads) t.join();
  const auto t1 = std::chrono::steady_clock::now();
  s.queue.close();
  for (auto& t : flushers) t.join();
  const auto t2 = std::chrono::steady_clock::now();

  // Totals.
  WorkerStats tot;
  for (const auto& w : workers) {
    for (unsigned k = 0; k < kNumOps; k++) tot.ops[k] += w->st.ops[k];
    tot.read_hits += w->st.read_hits;
    tot.scan_rows += w->st.scan_rows;
    tot.scan_bytes += w->st.scan_bytes;
    tot.realloc_updates += w->st.realloc_updates;
    tot.replace_updates += w->st.replace_updates;
    tot.handed_off += w->st.handed_off;
    tot.freed_locally += w->st.freed_locally;
    tot.log_buffers += w->st.log_buffers;
    tot.verified += w->st.verified;
    tot.live_delta += w->st.live_delta;
    tot.bytes_delta += w->st.bytes_delta;
    tot.preloaded += w->st.preloaded;
  }
  FlusherStats ftot;
  for (const auto& f : fstats) {
    ftot.records += f.records;
    ftot.log_buffers += f.log_buffers;
    ftot.log_bytes += f.log_bytes;
    ftot.log_entries += f.log_entries;
  }
  uint64_t total_ops = 0;
  for (uint64_t n : tot.ops) total_ops += n;

  // Verify the whole table, then free it.
  uint64_t live_records = 0;
  uint64_t live_bytes = 0;
  for (size_t i = 0; i < s.table.size(); i++) {
    Shard& sh = s.table[i];
    std::lock_guard<std::mutex> lock(sh.mu);
    for (const auto& [key, r] : sh.map) {
      live_records++;
      live_bytes += r->size;
      tot.verified++;
      check_record(r, key, "final check");
    }
  }
  const double rss = peak_rss_mib();
  for (size_t i = 0; i < s.table.size(); i++) {
    Shard& sh = s.table[i];
    std::lock_guard<std::mutex> lock(sh.mu);
    for (auto& [key, r] : sh.map) free_record(r);
    sh.map.clear();
  }
  if (static_cast<int64_t>(live_records) != tot.live_delta || static_cast<int64_t>(live_bytes) != tot.bytes_delta) {
    corruption("table holds %llu records / %llu bytes, but the operations account for %lld / %lld",
               static_cast<unsigned long long>(live_records), static_cast<unsigned long long>(live_bytes),
               static_cast<long long>(tot.live_delta), static_cast<long long>(tot.bytes_delta));
  }
  if (ftot.records != tot.handed_off || ftot.log_buffers != tot.log_buffers) {
    corruption("flusher freed %llu records / %llu log buffers, workers handed off %llu / %llu",
               static_cast<unsigned long long>(ftot.records), static_cast<unsigned long long>(ftot.log_buffers),
               static_cast<unsigned long long>(tot.handed_off), static_cast<unsigned long long>(tot.log_buffers));
  }

  const double elapsed = std::chrono::duration<double>(t1 - t0).count();
  const double load_s = std::chrono::duration<double>(t0 - t_load).count();
  const double drain_s = std::chrono::duration<double>(t2 - t1).count();
  const double per_s = elapsed > 0 ? 1.0 / elapsed : 0.0;
  const uint64_t corrupt = g_corruptions.load();
  const double mib = 1024.0 * 1024.0;

  if (opt.json) {
    std::printf(
        "{\"program\":\"dbsim\",\"threads\":%u,\"flushers\":%u,\"seed\":%llu,\"keys\":%llu,"
        "\"preloaded\":%llu,\"mode\":\"%s\",\"ops\":%llu,\"elapsed_s\":%.6f,"
        "\"preload_s\":%.6f,\"drain_s\":%.6f,\"ops_per_s\":%.1f,\"per_op\":{",
        opt.threads, opt.flushers, static_cast<unsigned long long>(opt.seed), static_cast<unsigned long long>(opt.keys),
        static_cast<unsigned long long>(tot.preloaded), counted ? "ops" : "seconds",
        static_cast<unsigned long long>(total_ops), elapsed, load_s, drain_s, static_cast<double>(total_ops) * per_s);
    for (unsigned k = 0; k < kNumOps; k++) {
      std::printf("%s\"%s\":{\"ops\":%llu,\"ops_per_s\":%.1f}", k ? "," : "", kOpNames[k],
                  static_cast<unsigned long long>(tot.ops[k]), static_cast<double>(tot.ops[k]) * per_s);
    }
    std::printf(
        "},\"read_hits\":%llu,\"scan_rows\":%llu,\"realloc_updates\":%llu,"
        "\"replace_updates\":%llu,",
        static_cast<unsigned long long>(tot.read_hits), static_cast<unsigned long long>(tot.scan_rows),
        static_cast<unsigned long long>(tot.realloc_updates), static_cast<unsigned long long>(tot.replace_updates));
    std::printf(
        "\"handoff_records\":%llu,\"local_frees\":%llu,\"log_buffers\":%llu,"
        "\"log_bytes\":%llu,\"queue_full_waits\":%llu,\"live_records\":%llu,"
        "\"live_bytes\":%llu,\"peak_rss_mib\":%.1f,\"verified\":%llu,\"corruptions\":%llu}\n",
        static_cast<unsigned long long>(tot.handed_off), static_cast<unsigned long long>(tot.freed_locally),
        static_cast<unsigned long long>(ftot.log_buffers), static_cast<unsigned long long>(ftot.log_bytes),
        static_cast<unsigned long long>(s.queue.full_waits()), static_cast<unsigned long long>(live_records),
        static_cast<unsigned long long>(live_bytes), rss, static_cast<unsigned long long>(tot.verified),
        static_cast<unsigned long long>(corrupt));
  } else if (!opt.quiet || corrupt != 0) {
    std::printf(
        "dbsim: %u threads, %u flusher%s, %zu shards, %llu keys (%llu preloaded in %.2f s), "
        "seed %llu, mix %u:%u:%u:%u:%u\n",
        opt.threads, opt.flushers, opt.flushers == 1 ? "" : "s", opt.shards, static_cast<unsigned long long>(opt.keys),
        static_cast<unsigned long long>(tot.preloaded), load_s, static_cast<unsigned long long>(opt.seed), opt.mix[0],
        opt.mix[1], opt.mix[2], opt.mix[3], opt.mix[4]);
    std::printf("  total    %11llu ops in %.3f s = %.0f ops/s\n", static_cast<unsigned long long>(total_ops), elapsed,
                static_cast<double>(total_ops) * per_s);
    for (unsigned k = 0; k < kNumOps; k++) {
      std::printf("  %-8s %11llu ops %12.0f ops/s", kOpNames[k], static_cast<unsigned long long>(tot.ops[k]),
                  static_cast<double>(tot.ops[k]) * per_s);
      if (k == kRead && tot.ops[k] > 0)
        std::printf("  (%.1f%% hits)", 100.0 * static_cast<double>(tot.read_hits) / static_cast<double>(tot.ops[k]));
      if (k == kUpdate)
        std::printf("  (%llu realloc, %llu replace)", static_cast<unsigned long long>(tot.realloc_updates),
                    static_cast<unsigned long long>(tot.replace_updates));
      if (k == kScan) std::printf("  (%llu rows)", static_cast<unsigned long long>(tot.scan_rows));
      std::printf("\n");
    }
    std::printf(
        "  handoff  %llu records and %llu log buffers (%.1f MiB) freed by the flusher, "
        "%llu records freed locally, %llu queue-full waits, drain %.3f s\n",
        static_cast<unsigned long long>(tot.handed_off), static_cast<unsigned long long>(ftot.log_buffers),
        static_cast<double>(ftot.log_bytes) / mib, static_cast<unsigned long long>(tot.freed_locally),
        static_cast<unsigned long long>(s.queue.full_waits()), drain_s);
    std::printf("  live     %llu records, %.1f MiB payload\n", static_cast<unsigned long long>(live_records),
                static_cast<double>(live_bytes) / mib);
    std::printf("  peak RSS %.1f MiB\n", rss);
    if (corrupt == 0)
      std::printf("  integrity OK (%llu checksums verified)\n", static_cast<unsigned long long>(tot.verified));
    else std::printf("  integrity FAILED: %llu corruptions\n", static_cast<unsigned long long>(corrupt));
  }
  std::fflush(stdout);
  return corrupt == 0 ? 0 : 1;
}
