// Where the fields of a FAT12/16/32 image are: the BPB, FSInfo, the FAT entries of the
// clusters in use, and the directory entries (short and long-name) of the tree, found by
// walking it. The "checksums" FAT has are the long-name checksum over the 8.3 name and the
// second FAT copy: a fix-up recomputes the first and mirrors the change into every FAT.
import { getField, setField, type Field } from './ext-fields.js';

export function fatFields(img: Uint8Array): Field[] {
  if (img.length < 1024) return [];
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true), u32 = (o: number) => dv.getUint32(o, true);
  const bps = u16(11), spc = img[13]!, rsvd = u16(14), nfats = img[16]!, rootEnt = u16(17);
  if (![512, 1024, 2048, 4096].includes(bps) || spc === 0 || nfats === 0 || rsvd === 0) return [];
  const fatSz = u16(22) || u32(36);
  const total = u16(19) || u32(32);
  const rootSecs = Math.ceil((rootEnt * 32) / bps);
  const dataSec = rsvd + nfats * fatSz + rootSecs;
  const clusters = Math.floor((total - dataSec) / spc);
  const bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  const fatOff = rsvd * bps, fatBytes = fatSz * bps, csz = spc * bps;
  const clusOff = (c: number) => (dataSec + (c - 2) * spc) * bps;
  const fields: Field[] = [];

  const bpb: [string, number, 1 | 2 | 4][] = [
    ['BPB_BytsPerSec', 11, 2], ['BPB_SecPerClus', 13, 1], ['BPB_RsvdSecCnt', 14, 2], ['BPB_NumFATs', 16, 1], ['BPB_RootEntCnt', 17, 2],
    ['BPB_TotSec16', 19, 2], ['BPB_Media', 21, 1], ['BPB_FATSz16', 22, 2], ['BPB_TotSec32', 32, 4], ['boot signature', 510, 2],
  ];
  if (bits === 32) bpb.push(['BPB_FATSz32', 36, 4], ['BPB_ExtFlags', 40, 2], ['BPB_FSVer', 42, 2], ['BPB_RootClus', 44, 4], ['BPB_FSInfo', 48, 2], ['BPB_BkBootSec', 50, 2]);
  for (const [name, off, size] of bpb) fields.push({ kind: 'bpb', name, off, size });
  if (bits === 32) {
    const fsi = u16(48) * bps;
    if (fsi > 0 && fsi + 512 <= img.length)
      for (const [name, x] of [['FSI_LeadSig', 0], ['FSI_StrucSig', 484], ['FSI_Free_Count', 488], ['FSI_Nxt_Free', 492]] as const)
        fields.push({ kind: 'fsinfo', name, off: fsi + x, size: 4 });
  }

  const fatGet = (c: number): number => {
    if (bits === 12) { const o = fatOff + Math.floor(c * 3 / 2); const w = u16(o); return c % 2 ? Math.floor(w / 16) : w % 4096; }
    if (bits === 16) return u16(fatOff + c * 2);
    return u32(fatOff + c * 4) % 268435456;
  };
  const eoc = bits === 12 ? 0xff8 : bits === 16 ? 0xfff8 : 0x0ffffff8;
  const chain = (c: number, cap = 64): number[] => {
    const out: number[] = [];
    while (c >= 2 && c < clusters + 2 && out.length < cap && !out.includes(c)) { out.push(c); c = fatGet(c); if (c >= eoc) break; }
    return out;
  };
  const fatEntryField = (c: number): Field => {
    const off = bits === 12 ? fatOff + Math.floor(c * 3 / 2) : fatOff + c * (bits / 8);
    const size: 2 | 4 = bits === 32 ? 4 : 2;
    const f: Field = {
      kind: 'fat', name: `FAT[${c}]`, off, size,
      // The second (and further) FAT copies get the same bytes: the FATs agree again.
      fix: () => { const v = getField(img, f); for (let k = 1; k < nfats; k++) setField(img, { off: off + k * fatBytes, size }, v); },
    };
    return f;
  };

  const dirFields = (base: number, len: number, where: string, queue: number[]) => {
    let lfnStart = -1;
    for (let p = 0; p + 32 <= len; p += 32) {
      const e = base + p;
      const first = img[e]!;
      if (first === 0) break;
      if (first === 0xe5) continue;
      const attr = img[e + 11]!;
      if (attr === 0x0f) { if (lfnStart < 0) lfnStart = e; continue; }
      const name = `${where} entry@${p}`;
      // LFN checksum of this short name, for the long-name entries before it.
      const lfns: number[] = [];
      if (lfnStart >= 0) for (let q = lfnStart; q < e; q += 32) lfns.push(q);
      lfnStart = -1;
      const fixLfn = () => {
        let s = 0;
        for (let i = 0; i < 11; i++) s = (((s % 2) * 128) + Math.floor(s / 2) + img[e + i]!) % 256;
        for (const q of lfns) img[q + 13] = s;
      };
      for (const [n, x, size] of [['DIR_Name[0]', 0, 1], ['DIR_Name[7]', 7, 1], ['DIR_Attr', 11, 1], ['DIR_NTRes', 12, 1], ['DIR_FstClusHI', 20, 2], ['DIR_FstClusLO', 26, 2], ['DIR_FileSize', 28, 4]] as const)
        fields.push({ kind: 'dirent', name: `${name} ${n}`, off: e + x, size, fix: x < 11 ? fixLfn : undefined });
      for (const q of lfns.slice(0, 2)) {
        fields.push({ kind: 'lfn', name: `${name} lfn@${q - e} LDIR_Ord`, off: q, size: 1 });
        fields.push({ kind: 'lfn', name: `${name} lfn@${q - e} LDIR_Chksum`, off: q + 13, size: 1 });
        fields.push({ kind: 'lfn', name: `${name} lfn@${q - e} LDIR_Name1`, off: q + 1, size: 2 });
        fields.push({ kind: 'lfn', name: `${name} lfn@${q - e} LDIR_FstClusLO`, off: q + 26, size: 2 });
      }
      const clus = u16(e + 26) + (bits === 32 ? u16(e + 20) * 65536 : 0);
      if (first === 0x2e) continue;
      for (const c of chain(clus, 8)) fields.push(fatEntryField(c));
      if (attr & 0x10) queue.push(clus);
    }
  };

  const queue: number[] = [];
  if (bits === 32) queue.push(u32(44));
  else dirFields((rsvd + nfats * fatSz) * bps, rootEnt * 32, 'root', queue);
  const seen = new Set<number>();
  while (queue.length && seen.size < 64) {
    const c = queue.shift()!;
    if (seen.has(c)) continue;
    seen.add(c);
    for (const k of chain(c, 16)) {
      const o = clusOff(k);
      if (o + csz > img.length) break;
      dirFields(o, csz, `dir cluster ${k}`, queue);
    }
  }
  for (const c of [0, 1, 2, clusters + 1]) fields.push(fatEntryField(c));
  return fields;
}
