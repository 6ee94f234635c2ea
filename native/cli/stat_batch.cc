// statFiles(paths, wantCachestat): open + fstat (+ cachestat) of many files in
// one call, for the CLI's `stat` over large trees. `paths` is one string, each
// path ended by a NUL (one string conversion for the whole batch). Per file it costs
// three system calls (descriptors are closed in runs, one close_range each) and no
// JavaScript objects; the same work through fs.openSync / fs.fstatSync /
// fileResidency costs several times that in call overhead.
//
// walkFiles(dir, wantCachestat, maxFiles, unique) does the directory walk too (the
// common case of `pagewise stat DIR` without filters), on a few threads, so that no
// JavaScript object is made per directory entry.
//
// Files are opened O_NONBLOCK: a path swapped for a FIFO after the directory
// walk opens at once (and fstat says it is not a regular file) instead of
// blocking until a writer appears. Only regular files get cachestat.
#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../errors.h"
#include "stat_row.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

namespace pagewise {

namespace {

struct BatchCachestatRange {
  uint64_t off;
  uint64_t len;
};

struct BatchCachestat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

// One row per path: native/cli/stat_row.h.
using namespace cli;  // NOLINT: the row's field names

struct PairHash {
  size_t operator()(const std::pair<uint64_t, uint64_t>& p) const { return std::hash<uint64_t>()(p.first * 0x9e3779b97f4a7c15ULL ^ p.second); }
};

}  // namespace

namespace {

// open + fstat (+ cachestat) of one file into one row: `name` relative to the
// directory `dirfd` (AT_FDCWD: a path as given). Opening relative to the open
// directory spares the kernel the lookup of every path component per file.
// Returns the open descriptor (the caller closes it: see Closer), or -1.
int StatAt(int dirfd, const char* name, double* row, bool wantCachestat) {
  int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    row[kErrno] = errno;
    row[kStage] = kOpen;
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    row[kErrno] = errno;
    row[kStage] = kFstat;
    return fd;
  }
  row[kType] = S_ISREG(st.st_mode) ? kRegular : kOther;
  row[kDev] = static_cast<double>(st.st_dev);
  row[kIno] = static_cast<double>(st.st_ino);
  row[kSize] = static_cast<double>(st.st_size);
  if (!wantCachestat || !S_ISREG(st.st_mode) || st.st_size == 0) return fd;
  BatchCachestatRange range{0, 0};  // len 0: to the end of the file
  BatchCachestat cs{};
  if (syscall(__NR_cachestat, fd, &range, &cs, 0) != 0) {
    row[kErrno] = errno;
    row[kStage] = kCachestat;
    return fd;
  }
  row[kCached] = static_cast<double>(cs.nr_cache);
  row[kDirty] = static_cast<double>(cs.nr_dirty);
  row[kWriteback] = static_cast<double>(cs.nr_writeback);
  row[kEvicted] = static_cast<double>(cs.nr_evicted);
  row[kRecent] = static_cast<double>(cs.nr_recently_evicted);
  return fd;
}

// close(2) of the files of one thread, batched: descriptors come in runs of consecutive
// numbers (open returns the lowest free one), and one close_range(2) ends a run. A number
// joins the run only when it is the next one, so a run holds this thread's descriptors only.
class Closer {
 public:
  ~Closer() { Flush(); }
  void Add(int fd) {
    if (first_ >= 0 && fd == last_ + 1 && last_ - first_ < kMaxRun) {
      last_ = fd;
      return;
    }
    Flush();
    first_ = last_ = fd;
  }
  void Flush() {
    if (first_ < 0) return;
    if (first_ == last_ || !CloseRange(first_, last_)) {
      for (int fd = first_; fd <= last_; fd++) close(fd);
    }
    first_ = last_ = -1;
  }

