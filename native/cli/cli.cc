// The addon's `cli` export: what the `pagewise` command line's stat needs and the library
// does not (lib/cli/stat/native.ts reads it; lib/backend.ts never sees it).
//   cli.statFiles, cli.walkFiles   open + fstat (+ cachestat) of many files (stat_batch.cc)
//   cli.rowFields, cli.stages      the layout of their rows (stat_row.h)
//   cli.statText, cli.statSums     the table / JSON entries and sums of such rows (stat_text.cc)
#include <napi.h>

#include "stat_row.h"

namespace pagewise {

Napi::Value StatFiles(const Napi::CallbackInfo& info);  // stat_batch.cc
Napi::Value WalkFiles(const Napi::CallbackInfo& info);  // stat_batch.cc
Napi::Value StatText(const Napi::CallbackInfo& info);   // stat_text.cc
Napi::Value StatSums(const Napi::CallbackInfo& info);   // stat_text.cc

void InitCli(Napi::Env env, Napi::Object exports) {
  Napi::Object cli = Napi::Object::New(env);
  cli.Set("statFiles", Napi::Function::New(env, StatFiles, "statFiles"));
  cli.Set("walkFiles", Napi::Function::New(env, WalkFiles, "walkFiles"));
  Napi::Array fields = Napi::Array::New(env, cli::kFields);
  for (uint32_t i = 0; i < cli::kFields; i++) fields.Set(i, Napi::String::New(env, cli::kFieldNames[i]));
  cli.Set("rowFields", fields);
  Napi::Array stages = Napi::Array::New(env, cli::kStages);
  for (uint32_t i = 0; i < cli::kStages; i++) stages.Set(i, Napi::String::New(env, cli::kStageNames[i]));
  cli.Set("stages", stages);
  cli.Set("statText", Napi::Function::New(env, StatText, "statText"));
  cli.Set("statSums", Napi::Function::New(env, StatSums, "statSums"));
  exports.Set("cli", cli);
}

}  // namespace pagewise
