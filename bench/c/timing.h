// Monotonic clock readings shared by the C baselines.
#pragma once
#include <time.h>

static inline double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline double now_ms(void) { return now_ns() / 1e6; }
