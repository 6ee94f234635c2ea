// PAGEMAP_SCAN (Linux 6.7+) on /proc/self/pagemap: its structs and constants,
// declared here because the system headers this builds against may predate it
// (Documentation/admin-guide/mm/pagemap.rst), and the scan loop shared by
// page flags (pagemap.cc) and write tracking (userfaultfd.cc).
#pragma once

#include <cstdint>
#include <vector>

namespace pagewise {

struct PageRegion {  // struct page_region
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};

struct PageScanArg {  // struct pm_scan_arg
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};

// Page categories (PAGE_IS_*), the bits lib/page-flags.ts decodes.
constexpr uint64_t kPageIsWritten = 1u << 1;
constexpr uint64_t kPageIsFile = 1u << 2;
constexpr uint64_t kPageIsPresent = 1u << 3;
constexpr uint64_t kPageIsSwapped = 1u << 4;
constexpr uint64_t kPageIsSoftDirty = 1u << 7;
// Every category up to PAGE_IS_SOFT_DIRTY (6.7); PAGE_IS_GUARD (6.14) is left out so one mask works on every kernel with the ioctl.
constexpr uint64_t kPageCategories = 0xff;

// Scan flags (PM_SCAN_*).
constexpr uint64_t kScanWpMatching = 1u << 0;
constexpr uint64_t kScanCheckWpAsync = 1u << 1;

// The pagemap of this process, opened once (reopened in a forked child, whose
// own pagemap it must read); -1 with errno set when it cannot be opened.
int SelfPagemap();

// PAGEMAP_SCAN of [start, end) until the walk reaches `end`, appending
// (start - base, end - start, categories & return_mask) per region to `out`,
// merged with the previous entry when adjacent with equal categories. With
// kScanWpMatching in `flags`, matching pages are write-protected as they are
// walked. Returns 0 or an errno value.
int ScanPages(uint64_t start, uint64_t end, uint64_t base, uint64_t flags, uint64_t categoryMask, uint64_t returnMask,
              std::vector<double>* out);

}  // namespace pagewise
