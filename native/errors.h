// The addon's errors. Messages are built in TypeScript (lib/errors.ts); the
// addon reports only what JavaScript needs to build them:
//  - kernel failures: an Error with `errno` (negative, as Node reports it) and
//    `syscall`; lib/errors.ts kernelError() turns it into `EINVAL: invalid
//    argument, madvise` with code, errno, syscall and a hint;
//  - the checks that protect memory (mapping open, range inside the mapping,
//    argument types it must read): one short coded error, never formatted
//    from the value (the public API validated every argument before).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace pagewise {

// Largest integer a JS number represents exactly (Number.MAX_SAFE_INTEGER).
constexpr uint64_t kMaxSafeInteger = 9007199254740991ULL;

// Error { errno: -err, syscall }. `err` is a positive errno value. Main thread only.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// The same errors built with plain N-API calls that never throw or abort
// (nullptr on failure): for completion callbacks, which may run while the
// environment is shutting down and cannot call into JavaScript.
napi_value RawErrnoError(napi_env env, int err, const char* syscall);
napi_value RawCodedError(napi_env env, const char* code, const char* message);

// An Error with a Node-style `code` and a short fixed message.
Napi::Error CodedError(Napi::Env env, const char* code, const char* message);
// A TypeError with a Node-style `code` (ERR_INVALID_THIS, ERR_ILLEGAL_CONSTRUCTOR).
Napi::Error CodedTypeError(Napi::Env env, const char* code, const char* message);
// TypeError ERR_INVALID_ARG_TYPE / RangeError ERR_OUT_OF_RANGE naming the argument.
Napi::Error InvalidArgType(Napi::Env env, const char* name);
Napi::Error OutOfRange(Napi::Env env, const char* name);
Napi::Error MappingClosed(Napi::Env env);

// Hot-path attributes: the per-call code (bound advise / residency, lib/native.ts)
// is grouped in .text.hot and its failure paths in .text.unlikely, so a call
// touches few code pages (bench/call-overhead.mjs: on a VM whose syscalls flush
// the TLB, every distinct page a call touches costs tens of ns).
#define PAGEWISE_HOT __attribute__((hot))
#define PAGEWISE_COLD __attribute__((cold, noinline))

// Plain N-API versions of the errors below for callbacks without node-addon-api
// (no C++ exception may leave them): each sets the JavaScript exception and
// returns nullptr, what such a callback then returns.
PAGEWISE_COLD napi_value ThrowInvalidArgType(napi_env env, const char* name);
PAGEWISE_COLD napi_value ThrowOutOfRange(napi_env env, const char* name);
PAGEWISE_COLD napi_value ThrowMappingClosed(napi_env env);
PAGEWISE_COLD napi_value ThrowErrno(napi_env env, int err, const char* syscall);
// Rethrows the pending JavaScript exception as a C++ one (for node-addon-api callers of the above).
[[noreturn]] void RethrowPending(napi_env env);

// Plain N-API argument readers behind the ones below: false (exception set)
// for a non-number (ERR_INVALID_ARG_TYPE) or a number that is NaN, fractional,
// negative or above `max` / Number.MAX_SAFE_INTEGER (ERR_OUT_OF_RANGE).
PAGEWISE_HOT bool ReadUint(napi_env env, napi_value value, const char* name, uint64_t* out, uint64_t max = kMaxSafeInteger);
PAGEWISE_HOT bool ReadInt(napi_env env, napi_value value, const char* name, int64_t min, int64_t max, int64_t* out);

// Argument readers: throw (C++ exception -> JS exception) InvalidArgType for
// wrong types and OutOfRange for NaN, fractional, negative or too large numbers.
const Napi::Value Arg(const Napi::CallbackInfo& info, size_t index);
uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max = kMaxSafeInteger);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max);
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name);

// A typed array argument of element type `type`, read with one N-API call
// (napi_get_typedarray_info fails for anything else): its elements and their
// count, which is 0 once its buffer is detached. InvalidArgType otherwise.
// `arraybuffer`, if given, receives the ArrayBuffer behind it.
struct TypedArrayArg {
  void* data;
  size_t length;
  napi_value value;
};
// Plain N-API version: false with the exception set.
bool ReadTypedArray(napi_env env, napi_value value, napi_typedarray_type type, const char* name, TypedArrayArg* out,
                    napi_value* arraybuffer = nullptr);
TypedArrayArg ArgTypedArray(const Napi::CallbackInfo& info, size_t index, napi_typedarray_type type, const char* name,
                            napi_value* arraybuffer = nullptr);

}  // namespace pagewise
