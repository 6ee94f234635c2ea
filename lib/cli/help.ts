// The help texts of the `pagewise` command line (`pagewise --help`, `pagewise <command> --help`).

const EXIT_STATUS = `Exit status:
  0  success (lock: also after SIGINT / SIGTERM released the files)
  1  one or more files failed (missing, permission denied, not a regular file,
     or the operation failed); each is reported on stderr, the others are
     still processed
  2  usage error: unknown command or option, missing or invalid argument`;

const FILE_OPTIONS = `  --range RANGE    Only these bytes of each file: START-END (END exclusive),
                   START-, -END, or SIZE (= 0-SIZE). Sizes take K, M, G, T
                   suffixes (binary: 1K = 1024). Rounded out to whole pages;
                   clipped to each file's size.
  --include GLOB   Under directory arguments, only files matching GLOB
                   (repeatable). A GLOB without '/' matches the base name, one
                   with '/' the path relative to the directory argument.
                   * ? [abc] [!abc] and ** (any number of directories).
  --exclude GLOB   Under directory arguments, skip files and directories
                   matching GLOB (repeatable; wins over --include).`;

export const HELP: Record<string, string> = {
  main: `Usage: pagewise <command> [options] <paths...>

Page-cache tools built on the pagewise library: see what of a file is in
memory, warm it, drop it, or pin it (like vmtouch and util-linux fincore).

Commands:
  stat  <paths...>   How much of each file is in the page cache
  touch <paths...>   Read files into the page cache (off the event loop)
  evict <paths...>   Drop the files' clean pages from the page cache
  lock  <paths...>   Map and mlock the files; hold them until SIGINT / SIGTERM
  demo               Run the volatile-cache-under-pressure example
  help [command]     Show the help of a command

Directories are walked recursively (symbolic links inside them are not
followed). Run 'pagewise <command> --help' for a command's options.

Options:
  -h, --help         Show this help
  --version          Print the version

${EXIT_STATUS}
`,
  stat: `Usage: pagewise stat [options] <paths...>

For each file: pages in the page cache / pages in the file (or range), the
resident size and percentage, and, where the kernel has cachestat(2) (Linux
6.5+), dirty, writeback, evicted and recently evicted pages. Then a summary.
Without cachestat the counts come from mmap + mincore(2); mincore reports
every page of a file you can neither write nor own as resident (root can).

Options:
${FILE_OPTIONS}
  -v, --verbose    Also draw each file's residency strip, 60 cells wide:
                   'O' all pages resident, 'o' some, ' ' none
  --json           Print one JSON document: {backend, pageSize, range,
                   files: [...], summary: {...}, errors: [...]}
  -h, --help       Show this help

${EXIT_STATUS}
`,
  touch: `Usage: pagewise touch [options] <paths...>

Read files into the page cache: each file is mapped and populated with
MADV_POPULATE_READ, 64 MiB at a time, off the event loop. A progress bar is
drawn when standard output is a terminal.

Options:
${FILE_OPTIONS}
  -v, --verbose    Print each file touched
  --no-progress    Do not draw the progress bar
  -h, --help       Show this help

${EXIT_STATUS}
`,
  evict: `Usage: pagewise evict [options] <paths...>

Drop the files' clean pages from the page cache (posix_fadvise
POSIX_FADV_DONTNEED). Dirty pages stay until they are written back, and pages
mapped or locked by a process stay too: the summary says what is still resident.

Options:
${FILE_OPTIONS}
  -v, --verbose    Print each file evicted and what of it is still resident
  -h, --help       Show this help

${EXIT_STATUS}
`,
  lock: `Usage: pagewise lock [options] <paths...>

Map every file (read-only) and mlock(2) it, so its pages are read in and stay
in memory; print "locked ..." lines, then wait. SIGINT (Ctrl-C) or SIGTERM
unlocks, unmaps and exits with status 0 (1 if some file could not be locked).
Locking needs RLIMIT_MEMLOCK ('ulimit -l') room or CAP_IPC_LOCK (root has it).
If no file could be locked, pagewise exits at once with status 1.

Options:
${FILE_OPTIONS}
  -h, --help       Show this help

${EXIT_STATUS}
`,
  demo: `Usage: pagewise demo [options]

Run the volatile-cache-under-pressure example: a cache on MADV_FREE memory
that the kernel reclaims under memory pressure, instead of the process being
killed.

Options:
  --limit SIZE     Memory limit of the demo (e.g. 256M; whole MiB)
  -h, --help       Show this help

${EXIT_STATUS}
`,
};

