// replay_main.cpp: runs a libFuzzer target over files, without libFuzzer, so
// that the corpus (and every crash found, added to it) is a plain test in
// every build, with any compiler (after harfbuzz test/fuzzing/main.cc).
//
//   <target>_replay PATH...   each PATH a file or a directory of files (not recursive)
//
// Inputs run in name order; a failed check in the target aborts. Exits 1
// when no input was found (a missing corpus must not pass), else 0.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

bool read_file(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  out->clear();
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out->insert(out->end(), buf, buf + n);
  bool ok = ferror(f) == 0;
  fclose(f);
  return ok;
}

void collect(const std::string& path, std::vector<std::string>* files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    files->push_back(path);
    return;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string full = path + "/" + name;
    if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(full);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  files->insert(files->end(), names.begin(), names.end());
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++) collect(argv[i], &files);
  if (files.empty()) {
    fprintf(stderr, "replay: no inputs (usage: %s FILE-OR-DIRECTORY...)\n", argv[0]);
    return 1;
  }
  std::vector<uint8_t> data;
  for (const std::string& f : files) {
    if (!read_file(f, &data)) {
      fprintf(stderr, "replay: cannot read %s\n", f.c_str());
      return 1;
    }
    printf("replay: %s (%zu bytes)\n", f.c_str(), data.size());
    fflush(stdout);
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  printf("replay: %zu inputs, no failure\n", files.size());
  return 0;
}