 private:
  static constexpr int kMaxRun = 63;  // descriptors held open at a time, per thread
  static bool CloseRange(int first, int last) {
#ifdef __NR_close_range
    static std::atomic<bool> missing{false};  // Linux < 5.9: ENOSYS once, then close(2)
    if (missing.load(std::memory_order_relaxed)) return false;
    if (syscall(__NR_close_range, static_cast<unsigned>(first), static_cast<unsigned>(last), 0) == 0) return true;
    if (errno == ENOSYS) missing.store(true, std::memory_order_relaxed);
    return false;
#else
    return false;
#endif
  }
  int first_ = -1;
  int last_ = -1;
};

// What the walk found in one directory: its entries in name order, a row per regular file,
// and the node of each subdirectory (filled by whichever thread reads it).
struct DirNode {
  std::string path;  // as shown: the argument, or parent path + '/' + name
  int error = 0;     // errno of opendir, 0 when it was read
  std::string names;  // entry names, each followed by a NUL
  struct Entry {
    uint32_t name;     // offset in names
    uint32_t length;   // of the name
    DirNode* child;    // a subdirectory, or nullptr for a regular file
  };
  std::vector<Entry> entries;
  std::vector<double> rows;  // kFields per regular file, in entry order
};

// A walk over a few threads (the kernel's work per file is most of the time, and it
// parallelises): directories wait in a stack; a thread takes one, reads and sorts its
// entries, stats its regular files, and pushes its subdirectories. The results are put in
// depth-first order afterwards, on the calling thread. No N-API call off the main thread.
class Walk {
 public:
  Walk(bool wantCachestat, size_t maxFiles) : wantCachestat_(wantCachestat), maxFiles_(maxFiles) { pthread_cond_init(&idle_, nullptr); }
  ~Walk() { pthread_cond_destroy(&idle_); }
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;

  DirNode* Run(const std::string& dir, unsigned threads) {
    DirNode* root = NewNode(dir);
    pending_.push_back(root);
    std::vector<std::thread> helpers;
    for (unsigned i = 1; i < threads; i++) {
      try {
        helpers.emplace_back([this] { Work(); });
      } catch (...) {
        break;  // no thread: fewer threads do the walk
      }
    }
    Work();
    for (auto& t : helpers) t.join();
    return root;
  }

  bool tooMany() const { return tooMany_.load(); }
  bool failed() const { return failed_; }  // out of memory: the walk stopped
  size_t directories() const { return nodes_.size(); }
  size_t found() const { return files_.load(); }
  // Bytes of every path found, NULs included.
  size_t pathBytes() const {
    size_t bytes = 0;
    for (const auto& n : nodes_) bytes += n->names.size() + n->entries.size() * (n->path.size() + 1);
    return bytes;
  }

 private:
  DirNode* NewNode(std::string path) {
    auto node = std::make_unique<DirNode>();
    node->path = std::move(path);
    nodes_.push_back(std::move(node));  // under mu_ (or before the threads start)
    return nodes_.back().get();
  }

  void Work() {
    Closer closer;
    std::vector<std::pair<std::string, size_t>> subdirs;  // path, entry index
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      while (pending_.empty() && busy_ > 0) pthread_cond_wait(&idle_, mu_.native_handle());
      if (pending_.empty() || stop_) break;
      DirNode* node = pending_.back();
      pending_.pop_back();
      busy_++;
      lock.unlock();
      subdirs.clear();
      bool ok = true;
      try {
        ReadDir(*node, closer, subdirs);
      } catch (...) {
        ok = false;  // std::bad_alloc: stop every thread, the caller throws
      }
      closer.Flush();
      lock.lock();
      busy_--;
      if (!ok) failed_ = stop_ = true;
      if (tooMany_.load()) stop_ = true;
      if (!stop_) {
        try {
          for (auto& [path, entry] : subdirs) {
            DirNode* child = NewNode(std::move(path));
            node->entries[entry].child = child;
            pending_.push_back(child);
          }
        } catch (...) {
          failed_ = stop_ = true;
        }
      }
      if (stop_) pending_.clear();
      pthread_cond_broadcast(&idle_);
    }
  }

