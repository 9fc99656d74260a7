// library_rss: the resident memory a program pays for the library itself.
//
//   library_rss NAME MAX_HEADER_KIB MAX_CODE_KIB MAX_TOTAL_KIB MAX_RODATA_KIB
//
// Run under LD_PRELOAD (library_rss.sh). Sums, from /proc/self/smaps, the
// resident size of each mapping of the file whose name contains NAME, prints
// them, and fails if the mapping at file offset 0 (ELF headers, dynamic
// symbols and the relocation table: what the dynamic loader reads once at
// start-up; and the read-only data programs read, lib/rodata-start.ld) has
// more than MAX_HEADER_KIB resident, the code (the executable mapping) more
// than MAX_CODE_KIB, the read-only data segment (.rodata and the unwind
// tables: the read-only mappings after the code but the last, which is the
// relocated data made read-only, RELRO) more than MAX_RODATA_KIB, or all of
// them together more than MAX_TOTAL_KIB. An unpacked table of the library's
// ~3200 relative relocations made that mapping 96 KiB in every process;
// packed (DT_RELR, lib/meson.build) it is 20 KiB. The kernel maps a file's
// cached pages in 64 KiB windows around each fault, so code is resident by the
// window: in source order all of it was (164 KiB), with what programs run laid
// out first (lib/text-order.txt) 64 KiB; the read-only data segment was 64 KiB
// for the ~6 KiB of it that programs read, none with that moved to the first
// mapping (lib/rodata-start.ld).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s NAME MAX_HEADER_KIB MAX_CODE_KIB MAX_TOTAL_KIB MAX_RODATA_KIB\n", argv[0]);
    return 2;
  }
  const char* name = argv[1];
  const long max_header_kib = strtol(argv[2], NULL, 10);
  const long max_code_kib = strtol(argv[3], NULL, 10);
  const long max_total_kib = strtol(argv[4], NULL, 10);
  const long max_rodata_kib = strtol(argv[5], NULL, 10);
  // a block from the allocator, so that it is started as in any program
  char* p = malloc(100);
  if (p == NULL) return 1;
  memset(p, 1, 100);

  FILE* f = fopen("/proc/self/smaps", "r");
  if (f == NULL) {
    perror("library_rss: /proc/self/smaps");
    return 1;
  }
  char line[4096];
  int in_lib = 0, header = 0, found = 0;
  long header_kib = -1, code_kib = 0, total_kib = 0;
  char perms[8] = "";
  // the read-only mappings after the code, in address order: all but the
  // last (RELRO, just before the writable mapping) are the read-only data
  long readonly_kib[16];
  int readonly_count = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi, off;
    char pm[8];
    // a mapping's first line: "lo-hi perms offset dev inode path"
    if (line[strspn(line, "0123456789abcdef")] == '-' && sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, pm, &off) == 4) {
      in_lib = strstr(line, name) != NULL;
      header = in_lib && off == 0;
      strcpy(perms, pm);
      continue;
    }
    long kib;
    if (in_lib && sscanf(line, "Rss: %ld kB", &kib) == 1) {
      found = 1;
      total_kib += kib;
      printf("library_rss: %s mapping%s: %ld KiB resident\n", perms, header ? " at offset 0" : "", kib);
      if (header) header_kib = kib;
      if (strchr(perms, 'x') != NULL) code_kib += kib;
      if (!header && strcmp(perms, "r--p") == 0 && readonly_count < 16) readonly_kib[readonly_count++] = kib;
    }
  }
  fclose(f);
  free(p);
  if (!found || header_kib < 0) {
    fprintf(stderr, "library_rss: no mapping of %s at offset 0 in this process (not preloaded?)\n", name);
    return 1;
  }
  printf("library_rss: %ld KiB of the library resident in all (bound %ld), %ld KiB at offset 0 (bound %ld)\n",
         total_kib, max_total_kib, header_kib, max_header_kib);
  long rodata_kib = 0;
  for (int i = 0; i + 1 < readonly_count; i++) rodata_kib += readonly_kib[i];
  printf("library_rss: %ld KiB of the read-only data segment resident (bound %ld)\n", rodata_kib, max_rodata_kib);
  if (header_kib > max_header_kib) {
    fprintf(stderr,
            "library_rss: FAILED: %ld KiB of headers and relocations resident (bound %ld KiB): are the relative "
            "relocations packed (readelf -d: RELR)?\n",
            header_kib, max_header_kib);
    return 1;
  }
  if (code_kib > max_code_kib) {
    fprintf(stderr,
            "library_rss: FAILED: %ld KiB of the library's code resident (bound %ld KiB): do functions that "
            "programs run lie outside lib/text-order.txt (regenerate it: tools/text-order)?\n",
            code_kib, max_code_kib);
    return 1;
  }
  if (rodata_kib > max_rodata_kib) {
    fprintf(stderr,
            "library_rss: FAILED: %ld KiB of the library's read-only data segment resident (bound %ld KiB): does "
            "start-up or malloc read a table, constant or string that lib/rodata-start.ld leaves in .rodata "
            "(valgrind --tool=lackey --trace-mem=yes shows which addresses)?\n",
            rodata_kib, max_rodata_kib);
    return 1;
  }
  if (total_kib > max_total_kib) {
    fprintf(stderr,
            "library_rss: FAILED: %ld KiB of the library resident (bound %ld KiB): has its code grown, or is the "
            "code that runs once or rarely no longer built for size (lib/meson.build, lib_cold_sources)?\n",
            total_kib, max_total_kib);
    return 1;
  }
  return 0;
}
