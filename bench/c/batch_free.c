// Q5 batch path: make N separate runs of `pages` pages lazily free, either with
// one madvise(MADV_FREE) per run or with one process_madvise(pidfd, iov[N],
// MADV_FREE) on the calling process. Each round re-dirties every page first
// (the same work for both), and only the advise part is timed.
// usage: batch_free <runs> <pages per run> <rounds> [advice, default MADV_FREE (8)]
// Prints {"madvise_ns":[...],"process_madvise_ns":[...],"errno":0} (per batch, one per round).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) { fprintf(stderr, "usage: %s runs pages rounds [advice]\n", argv[0]); return 2; }
  int runs = atoi(argv[1]), pages = atoi(argv[2]), rounds = atoi(argv[3]);
  int advice = argc == 5 ? atoi(argv[4]) : MADV_FREE;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  // Runs separated by one pinned page, so they cannot merge into one range.
  size_t stride = (size_t)(pages + 1) * page, len = stride * runs;
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  struct iovec* iov = calloc(runs, sizeof *iov);
  for (int r = 0; r < runs; r++) { iov[r].iov_base = p + r * stride; iov[r].iov_len = (size_t)pages * page; }
  int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  int err = 0;
  printf("{\"madvise_ns\":[");
  for (int k = 0; k < 2; k++) {
    if (k) printf("],\"process_madvise_ns\":[");
    for (int round = 0; round < rounds; round++) {
      for (size_t i = 0; i < len; i += page) p[i] = (char)round;
      double t0 = now_ns();
      if (k == 0) {
        for (int r = 0; r < runs; r++) if (madvise(iov[r].iov_base, iov[r].iov_len, advice) != 0) err = errno;
      } else if (syscall(SYS_process_madvise, pidfd, iov, (size_t)runs, advice, 0) < 0) {
        err = errno;
      }
      printf("%s%.0f", round ? "," : "", now_ns() - t0);
    }
  }
  printf("],\"errno\":%d}\n", err);
  return 0;
}