  // Entries (symbolic links and special files are skipped; DT_UNKNOWN is asked with
  // fstatat), sorted by name bytes, and the regular files stat'ed while the directory is open.
  void ReadDir(DirNode& node, Closer& closer, std::vector<std::pair<std::string, size_t>>& subdirs) {
    DIR* d = opendir(node.path.c_str());
    if (d == nullptr) {
      node.error = errno;
      return;
    }
    struct Entry {
      uint32_t name, length;
      bool dir;
    };
    std::vector<Entry> found;
    size_t regular = 0;
    while (dirent* e = readdir(d)) {
      const char* name = e->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      unsigned char type = e->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0) type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
      }
      if (type != DT_DIR && type != DT_REG) continue;
      size_t length = std::strlen(name);
      found.push_back({static_cast<uint32_t>(node.names.size()), static_cast<uint32_t>(length), type == DT_DIR});
      node.names.append(name, length + 1);
      regular += type == DT_REG;
    }
    if (regular > 0 && files_.fetch_add(regular) + regular > maxFiles_) {
      closedir(d);
      tooMany_ = true;
      return;
    }
    const char* names = node.names.data();
    // strcmp compares as unsigned bytes: for UTF-8 names, code point order (lib/cli/files.ts sorts the same way).
    std::sort(found.begin(), found.end(), [names](const Entry& a, const Entry& b) { return std::strcmp(names + a.name, names + b.name) < 0; });
    node.entries.reserve(found.size());
    node.rows.assign(regular * kFields, 0.0);
    const std::string prefix = !node.path.empty() && node.path.back() == '/' ? node.path : node.path + '/';
    double* row = node.rows.data();
    for (const Entry& e : found) {
      if (e.dir) {
        // Its node is made under the lock, once this directory is done.
        subdirs.emplace_back(prefix + (names + e.name), node.entries.size());
        node.entries.push_back({e.name, e.length, nullptr});
      } else {
        int fd = StatAt(dirfd(d), names + e.name, row, wantCachestat_);
        if (fd >= 0) closer.Add(fd);
        row += kFields;
        node.entries.push_back({e.name, e.length, nullptr});
      }
    }
    closedir(d);
  }

  const bool wantCachestat_;
  const size_t maxFiles_;
  std::atomic<size_t> files_{0};
  std::atomic<bool> tooMany_{false};
  std::mutex mu_;
  // pthread's own condition variable: std::condition_variable::wait would need libstdc++
  // 3.4.30 (GCC 12), newer than the prebuild may ask for (native/compat.cc).
  pthread_cond_t idle_;
  std::vector<DirNode*> pending_;
  std::vector<std::unique_ptr<DirNode>> nodes_;
  unsigned busy_ = 0;
  bool stop_ = false;
  bool failed_ = false;
};

// The walk's results in depth-first order (a directory's files and subdirectories by name):
// paths NUL-terminated, rows into `out`, "path\0errno\0" per unreadable directory. With
// `unique`, a file met before (device + inode: hard links) is left out.
struct Collect {
  bool unique = false;
  std::string files;
  std::string errors;
  double* out = nullptr;
  size_t count = 0;
  size_t unusual = 0;  // rows with an error, or not of a regular file (any longer)
  std::unordered_set<std::pair<uint64_t, uint64_t>, PairHash> seen;

  void Node(const DirNode& node) {
    if (node.error != 0) {
      errors += node.path;
      errors += '\0';
      errors += std::to_string(node.error);
      errors += '\0';
      return;
    }
    const bool slash = !node.path.empty() && node.path.back() == '/';
    const double* row = node.rows.data();
    for (const auto& e : node.entries) {
      if (e.child != nullptr) {
        Node(*e.child);
        continue;
      }
      const double* r = row;
      row += kFields;
      // As lib/cli/files.ts: files that could be opened and stat'ed (a cachestat error is no reason to show one twice).
      const bool known = (r[kErrno] == 0 || r[kStage] == kCachestat) && r[kType] == kRegular;
      if (unique && known && !seen.emplace(static_cast<uint64_t>(r[kDev]), static_cast<uint64_t>(r[kIno])).second) continue;
      files += node.path;
      if (!slash) files += '/';
      files.append(node.names, e.name, e.length);
      files += '\0';
      std::memcpy(out + count * kFields, r, kFields * sizeof(double));
      unusual += r[kErrno] != 0 || r[kType] != kRegular;
      count++;
    }
  }
};

