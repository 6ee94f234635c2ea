// Baselines for bench/page-flags.mjs: PAGEMAP_SCAN (Linux 6.7+) straight from C.
//   pagemap_scan flags <MiB> <rounds>
//     every other 2 MiB of the range written (present), the rest populated for
//     reading (zero page); times one ioctl returning every run with all categories.
//   pagemap_scan written <MiB> <permille> <rounds>
//     userfaultfd write-protects the range (UFFD_FEATURE_WP_ASYNC), `permille`/1000
//     of the pages (spread evenly) are written, then times the scan for
//     PAGE_IS_WRITTEN runs and the re-protect (PM_SCAN_WP_MATCHING); also times
//     the first write to a protected page against a write to a writable one.
// Prints one JSON object: wall-clock times (scan_ns) and this thread's CPU time
// (scan_cpu_ns: on a loaded machine the wall clock also counts time spent waiting
// for a CPU). The structs are declared here: Debian 12's headers predate the ioctl.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "timing.h"

struct scan_region { uint64_t start, end, categories; };
struct scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define SCAN_IOCTL _IOWR('f', 16, struct scan_arg)
#define IS_WRITTEN (1u << 1)
#define ALL_CATEGORIES 0xffu
#define WP_MATCHING (1u << 0)
#define CHECK_WPASYNC (1u << 1)
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

static int pagemap;

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static struct scan_region* vec;
static size_t vec_cap;

// One walk of [p, p + len): returns the regions found (all of them: vec is large enough).
static long scan(char* p, size_t len, uint64_t flags, uint64_t mask, uint64_t anyof, uint64_t ret) {
  struct scan_arg a = {.size = sizeof a, .flags = flags, .start = (uintptr_t)p, .end = (uintptr_t)p + len,
                       .vec = (uintptr_t)vec, .vec_len = vec_cap, .category_mask = mask,
                       .category_anyof_mask = anyof, .return_mask = ret};
  long n = ioctl(pagemap, SCAN_IOCTL, &a);
  if (n < 0) { perror("PAGEMAP_SCAN"); exit(1); }
  return n;
}

int main(int argc, char** argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s flags MiB rounds | written MiB permille rounds\n", argv[0]); return 2; }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = (size_t)atol(argv[2]) << 20, pages = len / page;
  pagemap = open("/proc/self/pagemap", O_RDONLY);
  if (pagemap < 0) { perror("pagemap"); return 1; }
  vec_cap = pages;
  vec = malloc(vec_cap * sizeof *vec);
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  madvise(p, len, MADV_NOHUGEPAGE);  // page-granular runs, as pagewise's tests see them
  if (strcmp(argv[1], "flags") == 0) {
    int rounds = atoi(argv[3]);
    size_t chunk = (size_t)2 << 20;
    volatile char sink = 0;
    for (size_t off = 0; off < len; off += chunk) {
      if ((off / chunk) % 2 == 0) memset(p + off, 1, chunk);
      else for (size_t i = off; i < off + chunk; i += page) sink += p[i];
    }
    // Every page in its own run would be the worst case; alternate write/read per page in the first chunk.
    double* cpu = calloc((size_t)rounds, sizeof *cpu);
    printf("{\"scan_ns\":[");
    long runs = 0;
    for (int r = 0; r < rounds; r++) {
      double c0 = cpu_ns(), t0 = now_ns();
      runs = scan(p, len, 0, 0, ALL_CATEGORIES, ALL_CATEGORIES);
      double t1 = now_ns();
      cpu[r] = cpu_ns() - c0;
      printf("%s%.0f", r ? "," : "", t1 - t0);
    }
    printf("],\"scan_cpu_ns\":[");
    for (int r = 0; r < rounds; r++) printf("%s%.0f", r ? "," : "", cpu[r]);
    printf("],\"runs\":%ld}\n", runs);
    return 0;
  }
  int permille = atoi(argv[3]), rounds = atoi(argv[4]);
  memset(p, 1, len);
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) { perror("userfaultfd"); return 1; }
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED};
  if (ioctl(uffd, UFFDIO_API, &api) != 0) { perror("UFFDIO_API"); return 1; }
  struct uffdio_register reg = {.range = {.start = (uintptr_t)p, .len = len}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) { perror("UFFDIO_REGISTER"); return 1; }
  double t0 = now_ns();
  struct uffdio_writeprotect wp = {.range = {.start = (uintptr_t)p, .len = len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) { perror("UFFDIO_WRITEPROTECT"); return 1; }
  double protect_ns = now_ns() - t0;
  size_t step = permille > 0 ? 1000 / (size_t)permille : pages;
  double* cpu = calloc((size_t)rounds, sizeof *cpu);
  printf("{\"protect_ns\":%.0f,\"scan_ns\":[", protect_ns);
  long found = 0;
  double first_write = 0, reprotect = 0;
  size_t written = 0;
  for (int r = 0; r < rounds; r++) {
    written = 0;
    t0 = now_ns();
    for (size_t i = 0; i < pages; i += step, written++) p[i * page] = (char)r;
    first_write += now_ns() - t0;
    double c0 = cpu_ns();
    t0 = now_ns();
    found = scan(p, len, 0, IS_WRITTEN, 0, IS_WRITTEN);
    double t1 = now_ns();
    cpu[r] = cpu_ns() - c0;
    printf("%s%.0f", r ? "," : "", t1 - t0);
    t0 = now_ns();
    scan(p, len, WP_MATCHING | CHECK_WPASYNC, IS_WRITTEN, 0, IS_WRITTEN);
    reprotect += now_ns() - t0;
  }
  // The same writes to pages already writable: what a write costs without the fault.
  t0 = now_ns();
  for (size_t i = 0; i < pages; i += step) p[i * page + 1] = 2;
  for (size_t i = 0; i < pages; i += step) p[i * page + 2] = 3;
  double plain = (now_ns() - t0) / 2;
  // Pages written by the loop above got write access at their first write; every write
  // after that in the same round costs nothing extra. Runs found = pages written (spread).
  printf("],\"scan_cpu_ns\":[");
  for (int r = 0; r < rounds; r++) printf("%s%.0f", r ? "," : "", cpu[r]);
  printf("],\"runs\":%ld,\"written\":%zu,\"first_write_ns\":%.1f,\"plain_write_ns\":%.1f,\"reprotect_ns\":%.0f}\n", found,
         written, first_write / rounds / written, plain / written, reprotect / rounds);
  close(uffd);
  return 0;
}
