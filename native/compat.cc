// Compatibility for the prebuild: it must load where Node 20 runs, i.e. glibc
// 2.28 (RHEL 8) and RHEL 8's libstdc++ (GCC 8: GLIBCXX_3.4.25), although it is
// compiled on a newer distribution. binding.gyp points the glibc 2.32/2.33
// symbols that the sources and libstdc++'s headers use at the private
// definitions below. (Linking libstdc++ statically does not help: the static
// libstdc++/libgcc of a new distribution need glibc 2.34-2.36 themselves.)
// test/prebuild-glibc.test.ts reads the addon's symbol versions.
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <typeinfo>

// std::make_shared asks libstdc++ (GCC 9+, GLIBCXX_3.4.26) whether a type_info
// is its tag. Answered here as libstdc++ answers it (by the mangled name: the
// addon is built without RTTI), so GLIBCXX_3.4.21 suffices.
namespace std {
bool _Sp_make_shared_tag::_S_eq(const type_info& ti) noexcept {
  const char* name = ti.name();
  if (*name == '*') ++name;  // GCC marks names that must be compared by address
  return std::strcmp(name, "St19_Sp_make_shared_tag") == 0;
}
// GCC 11+ headers throw through this helper (GLIBCXX_3.4.29) for new T[n] with
// a bad n; defined here, the addon needs no newer libstdc++ for it.
void __throw_bad_array_new_length() { throw bad_array_new_length(); }
}  // namespace std

extern "C" {

// libstdc++ (GCC >= 11, glibc >= 2.32) skips atomic reference counting when
// this is nonzero. 0 means "maybe threaded": always atomic, which is correct.
__attribute__((visibility("hidden"))) char pagewise_single_threaded = 0;

// glibc 2.33 made stat/fstat/lstat/fstatat real functions (before: __xstat
// and friends, which cannot be linked against any more). binding.gyp links
// with --wrap=fstat64 etc., so calls land here: the same system calls, whose
// struct stat is glibc's on x86-64.
__attribute__((visibility("hidden"))) int __wrap_fstat64(int fd, struct stat* st) {
  return static_cast<int>(syscall(SYS_fstat, fd, st));
}
__attribute__((visibility("hidden"))) int __wrap_stat64(const char* file, struct stat* st) {
  return static_cast<int>(syscall(SYS_stat, file, st));
}
__attribute__((visibility("hidden"))) int __wrap_lstat64(const char* file, struct stat* st) {
  return static_cast<int>(syscall(SYS_lstat, file, st));
}
__attribute__((visibility("hidden"))) int __wrap_fstatat64(int dirfd, const char* file, struct stat* st, int flags) {
  return static_cast<int>(syscall(SYS_newfstatat, dirfd, file, st, flags));
}

}  // extern "C"
