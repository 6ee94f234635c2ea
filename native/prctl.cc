// Names for anonymous memory: prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME) (Linux 5.17+, kernels
// built with CONFIG_ANON_VMA_NAME), shown as [anon:<name>] in /proc/<pid>/maps. See prctl(2).
#include <sys/prctl.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "errors.h"

// Debian 12's headers predate PR_SET_VMA (values from linux/prctl.h).
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

namespace pagewise {

// addon.supportsAnonName(): prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME) over an empty
// range succeeds exactly when the kernel has CONFIG_ANON_VMA_NAME.
Napi::Value SupportsAnonName(const Napi::CallbackInfo& info) {
  int r = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, 0UL, 0UL, 0UL);
  return Napi::Boolean::New(info.Env(), r == 0);
}

// addon.setAnonName(address: bigint, length, name): names the anonymous VMAs of the range
// ([anon:<name>] in /proc/self/maps). Only labels memory; throws errno errors (prctl).
Napi::Value SetAnonName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Arg(info, 0).IsBigInt()) throw InvalidArgType(env, "address");
  bool lossless = false;
  uint64_t address = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw OutOfRange(env, "address");
  uint64_t length = ArgUint(info, 1, "length");
  if (!Arg(info, 2).IsString()) throw InvalidArgType(env, "name");
  std::string name = info[2].As<Napi::String>().Utf8Value();
  if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, static_cast<unsigned long>(address), static_cast<unsigned long>(length),
            reinterpret_cast<unsigned long>(name.c_str())) != 0) {
    throw ErrnoError(env, errno, "prctl");
  }
  return env.Undefined();
}

void InitNaming(Napi::Env env, Napi::Object exports) {
  exports.Set("supportsAnonName", Napi::Function::New(env, SupportsAnonName, "supportsAnonName"));
  exports.Set("setAnonName", Napi::Function::New(env, SetAnonName, "setAnonName"));
}

}  // namespace pagewise
