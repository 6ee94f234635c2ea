#include "errors.h"

#include <cstdio>
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

// Node throws ERR_INVALID_THIS and ERR_ILLEGAL_CONSTRUCTOR as TypeErrors.
Napi::Error CodedTypeError(Napi::Env env, const char* code, const char* message) {
  Napi::Error e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

namespace {

// "The \"<name>\" argument has the wrong type" and friends, without allocating.
constexpr size_t kMessageSize = 96;
void ArgTypeMessage(char* out, const char* name) { snprintf(out, kMessageSize, "The \"%s\" argument has the wrong type", name); }
void OutOfRangeMessage(char* out, const char* name) { snprintf(out, kMessageSize, "The value of \"%s\" is out of range", name); }

}  // namespace

Napi::Error InvalidArgType(Napi::Env env, const char* name) {
  char message[kMessageSize];
  ArgTypeMessage(message, name);
  Napi::Error e = Napi::TypeError::New(env, message);
  e.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  return e;
}

Napi::Error OutOfRange(Napi::Env env, const char* name) {
  char message[kMessageSize];
  OutOfRangeMessage(message, name);
  Napi::Error e = Napi::RangeError::New(env, message);
  e.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return e;
}

Napi::Error MappingClosed(Napi::Env env) {
  return CodedError(env, "ERR_MAPPING_CLOSED", "The mapping is closed");
}

napi_value ThrowInvalidArgType(napi_env env, const char* name) {
  char message[kMessageSize];
  ArgTypeMessage(message, name);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return nullptr;
}

napi_value ThrowOutOfRange(napi_env env, const char* name) {
  char message[kMessageSize];
  OutOfRangeMessage(message, name);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return nullptr;
}

napi_value ThrowMappingClosed(napi_env env) {
  napi_throw_error(env, "ERR_MAPPING_CLOSED", "The mapping is closed");
  return nullptr;
}

napi_value ThrowErrno(napi_env env, int err, const char* syscall) {
  napi_value error = RawErrnoError(env, err, syscall);
  if (error != nullptr) napi_throw(env, error);
  else napi_throw_error(env, nullptr, "pagewise: cannot create an error object");
  return nullptr;
}

void RethrowPending(napi_env env) {
  napi_value error = nullptr;
  if (napi_get_and_clear_last_exception(env, &error) != napi_ok || error == nullptr) throw Napi::Error::New(env);
  throw Napi::Error(env, error);
}

const Napi::Value Arg(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}

bool ReadUint(napi_env env, napi_value value, const char* name, uint64_t* out, uint64_t max) {
  double d = 0;
  // napi_number_expected for a non-number: one N-API call per argument.
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    ThrowInvalidArgType(env, name);
    return false;
  }
  // In range first (NaN fails), so that the conversion is defined; then integral.
  if (!(d >= 0) || d > static_cast<double>(max) || d > static_cast<double>(kMaxSafeInteger) ||
      static_cast<double>(static_cast<uint64_t>(d)) != d) {
    ThrowOutOfRange(env, name);
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ReadInt(napi_env env, napi_value value, const char* name, int64_t min, int64_t max, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    ThrowInvalidArgType(env, name);
    return false;
  }
  if (!(d >= static_cast<double>(min)) || d > static_cast<double>(max) || static_cast<double>(static_cast<int64_t>(d)) != d) {
    ThrowOutOfRange(env, name);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t max) {
  uint64_t value = 0;
  if (!ReadUint(info.Env(), Arg(info, index), name, &value, max)) RethrowPending(info.Env());
  return value;
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max) {
  int64_t value = 0;
  if (!ReadInt(info.Env(), Arg(info, index), name, min, max, &value)) RethrowPending(info.Env());
  return value;
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = Arg(info, index);
  if (!v.IsBoolean()) throw InvalidArgType(info.Env(), name);
  return v.As<Napi::Boolean>().Value();
}

bool ReadTypedArray(napi_env env, napi_value value, napi_typedarray_type type, const char* name, TypedArrayArg* out,
                    napi_value* arraybuffer) {
  napi_typedarray_type actual = napi_int8_array;
  *out = TypedArrayArg{nullptr, 0, value};
  if (napi_get_typedarray_info(env, value, &actual, &out->length, &out->data, arraybuffer, nullptr) != napi_ok ||
      actual != type) {
    ThrowInvalidArgType(env, name);
    return false;
  }
  return true;
}

TypedArrayArg ArgTypedArray(const Napi::CallbackInfo& info, size_t index, napi_typedarray_type type, const char* name,
                            napi_value* arraybuffer) {
  TypedArrayArg arg{nullptr, 0, nullptr};
  if (!ReadTypedArray(info.Env(), Arg(info, index), type, name, &arg, arraybuffer)) RethrowPending(info.Env());
  return arg;
}

}  // namespace pagewise
