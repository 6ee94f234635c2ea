// Which versioned symbols an ELF shared object (the addon) needs from the
// libraries it links: what `objdump -T` shows, read in JavaScript so that no
// binutils are needed. ELF64 little-endian only (linux-x64).
//
//   node scripts/elf-versions.mjs file.node   -> prints { glibc, glibcxx, needs }
import * as fs from 'node:fs';

const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;

/** [{ symbol, version, file }] for every undefined dynamic symbol with a version requirement. */
export function versionedImports(file) {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not an ELF file`);
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${file}: not ELF64 little-endian`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({
      type: b.readUInt32LE(o + 4),
      offset: Number(b.readBigUInt64LE(o + 0x18)),
      size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28),
      info: b.readUInt32LE(o + 0x2c),
      entsize: Number(b.readBigUInt64LE(o + 0x38)),
    });
  }
  const str = (section, at) => {
    const start = section.offset + at;
    return b.toString('latin1', start, b.indexOf(0, start));
  };
  // Version index -> { version, file } from the version-needed records.
  const needed = new Map();
  for (const s of sections.filter((x) => x.type === SHT_GNU_VERNEED)) {
    const strtab = sections[s.link];
    let vn = s.offset;
    for (let i = 0; i < s.info; i++) {
      const libFile = str(strtab, b.readUInt32LE(vn + 4));
      let aux = vn + b.readUInt32LE(vn + 8);
      for (let j = 0; j < b.readUInt16LE(vn + 2); j++) {
        needed.set(b.readUInt16LE(aux + 6), { version: str(strtab, b.readUInt32LE(aux + 8)), file: libFile });
        aux += b.readUInt32LE(aux + 12);
      }
      vn += b.readUInt32LE(vn + 12);
    }
  }
  const dynsym = sections.find((x) => x.type === SHT_DYNSYM);
  const versym = sections.find((x) => x.type === SHT_GNU_VERSYM);
  const imports = [];
  if (!dynsym || !versym) return imports;
  const names = sections[dynsym.link];
  for (let i = 0; i < dynsym.size / dynsym.entsize; i++) {
    const o = dynsym.offset + i * dynsym.entsize;
    const shndx = b.readUInt16LE(o + 6);
    const need = needed.get(b.readUInt16LE(versym.offset + 2 * i) & 0x7fff);
    if (shndx === 0 && need) imports.push({ symbol: str(names, b.readUInt32LE(o)), ...need });
  }
  return imports;
}

const compare = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return 0;
};

/** Newest version needed per prefix (GLIBC, GLIBCXX, CXXABI, GCC) and the symbols needing more than `limits`. */
export function glibcRequirement(file, limits = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11' }) {
  const newest = {};
  const tooNew = [];
  for (const imp of versionedImports(file)) {
    const m = /^([A-Z]+)_([\d.]+)$/.exec(imp.version);
    if (!m) continue;
    const [, prefix, version] = m;
    if (!newest[prefix] || compare(version, newest[prefix]) > 0) newest[prefix] = version;
    if (limits[prefix] && compare(version, limits[prefix]) > 0) tooNew.push(`${imp.symbol}@${imp.version}`);
  }
  return { glibc: newest.GLIBC, glibcxx: newest.GLIBCXX, cxxabi: newest.CXXABI, tooNew };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  console.log(JSON.stringify(glibcRequirement(process.argv[2]), null, 2));
}
