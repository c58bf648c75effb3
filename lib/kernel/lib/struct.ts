/*
 * The one struct codec for on-disk formats (ext4, jbd2, fat): a struct is described once,
 * as a table of (Linux field name, byte offset, kind), and decode and encode are both
 * driven by that table, so the two directions cannot disagree. Little-endian by default
 * (ext4, fat); jbd2 passes le = false. Also the unaligned little- and big-endian accessors
 * (include/asm-generic/unaligned.h's get/put_unaligned_le16/le32/be16/be32, here le16,
 * le32, be16, be32, put_le16 ...). Pure code: imports nothing.
 */
/**
 * A field's on-disk shape: integers, a byte string of n bytes, or an array of n u16s or u32s
 * (u16x for fat's long-name slots, whose UTF-16 units Linux declares as byte arrays).
 * u64 fields decode to a number, exact up to 2^53 (block numbers, byte counters and times
 * never get there; a corrupt value above it is not written back bit for bit).
 */
export type FieldKind = 'u8' | 'u16' | 's16' | 'u32' | 'u64' | `bytes${number}` | `u16x${number}` | `u32x${number}`;
export type FieldDef = readonly [name: string, offset: number, kind: FieldKind];
type KindType<K> = K extends `bytes${number}` ? Uint8Array
  : K extends `u16x${number}` | `u32x${number}` ? number[] : number;
/** The decoded struct a field table describes: one property per field. */
export type StructOf<F extends readonly FieldDef[]> = { -readonly [E in F[number] as E[0]]: KindType<E[2]> };

export function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Bytes a field of this kind occupies. */
export function fieldSize(kind: FieldKind): number {
  switch (kind) {
    case 'u8': return 1;
    case 'u16': case 's16': return 2;
    case 'u32': return 4;
    case 'u64': return 8;
    default:
      if (kind.startsWith('bytes')) return Number(kind.slice(5));
      return (kind.startsWith('u16x') ? 2 : 4) * Number(kind.slice(4));
  }
}

function readField(dv: DataView, off: number, kind: FieldKind, le: boolean): unknown {
  switch (kind) {
    case 'u8': return dv.getUint8(off);
    case 'u16': return dv.getUint16(off, le);
    case 's16': return dv.getInt16(off, le);
    case 'u32': return dv.getUint32(off, le);
    case 'u64': {
      const lo = dv.getUint32(off + (le ? 0 : 4), le), hi = dv.getUint32(off + (le ? 4 : 0), le);
      return hi * 0x100000000 + lo;
    }
    default:
      if (kind.startsWith('bytes')) {
        const n = Number(kind.slice(5));
        return new Uint8Array(dv.buffer.slice(dv.byteOffset + off, dv.byteOffset + off + n));
      } else {
        const n = Number(kind.slice(4)), w = kind.startsWith('u16x') ? 2 : 4;
        const a: number[] = [];
        for (let i = 0; i < n; i++) a.push(w === 2 ? dv.getUint16(off + 2 * i, le) : dv.getUint32(off + 4 * i, le));
        return a;
      }
  }
}

function writeField(dv: DataView, off: number, kind: FieldKind, v: unknown, le: boolean): void {
  switch (kind) {
    case 'u8': dv.setUint8(off, v as number); return;
    case 'u16': dv.setUint16(off, v as number, le); return;
    case 's16': dv.setInt16(off, v as number, le); return;
    case 'u32': dv.setUint32(off, (v as number) >>> 0, le); return;
    case 'u64': {
      const n = v as number;
      const hi = Math.floor(n / 0x100000000) >>> 0, lo = n >>> 0;
      dv.setUint32(off + (le ? 0 : 4), lo, le);
      dv.setUint32(off + (le ? 4 : 0), hi, le);
      return;
    }
    default:
      if (kind.startsWith('bytes')) {
        const n = Number(kind.slice(5));
        const src = v as Uint8Array;
        for (let i = 0; i < n; i++) dv.setUint8(off + i, i < src.length ? src[i] : 0);
      } else {
        const n = Number(kind.slice(4));
        const a = v as ArrayLike<number>;
        if (kind.startsWith('u16x')) for (let i = 0; i < n; i++) dv.setUint16(off + 2 * i, a[i] ?? 0, le);
        else for (let i = 0; i < n; i++) dv.setUint32(off + 4 * i, (a[i] ?? 0) >>> 0, le);
      }
  }
}

/**
 * Decodes the fields of `table` found at `off` in `buf`. Fields that end beyond `limit`
 * bytes into the struct read as zero (or empty), which is how ext4 treats fields a short
 * struct (32-byte descriptor, 128-byte inode) does not have.
 */
export function decodeStruct<F extends readonly FieldDef[]>(table: F, buf: Uint8Array, off = 0,
  limit = Infinity, le = true): StructOf<F> {
  const dv = dataView(buf);
  const out: Record<string, unknown> = {};
  for (const [name, o, kind] of table) {
    if (o + fieldSize(kind) <= limit) out[name] = readField(dv, off + o, kind, le);
    else out[name] = kind.startsWith('bytes') ? new Uint8Array(fieldSize(kind))
      : kind.startsWith('u32x') || kind.startsWith('u16x') ? new Array<number>(Number(kind.slice(4))).fill(0) : 0;
  }
  return out as StructOf<F>;
}

/** Encodes `v` into `buf` at `off`; fields ending beyond `limit` bytes are not written. */
export function encodeStruct<F extends readonly FieldDef[]>(table: F, v: StructOf<F>, buf: Uint8Array,
  off = 0, limit = Infinity, le = true): void {
  const dv = dataView(buf);
  const rec = v as Record<string, unknown>;
  for (const [name, o, kind] of table) {
    if (o + fieldSize(kind) <= limit) writeField(dv, off + o, kind, rec[name], le);
  }
}

/** name → byte offset, for code that patches a single field (checksums, counters). */
export function offsetsOf<F extends readonly FieldDef[]>(table: F): { readonly [E in F[number] as E[0]]: number } {
  const o: Record<string, number> = {};
  for (const [name, off] of table) o[name] = off;
  return o as { readonly [E in F[number] as E[0]]: number };
}

export const le16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
export const le32 = (b: Uint8Array, o: number): number =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
export function put_le16(b: Uint8Array, o: number, v: number): void { b[o] = v; b[o + 1] = v >>> 8; }
export function put_le32(b: Uint8Array, o: number, v: number): void {
  b[o] = v; b[o + 1] = v >>> 8; b[o + 2] = v >>> 16; b[o + 3] = v >>> 24;
}
export const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
export const be32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
export function put_be16(b: Uint8Array, o: number, v: number): void { b[o] = v >>> 8; b[o + 1] = v; }
export function put_be32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24; b[o + 1] = v >>> 16; b[o + 2] = v >>> 8; b[o + 3] = v;
}

/** The halves of a 64-bit on-disk field held in a number (exact below 2^53). */
export const HI32 = 0x100000000;
export const lo32 = (v: number): number => v % HI32; // bits32: the low word
export const hi32 = (v: number): number => Math.floor(v / HI32) % HI32;
