// Q2 baseline: a tight loop of one-page madvise / mincore calls.
// usage: call_overhead <madvise|mincore> <advice> <calls> <reps>
// One page of a touched 1 MiB private anonymous mapping; every call's return
// value is checked (as the addon does). Prints {"ns_per_call":[...]}, one per rep.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

int main(int argc, char** argv) {
  if (argc != 5) { fprintf(stderr, "usage: %s madvise|mincore advice calls reps\n", argv[0]); return 2; }
  int is_madvise = strcmp(argv[1], "madvise") == 0;
  int advice = atoi(argv[2]);
  long calls = atol(argv[3]);
  int reps = atoi(argv[4]);
  size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 1 << 20;
  unsigned char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  memset(p, 1, len);
  unsigned char vec[1];
  long resident = 0;
  printf("{\"ns_per_call\":[");
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
      if (is_madvise) {
        if (madvise(p, page, advice) != 0) { perror("madvise"); return 1; }
      } else {
        if (mincore(p, page, vec) != 0) { perror("mincore"); return 1; }
        resident += vec[0] & 1;
      }
    }
    double t1 = now_ns();
    printf("%s%.2f", r ? "," : "", (t1 - t0) / calls);
  }
  printf("],\"resident\":%ld}\n", resident);
  return 0;
}
