#include "errors.h"

#include <cmath>
#include <string>

namespace pagewise {

napi_value RawErrnoError(napi_env env, int err, const char* syscall) {
  if (err < 0) err = -err;
  napi_value msg = nullptr, error = nullptr, errnoValue = nullptr, syscallValue = nullptr;
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscallValue) != napi_ok) return nullptr;
  if (napi_create_string_utf8(env, "system call failed", NAPI_AUTO_LENGTH, &msg) != napi_ok) return nullptr;
  if (napi_create_error(env, nullptr, msg, &error) != napi_ok) return nullptr;
  if (napi_create_int32(env, -err, &errnoValue) != napi_ok) return nullptr;
  if (napi_set_named_property(env, error, "errno", errnoValue) != napi_ok) return nullptr;
  if (napi_set_named_property(env, error, "syscall", syscallValue) != napi_ok) return nullptr;
  return error;
}

napi_value RawCodedError(napi_env env, const char* code, const char* message) {
  napi_value msg = nullptr, error = nullptr, codeValue = nullptr;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codeValue) != napi_ok) return nullptr;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return nullptr;
  if (napi_create_error(env, codeValue, msg, &error) != napi_ok) return nullptr;
  return error;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  napi_value error = RawErrnoError(env, err, syscall);
  if (error == nullptr) return Napi::Error::New(env, "pagewise: cannot create an error object");
  return Napi::Error(env, error);
}

Napi::Error CodedError(Napi::Env env, const char* code, const char* message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error InvalidArgType(Napi::Env env, const char* name) {
  Napi::Error e = Napi::TypeError::New(env, std::string("The \"") + name + "\" argument has the wrong type");
  e.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  return e;
}

Napi::Error OutOfRange(Napi::Env env, const char* name) {
  Napi::Error e = Napi::RangeError::New(env, std::string("The value of \"") + name + "\" is out of range");
  e.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return e;
}

Napi::Error MappingClosed(Napi::Env env) {
  return CodedError(env, "ERR_MAPPING_CLOSED", "The mapping is closed");
}

const Napi::Value Arg(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}

// napi_get_value_double fails with napi_number_expected for a non-number: one
// N-API call per argument (these readers run on every call).
static double NumberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  double d = 0;
  if (index >= info.Length() || napi_get_value_double(info.Env(), info[index], &d) != napi_ok) {
    throw InvalidArgType(info.Env(), name);
  }
  return d;
}

uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max) {
  double d = NumberArg(info, index, name);
  if (!(d >= 0) || d > static_cast<double>(max) || d > static_cast<double>(kMaxSafeInteger) || d != std::trunc(d)) {
    throw OutOfRange(info.Env(), name);
  }
  return static_cast<uint64_t>(d);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max) {
  double d = NumberArg(info, index, name);
  if (!(d >= static_cast<double>(min)) || d > static_cast<double>(max) || d != std::trunc(d)) {
    throw OutOfRange(info.Env(), name);
  }
  return static_cast<int64_t>(d);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = Arg(info, index);
  if (!v.IsBoolean()) throw InvalidArgType(info.Env(), name);
  return v.As<Napi::Boolean>().Value();
}

TypedArrayArg ArgTypedArray(const Napi::CallbackInfo& info, size_t index, napi_typedarray_type type, const char* name,
                            napi_value* arraybuffer) {
  napi_typedarray_type actual = napi_int8_array;
  TypedArrayArg arg{nullptr, 0, nullptr};
  if (index >= info.Length() ||
      napi_get_typedarray_info(info.Env(), info[index], &actual, &arg.length, &arg.data, arraybuffer, nullptr) != napi_ok ||
      actual != type) {
    throw InvalidArgType(info.Env(), name);
  }
  arg.value = info[index];
  return arg;
}

}  // namespace pagewise
