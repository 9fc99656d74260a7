// Compiled and run under the allocator by gxx.sh: templates, std::map,
// std::string, std::vector, std::unique_ptr; prints deterministic results.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace {

template <typename K, typename V = long>
class Counter {
 public:
  void add(const K& key, V by = 1) { counts_[key] += by; }
  std::size_t size() const { return counts_.size(); }

  // The n largest counts, ties broken by key.
  std::vector<std::pair<K, V>> top(std::size_t n) const {
    std::vector<std::pair<K, V>> all(counts_.begin(), counts_.end());
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    all.resize(std::min(n, all.size()));
    return all;
  }

 private:
  std::map<K, V> counts_;
};

struct Lcg {
  std::uint64_t s;
  std::uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(s >> 33);
  }
};

std::string make_word(Lcg& rng) {
  static const char* const syllables[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi"};
  std::string w;
  const unsigned len = 1 + rng.next() % 3;
  for (unsigned i = 0; i < len; i++) w += syllables[rng.next() % 8];
  return w;
}

template <typename T, typename F>
auto fold(const std::vector<T>& v, F f) {
  return std::accumulate(v.begin(), v.end(), std::uint64_t{1469598103934665603ULL},
                         [&](std::uint64_t h, const T& x) { return (h ^ f(x)) * 1099511628211ULL; });
}

struct Node {
  std::string name;
  std::vector<std::unique_ptr<Node>> kids;
};

std::size_t count_nodes(const Node& n) {
  std::size_t c = 1;
  for (const auto& k : n.kids) c += count_nodes(*k);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  Lcg rng{42};
  Counter<std::string> words;
  std::vector<std::string> text;
  for (int i = 0; i < 200000; i++) {
    text.push_back(make_word(rng));
    words.add(text.back());
  }
  std::cout << "distinct " << words.size() << "\n";
  for (const auto& [w, c] : words.top(3)) std::cout << "top " << w << " " << c << "\n";

  std::map<std::size_t, std::vector<std::string>> by_length;
  for (const auto& w : text) by_length[w.size()].push_back(w);
  for (auto& [len, ws] : by_length) {
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    std::cout << "length " << len << " " << ws.size() << " " << ws.front() << " " << ws.back() << "\n";
  }
  std::cout << "hash " << std::hex
            << fold(text,
                    [](const std::string& s) {
                      std::uint64_t h = 0;
                      for (unsigned char ch : s) h = h * 131 + ch;
                      return h;
                    }) %
                   1000000007
            << std::dec << "\n";

  // A tree of heap nodes, built breadth-first and destroyed recursively.
  Node root{"root", {}};
  std::vector<Node*> frontier{&root};
  for (int depth = 0; depth < 6; depth++) {
    std::vector<Node*> next;
    for (Node* n : frontier) {
      for (int k = 0; k < 5; k++) {
        n->kids.push_back(std::make_unique<Node>(Node{n->name + "." + std::to_string(k), {}}));
        next.push_back(n->kids.back().get());
      }
    }
    frontier = std::move(next);
  }
  std::cout << "nodes " << count_nodes(root) << " " << frontier.back()->name << "\n";

  if (argc > 1) {
    std::ifstream maps("/proc/self/maps");
    bool mapped = false;
    for (std::string line; std::getline(maps, line);) mapped = mapped || line.find(argv[1]) != std::string::npos;
    std::cout << "mapped " << (mapped ? "yes" : "no") << "\n";
  }
  return 0;
}
