#include "errors.h"

#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace pagewise {

namespace {

std::string Describe(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return std::string("type boolean (") + (value.As<Napi::Boolean>().Value() ? "true" : "false") + ")";
    case napi_number: {
      double d = value.As<Napi::Number>().DoubleValue();
      return "type number (" + Napi::Number::New(value.Env(), d).ToString().Utf8Value() + ")";
    }
    case napi_string: {
      std::string s = value.As<Napi::String>().Utf8Value();
      if (s.size() > 25) s = s.substr(0, 25) + "...";
      return "type string ('" + s + "')";
    }
    case napi_bigint: return "type bigint";
    case napi_symbol: return "type symbol";
    case napi_function: return "function";
    case napi_object: return "an object";
    case napi_external: return "an external";
    default: return "an unknown value";
  }
}

std::string ShowNumber(Napi::Env env, double d) {
  return Napi::Number::New(env, d).ToString().Utf8Value();
}

}  // namespace

namespace {

void ErrnoText(int err, std::string* name, std::string* text) {
  char nbuf[80] = {0};
  char tbuf[160] = {0};
  // libuv gives the exact code/text Node uses; for errnos it does not know it
  // writes "Unknown system error N", where glibc knows better.
  uv_err_name_r(-err, nbuf, sizeof nbuf);
  uv_strerror_r(-err, tbuf, sizeof tbuf);
  if (std::strncmp(nbuf, "Unknown system error", 20) == 0) {
    const char* gname = strerrorname_np(err);
    if (gname != nullptr) {
      *name = gname;
      *text = strerror(err);
    } else {
      *name = "E" + std::to_string(err);
      *text = "unknown error";
    }
    return;
  }
  *name = nbuf;
  *text = tbuf;
}

bool SetString(napi_env env, napi_value object, const char* key, const std::string& value) {
  napi_value v = nullptr;
  return napi_create_string_utf8(env, value.data(), value.size(), &v) == napi_ok &&
         napi_set_named_property(env, object, key, v) == napi_ok;
}

}  // namespace

napi_value RawErrnoError(napi_env env, int err, const char* syscall) {
  if (err < 0) err = -err;
  std::string name, text;
  ErrnoText(err, &name, &text);
  std::string message = name + ": " + text + ", " + syscall;
  napi_value msg = nullptr, error = nullptr, errnoValue = nullptr;
  if (napi_create_string_utf8(env, message.data(), message.size(), &msg) != napi_ok) return nullptr;
  if (napi_create_error(env, nullptr, msg, &error) != napi_ok) return nullptr;
  if (napi_create_int32(env, -err, &errnoValue) != napi_ok) return nullptr;
  if (napi_set_named_property(env, error, "errno", errnoValue) != napi_ok) return nullptr;
  if (!SetString(env, error, "code", name)) return nullptr;
  if (!SetString(env, error, "syscall", syscall)) return nullptr;
  return error;
}

napi_value RawCodedError(napi_env env, const char* code, const std::string& message) {
  napi_value msg = nullptr, error = nullptr;
  if (napi_create_string_utf8(env, message.data(), message.size(), &msg) != napi_ok) return nullptr;
  if (napi_create_error(env, nullptr, msg, &error) != napi_ok) return nullptr;
  if (!SetString(env, error, "code", code)) return nullptr;
  return error;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  napi_value error = RawErrnoError(env, err, syscall);
  if (error == nullptr) return Napi::Error::New(env, "pagewise: cannot create an error object");
  return Napi::Error(env, error);
}

Napi::Error CodedError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error InvalidArgType(Napi::Env env, const char* name, const char* expected, const Napi::Value& actual) {
  Napi::Error e = Napi::TypeError::New(
      env, std::string("The \"") + name + "\" argument must be " + expected + ". Received " + Describe(actual));
  e.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  return e;
}

Napi::Error OutOfRange(Napi::Env env, const char* name, const std::string& range, double actual) {
  Napi::Error e = Napi::RangeError::New(env, std::string("The value of \"") + name +
                                                 "\" is out of range. It must be " + range + ". Received " +
                                                 ShowNumber(env, actual));
  e.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return e;
}

Napi::Error OutOfRange(Napi::Env env, const char* name, const std::string& range, const Napi::Value& actual) {
  if (actual.IsNumber()) return OutOfRange(env, name, range, actual.As<Napi::Number>().DoubleValue());
  Napi::Error e = Napi::RangeError::New(env, std::string("The value of \"") + name +
                                                 "\" is out of range. It must be " + range + ". Received " +
                                                 Describe(actual));
  e.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return e;
}

Napi::Error MappingClosed(Napi::Env env, const char* operation) {
  return CodedError(env, "ERR_MAPPING_CLOSED", std::string("Cannot ") + operation + ": the mapping is closed");
}

const Napi::Value Arg(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}

// napi_get_value_double fails with napi_number_expected for a non-number: one
// N-API call per argument instead of napi_typeof + napi_get_value_double
// (these helpers run on every call; the hot syscalls cost only ~0.4 µs).
static double NumberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Env env = info.Env();
  double d = 0;
  if (index >= info.Length() || napi_get_value_double(env, info[index], &d) != napi_ok) {
    throw InvalidArgType(env, name, "of type number", Arg(info, index));
  }
  return d;
}

uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max) {
  Napi::Env env = info.Env();
  double d = NumberArg(info, index, name);
  if (!std::isfinite(d) || d != std::trunc(d) || d < 0 || d > static_cast<double>(max) ||
      d > static_cast<double>(kMaxSafeInteger))
    // The message is built only on failure: this runs on every call.
    throw OutOfRange(env, name, ">= 0 && <= " + std::to_string(max) + " and an integer", d);
  return static_cast<uint64_t>(d);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max) {
  Napi::Env env = info.Env();
  double d = NumberArg(info, index, name);
  if (!std::isfinite(d) || d != std::trunc(d) || d < static_cast<double>(min) || d > static_cast<double>(max))
    throw OutOfRange(env, name, ">= " + std::to_string(min) + " && <= " + std::to_string(max) + " and an integer", d);
  return static_cast<int64_t>(d);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = Arg(info, index);
  if (!v.IsBoolean()) throw InvalidArgType(info.Env(), name, "of type boolean", v);
  return v.As<Napi::Boolean>().Value();
}

}  // namespace pagewise
