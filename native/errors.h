// Error helpers shared by every syscall family: errno errors shaped like
// Node's fs errors, Node-style coded argument errors, and argument readers
// that never crash on bad input.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace pagewise {

// Largest integer a JS number represents exactly (Number.MAX_SAFE_INTEGER).
constexpr uint64_t kMaxSafeInteger = 9007199254740991ULL;

// `EINVAL: invalid argument, madvise` with code / errno (negative) / syscall.
// `err` is a positive errno value. Main thread only.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// The same errors built with plain N-API calls that never throw or abort
// (nullptr on failure): for completion callbacks, which may run while the
// environment is shutting down and cannot call into JavaScript.
napi_value RawErrnoError(napi_env env, int err, const char* syscall);
napi_value RawCodedError(napi_env env, const char* code, const std::string& message);

// Errors carrying a Node-style `code` property.
Napi::Error CodedError(Napi::Env env, const std::string& code, const std::string& message);
Napi::Error InvalidArgType(Napi::Env env, const char* name, const char* expected, const Napi::Value& actual);
Napi::Error OutOfRange(Napi::Env env, const char* name, const std::string& range, const Napi::Value& actual);
Napi::Error OutOfRange(Napi::Env env, const char* name, const std::string& range, double actual);
Napi::Error MappingClosed(Napi::Env env, const char* operation);

// Argument readers: throw (C++ exception -> JS exception) TypeError
// ERR_INVALID_ARG_TYPE for wrong types and RangeError ERR_OUT_OF_RANGE for
// NaN, fractional, negative or too large numbers.
const Napi::Value Arg(const Napi::CallbackInfo& info, size_t index);
uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max = kMaxSafeInteger);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max);
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name);

}  // namespace pagewise
