// The row `pagewise stat` gets per file from statFiles / walkFiles (native/cli/stat_batch.cc):
// doubles, one per field, in this order. The layout is written only here: the addon exports
// the names in order (cli.rowFields) and lib/cli/stat/native.ts finds each field by name.
#pragma once

namespace pagewise {
namespace cli {

enum Field { kErrno, kStage, kType, kDev, kIno, kSize, kCached, kDirty, kWriteback, kEvicted, kRecent, kFields };
// The names JavaScript reads the fields by, in Field order.
constexpr const char* kFieldNames[kFields] = {"errno", "stage", "regular", "dev", "ino", "size", "cached", "dirty", "writeback", "evicted", "recentlyEvicted"};
// kStage: the system call that failed (kErrno != 0); the names of kStageNames.
enum Stage { kOk = 0, kOpen = 1, kFstat = 2, kCachestat = 3, kStages };
constexpr const char* kStageNames[kStages] = {"", "open", "fstat", "cachestat"};
// kType.
enum Type { kOther = 0, kRegular = 1 };

}  // namespace cli
}  // namespace pagewise
