// Q2 floor: the cheapest N-API call that makes the same syscall as the
// one-page advise / residency calls. No arguments, no receiver, a fixed touched
// page, return value nullptr (undefined): what any N-API addon pays at least.
// Built by bench/call-overhead.mjs as a Node addon (cc -shared, node's headers).
#define _GNU_SOURCE
#include <node_api.h>
#include <string.h>
#include <sys/mman.h>

static unsigned char* region;
static unsigned char vec[1];

static napi_value Madvise(napi_env env, napi_callback_info info) {
  (void)info;
  if (madvise(region, 4096, MADV_WILLNEED) != 0) napi_throw_error(env, NULL, "madvise failed");
  return NULL;
}

static napi_value Mincore(napi_env env, napi_callback_info info) {
  (void)info;
  if (mincore(region, 4096, vec) != 0) napi_throw_error(env, NULL, "mincore failed");
  return NULL;
}

static napi_value Empty(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  return NULL;
}

NAPI_MODULE_INIT() {
  region = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return NULL;
  memset(region, 1, 1 << 20);
  napi_property_descriptor d[] = {
      {"madvise", NULL, Madvise, NULL, NULL, NULL, napi_default, NULL},
      {"mincore", NULL, Mincore, NULL, NULL, NULL, napi_default, NULL},
      {"empty", NULL, Empty, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, d);
  return exports;
}
