// The README's "glibc" sentence names the newest symbol versions the prebuild needs; the
// prebuild test (the built addon) and the package test (the prebuild in the tarball) hold it
// to what scripts/elf-versions.mjs reads from the file.

/** The versions the README names: `GLIBC_x`, `GLIBCXX_y` and `CXXABI_z` in its "needs nothing newer than" sentence. */
export function readmeRequirement(readme: string): { glibc?: string; glibcxx?: string; cxxabi?: string } {
  const sentence = /needs nothing newer than (.{0,160})/.exec(readme.replace(/\s+/g, ' '))?.[1] ?? '';
  const version = (prefix: string) => new RegExp(`\`${prefix}_([\\d.]+)\``).exec(sentence)?.[1];
  return { glibc: version('GLIBC'), glibcxx: version('GLIBCXX'), cxxabi: version('CXXABI') };
}

/** glibcRequirement()'s answer in the same shape. */
export function readmeShape(need: { glibc?: string; glibcxx?: string; cxxabi?: string }): { glibc?: string; glibcxx?: string; cxxabi?: string } {
  return { glibc: need.glibc, glibcxx: need.glibcxx, cxxabi: need.cxxabi };
}
