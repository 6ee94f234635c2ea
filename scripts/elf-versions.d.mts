export interface VersionedImport {
  symbol: string;
  version: string;
  file: string;
}
export function versionedImports(file: string): VersionedImport[];
export function glibcRequirement(
  file: string,
  limits?: Record<string, string>,
): { glibc?: string; glibcxx?: string; cxxabi?: string; tooNew: string[] };
