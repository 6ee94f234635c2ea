// Q3 context: the floor for file residency - open, mmap, mincore, munmap in C.
// usage: mincore_file <file> <reps>   prints {"ms":[...],"cached":N,"total":N}
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

int main(int argc, char** argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s file reps\n", argv[0]); return 2; }
  int reps = atoi(argv[2]);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  long cached = 0, total = 0;
  printf("{\"ms\":[");
  for (int r = 0; r < reps; r++) {
    double t0 = now_ms();
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    struct stat st;
    fstat(fd, &st);
    size_t len = (size_t)st.st_size;
    total = (long)((len + page - 1) / page);
    void* p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned char* vec = malloc((size_t)total);
    if (mincore(p, len, vec) != 0) { perror("mincore"); return 1; }
    cached = 0;
    for (long i = 0; i < total; i++) cached += vec[i] & 1;
    free(vec);
    munmap(p, len);
    close(fd);
    double t1 = now_ms();
    printf("%s%.4f", r ? "," : "", t1 - t0);
  }
  printf("],\"cached\":%ld,\"total\":%ld}\n", cached, total);
  return 0;
}
