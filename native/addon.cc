// Module init: exports pageSize, maxWindow, supports, map, fileResidency,
// fadvise, accessMode, residencyScratch, PressureWatch, supportsAnonName, setAnonName.
// One AddonData per environment (main thread, workers).
#include <napi.h>

#include <memory>

#include "mapping.h"

namespace pagewise {

Napi::Value Supports(const Napi::CallbackInfo& info);       // madvise.cc
Napi::Value FileResidency(const Napi::CallbackInfo& info);  // mincore.cc
Napi::Value Fadvise(const Napi::CallbackInfo& info);        // fadvise.cc
Napi::Value AccessMode(const Napi::CallbackInfo& info);     // fadvise.cc
void InitPressure(Napi::Env env, Napi::Object exports);     // pressure.cc

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto data = std::make_unique<AddonData>();
  AddonData* raw = data.get();
  env.SetInstanceData<AddonData>(data.release());  // the env owns it (deleted at teardown)
  InitMapping(env, exports, raw);
  constexpr size_t kScratch = 4096;  // residency vectors of up to 16 MiB without an allocation
  Napi::ArrayBuffer scratch = Napi::ArrayBuffer::New(env, kScratch);
  raw->scratchRef = Napi::Persistent(scratch);
  raw->scratch = static_cast<unsigned char*>(scratch.Data());
  raw->scratchLength = kScratch;
  exports.Set("residencyScratch", Napi::Uint8Array::New(env, kScratch, scratch, 0));
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(PageSize())));
  exports.Set("maxWindow", Napi::Number::New(env, static_cast<double>(kMaxWindow)));
  exports.Set("supports", Napi::Function::New(env, Supports, "supports"));
  exports.Set("fileResidency", Napi::Function::New(env, FileResidency, "fileResidency"));
  exports.Set("fadvise", Napi::Function::New(env, Fadvise, "fadvise"));
  exports.Set("accessMode", Napi::Function::New(env, AccessMode, "accessMode"));
  InitPressure(env, exports);
  return exports;
}

}  // namespace

}  // namespace pagewise

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return pagewise::Init(env, exports); }

NODE_API_MODULE(pagewise, InitModule)
