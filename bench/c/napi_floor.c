// Q2 floor: the cheapest N-API call that makes the same syscall as the
// one-page advise / residency calls. No arguments, no receiver, a fixed touched
// page, return value nullptr (undefined): what any N-API addon pays at least.
// madviseArgs / mincoreArgs add what the addon's calls must do on top: read
// their number arguments (and return the residency bits), without any check.
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

// The same madvise with the arguments the addon's advise reads: (offset, length,
// advice) through napi_get_cb_info and napi_get_value_double, no checks.
static napi_value MadviseArgs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  double a[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  for (int i = 0; i < 3; i++) napi_get_value_double(env, argv[i], &a[i]);
  if (madvise(region + (size_t)a[0], (size_t)a[1], (int)a[2]) != 0) napi_throw_error(env, NULL, "madvise failed");
  return NULL;
}

// The same mincore with the arguments and result of the addon's residencyBits:
// (offset, length) read as above, the page's bit returned as a number.
static napi_value MincoreArgs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double a[2];
  napi_value result = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  for (int i = 0; i < 2; i++) napi_get_value_double(env, argv[i], &a[i]);
  if (mincore(region + (size_t)a[0], (size_t)a[1], vec) != 0) napi_throw_error(env, NULL, "mincore failed");
  napi_create_uint32(env, vec[0] & 1, &result);
  return result;
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
      {"madviseArgs", NULL, MadviseArgs, NULL, NULL, NULL, napi_default, NULL},
      {"mincoreArgs", NULL, MincoreArgs, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 5, d);
  return exports;
}
