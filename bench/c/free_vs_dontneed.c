// Q1 baseline: the free-then-reuse cycle in C.
// usage: free_vs_dontneed <MiB> <rounds> <free|dontneed>
// Maps <MiB> of private anonymous memory, touches every page once, then per
// round: madvise(whole range, advice) and write one byte to every page again.
// Prints {"samples_ms":[...]} - one sample per round (madvise + touch), the
// exact work the JavaScript side times.
#define _GNU_SOURCE
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
  if (argc != 4) { fprintf(stderr, "usage: %s MiB rounds free|dontneed\n", argv[0]); return 2; }
  size_t len = (size_t)atol(argv[1]) << 20;
  int rounds = atoi(argv[2]);
  int advice = strcmp(argv[3], "free") == 0 ? MADV_FREE : MADV_DONTNEED;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  volatile unsigned char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  for (size_t i = 0; i < len; i += page) p[i] = 1;
  printf("{\"samples_ms\":[");
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ms();
    if (madvise((void*)p, len, advice) != 0) { perror("madvise"); return 1; }
    for (size_t i = 0; i < len; i += page) p[i] = 1;
    double t1 = now_ms();
    printf("%s%.4f", r ? "," : "", t1 - t0);
  }
  printf("]}\n");
  munmap((void*)p, len);
  return 0;
}
