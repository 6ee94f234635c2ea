// The help texts of the `pagewise` command line (`pagewise --help`, `pagewise <command> --help`).

const EXIT_STATUS = `Exit status:
  0  success (lock: also after SIGINT / SIGTERM released the files)
  1  one or more files failed (missing, permission denied, not a regular file,
     or the operation failed); each is reported on stderr, the others are
     still processed
  2  usage error: unknown command or option, missing or invalid argument
     (sizes, ranges, globs), or a demo --limit too small for the runtime
     (vmtouch's command line: 0 also when files were skipped with a warning,
     1 for a fatal or usage error, as vmtouch)
  69 unavailable: the native addon is not loaded (PAGEWISE_BACKEND=simulator,
     or no addon for this system), so stat, touch, evict and lock cannot see
     this machine's page cache; 'npm rebuild pagewise' builds it`;

const FILE_OPTIONS = `  -p, --range RANGE
                   Only these bytes of each file: START-END (END exclusive),
                   START-, -END, or SIZE (= 0-SIZE). Sizes take K, M, G, T
                   suffixes (binary: 1K = 1024). Rounded out to whole pages;
                   clipped to each file's size.
  -I, --include GLOB
                   Under directory arguments, only files matching GLOB
                   (repeatable). A GLOB without '/' matches the base name, one
                   with '/' the path relative to the directory argument.
                   * ? [abc] [!abc] and ** (any number of directories).
  -i, --exclude GLOB
                   Under directory arguments, skip files and directories
                   matching GLOB (repeatable; wins over --include).
  -b, --files-from FILE
                   Also take the paths listed in FILE ('-' = standard input),
                   one per line, or NUL-separated if the list holds a NUL.
  -0, --null       The --files-from lists are NUL-separated.
  -f, --follow     Follow symbolic links found inside directories.
  -F, --one-file-system
                   Do not leave the file system of each directory argument.
  -m, --max-size SIZE
                   Skip files larger than SIZE (counted in the summary).`;

const VMTOUCH = `vmtouch's command line: 'pagewise [vmtouch options] <files or directories>'
(the first word an option or a path) runs vmtouch's options with vmtouch's
meaning, output and exit statuses (vmtouch 1.3.1; differences in docs/CLI.md):
  -t touch   -e evict   -l / -L lock (until SIGINT / SIGTERM)   -d daemon
  -w with -d: print the LOCKED line   -P FILE pid file (with -l / -L)
  -p RANGE   -m SIZE   -f follow symbolic links   -F one file system
  -h count hard-linked copies   -i PATTERN ignore   -I PATTERN only these
  -b FILE list of paths (-0: NUL-separated)   -v charts   -q quiet
The commands also take vmtouch's letters for their options: -p -m -f -F -i -I
-b -0, -q, -v, and lock's -d and -P.`;

export const HELP: Record<string, string> = {
  main: `Usage: pagewise <command> [options] <paths...>
       pagewise [vmtouch options] <files or directories...>

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
followed unless --follow). Run 'pagewise <command> --help' for a command's
options. The commands need the native addon: on the simulator they exit 69.

${VMTOUCH}

Options:
  -h, --help         Show this help (-h before paths is vmtouch's -h)
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
  -s, --summary    Print the summary line only (vmtouch's default output)
  -q, --quiet      Print nothing but errors (the exit status tells)
  --json           Print one JSON document: {backend, pageSize, range,
                   files: [...], summary: {...}, errors: [...]}
  --pages          With --json: each file also gets 'resident', the runs
                   [first, end) of its resident pages: a snapshot that
                   'pagewise touch --from FILE' reads back after a restart
  -h, --help       Show this help

${EXIT_STATUS}
`,
  touch: `Usage: pagewise touch [options] <paths...>

Read files into the page cache: each file is mapped, mincore(2) finds the
pages not cached yet, and only those are read (MADV_POPULATE_READ, 64 MiB at
a time, off the event loop). A progress bar is drawn when standard output is
a terminal.

Options:
${FILE_OPTIONS}
  --from FILE      Re-warm from a snapshot ('pagewise stat --json --pages'
                   output; '-' = standard input): read back exactly the pages
                   that were resident, of the files it lists (no paths then)
  -v, --verbose    Print each file touched
  -q, --quiet      Print nothing but errors
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
  -q, --quiet      Print nothing but errors
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
  -q, --quiet      Print nothing but errors (no "locked ..." line per file)
  -d, --daemon     Lock in a background process (its own session) and return
                   once everything is locked; 'kill PID' unlocks
  -P, --pid-file FILE
                   With --daemon: write the process id to FILE (created anew,
                   mode 0644; a symbolic link, a non-regular file or the pid
                   file of a running process is refused; removed when the
                   daemon exits)
  -h, --help       Show this help

${EXIT_STATUS}
`,
  demo: `Usage: pagewise demo [options]

Run the volatile-cache-under-pressure example: a cache on MADV_FREE memory
that the kernel reclaims under memory pressure, instead of the process being
killed.

Options:
  --limit SIZE     Memory limit of the demo (e.g. 256M; whole MiB). A limit
                   too small for Node itself next to the workload is refused
                   (status 2) with the smallest that works, measured here
  -h, --help       Show this help

${EXIT_STATUS}
`,
};

