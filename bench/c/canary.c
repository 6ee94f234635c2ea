// Q5 baseline: the volatile-buffer canary protocol (see /work/shared/VOLATILE.md)
// usage: canary <pages> <cycles> <reps>
// unpin: for every page save its first 8-byte word and store a non-zero canary,
//        then madvise(MADV_FREE) the whole buffer.
// pin:   for every page one compare-and-swap canary -> saved word; a failed CAS
//        means the page was purged.
// Prints {"unpin_pin_ns_per_page":[...]} (one per rep, each the mean over
// <cycles> unpin+pin cycles) and the purged count (expected 0: no pressure).
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

#ifndef MADV_FREE
#define MADV_FREE 8
#endif

int main(int argc, char** argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s pages cycles reps\n", argv[0]); return 2; }
  size_t pages = (size_t)atol(argv[1]);
  long cycles = atol(argv[2]);
  int reps = atoi(argv[3]);
  size_t page = (size_t)sysconf(_SC_PAGESIZE), len = pages * page;
  unsigned char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  memset(p, 7, len);
  uint64_t* saved = calloc(pages, sizeof(uint64_t));
  const uint64_t canary = 0x5a5a5a5a5a5a5a5aull;
  long purged = 0;
  printf("{\"unpin_pin_ns_per_page\":[");
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns();
    for (long c = 0; c < cycles; c++) {
      // unpin
      for (size_t i = 0; i < pages; i++) {
        uint64_t* w = (uint64_t*)(p + i * page);
        saved[i] = *w;
        __atomic_store_n(w, canary, __ATOMIC_RELAXED);
      }
      if (madvise(p, len, MADV_FREE) != 0) { perror("madvise"); return 1; }
      // pin
      for (size_t i = 0; i < pages; i++) {
        uint64_t expected = canary;
        if (!__atomic_compare_exchange_n((uint64_t*)(p + i * page), &expected, saved[i], 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) purged++;
      }
    }
    double t1 = now_ns();
    printf("%s%.2f", r ? "," : "", (t1 - t0) / ((double)cycles * pages));
  }
  printf("],\"purged\":%ld}\n", purged);
  return 0;
}
