// Module init: exports map and the Mapping functions (mapping.cc), pageSize,
// maxViewLength, supports, fileResidency, fadvise, accessMode, createMemfd, seals,
// PressureWatch (pressure.cc), supportsAnonName, setAnonName (prctl.cc) — the
// Backend's calls, lib/native.ts — and `cli` (the command line's stat, native/cli/).
// One AddonData per environment (main thread, workers).
#include <napi.h>

#include <memory>

#include "mapping.h"

namespace pagewise {

Napi::Value Supports(const Napi::CallbackInfo& info);       // madvise.cc
Napi::Value FileResidency(const Napi::CallbackInfo& info);  // mincore.cc
Napi::Value Fadvise(const Napi::CallbackInfo& info);        // fadvise.cc
Napi::Value AccessMode(const Napi::CallbackInfo& info);     // fadvise.cc
Napi::Value CreateMemfd(const Napi::CallbackInfo& info);    // memfd.cc
Napi::Value Seals(const Napi::CallbackInfo& info);          // memfd.cc
void InitPressure(Napi::Env env, Napi::Object exports);     // pressure.cc
void InitNaming(Napi::Env env, Napi::Object exports);       // prctl.cc
void InitCli(Napi::Env env, Napi::Object exports);          // cli/cli.cc

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto data = std::make_unique<AddonData>();
  AddonData* raw = data.get();
  env.SetInstanceData<AddonData>(data.release());  // the env owns it (deleted at teardown)
  InitMapping(env, exports, raw);
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(PageSize())));
  raw->maxViewLength = ProbeMaxViewLength(env);
  exports.Set("maxViewLength", Napi::Number::New(env, static_cast<double>(raw->maxViewLength)));
  exports.Set("supports", Napi::Function::New(env, Supports, "supports"));
  exports.Set("fileResidency", Napi::Function::New(env, FileResidency, "fileResidency"));
  exports.Set("fadvise", Napi::Function::New(env, Fadvise, "fadvise"));
  exports.Set("accessMode", Napi::Function::New(env, AccessMode, "accessMode"));
  exports.Set("createMemfd", Napi::Function::New(env, CreateMemfd, "createMemfd"));
  exports.Set("seals", Napi::Function::New(env, Seals, "seals"));
  InitPressure(env, exports);
  InitNaming(env, exports);
  InitCli(env, exports);
  return exports;
}

}  // namespace

}  // namespace pagewise

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return pagewise::Init(env, exports); }

NODE_API_MODULE(pagewise, InitModule)
