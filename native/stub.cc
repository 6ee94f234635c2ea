// Non-Linux builds: an empty module. lib/native.ts refuses to load the native
// backend on other platforms before it gets here.
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unsupported", Napi::Boolean::New(env, true));
  return exports;
}

NODE_API_MODULE(pagewise, Init)