// A JavaScript string of UTF-8 bytes: copied as Latin-1 when every byte is ASCII (the
// same string, without the decoding pass).
Napi::String OneString(Napi::Env env, const std::string& bytes) {
  bool ascii = true;
  for (unsigned char c : bytes) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  napi_value value;
  napi_status status = ascii ? napi_create_string_latin1(env, bytes.data(), bytes.size(), &value)
                             : napi_create_string_utf8(env, bytes.data(), bytes.size(), &value);
  NAPI_THROW_IF_FAILED(env, status, Napi::String());
  return Napi::String(env, value);
}

// Files per call at most (statFiles, walkFiles): the rows (88 bytes a file) stay under
// 100 MB, far below what an ArrayBuffer may hold. lib/cli/stat/native.ts sends 4,096 at a time;
// a larger tree is walked again in JavaScript, which stats it in such chunks.
constexpr size_t kMaxBatchFiles = size_t{1} << 20;

}  // namespace

Napi::Value StatFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "paths must be a string");
  std::string joined = info[0].As<Napi::String>().Utf8Value();
  bool wantCachestat = info[1].ToBoolean().Value();
  size_t n = 0;
  for (char c : joined) n += c == '\0';
  if (n > kMaxBatchFiles) throw OutOfRange(env, "paths");
  Napi::Float64Array rows = Napi::Float64Array::New(env, n * kFields);
  double* out = rows.Data();
  size_t start = 0;
  Closer closer;
  for (size_t i = 0; i < n; i++) {
    const char* path = joined.c_str() + start;
    start = joined.find('\0', start) + 1;
    int fd = StatAt(AT_FDCWD, path, out + i * kFields, wantCachestat);
    if (fd >= 0) closer.Add(fd);
  }
  return rows;
}

// Threads of a walk: the kernel's part of open + fstat + cachestat + close runs in parallel
// on the cores there are, up to kMaxWalkThreads.
constexpr unsigned kMaxWalkThreads = 4;

// walkFiles(dir, wantCachestat, maxFiles?, unique?): { files, rows, directories, errors, unusual }:
// the regular files under dir (NUL-terminated paths, dir + '/' + relative path) in depth-first
// name order, one StatAt row each, the number of directories read, "path\0errno\0" for each
// that could not be read, and how many rows hold an error or a file no longer regular. More
// than maxFiles (default and upper bound kMaxBatchFiles) files: RangeError ERR_OUT_OF_RANGE.
// `unique`: each file once (device + inode), at its first path.
Napi::Value WalkFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "dir must be a string");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  bool wantCachestat = info[1].ToBoolean().Value();
  size_t maxFiles = Arg(info, 2).IsUndefined() ? kMaxBatchFiles : std::min<size_t>(ArgUint(info, 2, "maxFiles"), kMaxBatchFiles);
  Collect collect;
  collect.unique = info[3].ToBoolean().Value();
  Walk walk(wantCachestat, maxFiles);
  unsigned threads = std::max(1u, std::min(std::thread::hardware_concurrency(), kMaxWalkThreads));
  DirNode* root = walk.Run(dir, threads);
  if (walk.failed()) throw ErrnoError(env, ENOMEM, "opendir");
  if (walk.tooMany()) throw OutOfRange(env, "maxFiles");
  // Rows go straight into the ArrayBuffer (sized for every file found; the view is as long as
  // the files kept), paths into one string of the size they need.
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, std::max<size_t>(walk.found(), 1) * kFields * sizeof(double));
  collect.out = static_cast<double*>(buffer.Data());
  collect.files.reserve(walk.pathBytes());
  collect.Node(*root);
  Napi::Float64Array rows = Napi::Float64Array::New(env, collect.count * kFields, buffer, 0);
  Napi::Object result = Napi::Object::New(env);
  result.Set("files", OneString(env, collect.files));
  result.Set("rows", rows);
  result.Set("directories", Napi::Number::New(env, static_cast<double>(walk.directories())));
  result.Set("errors", Napi::String::New(env, collect.errors));
  result.Set("unusual", Napi::Number::New(env, static_cast<double>(collect.unusual)));
  return result;
}

}  // namespace pagewise
