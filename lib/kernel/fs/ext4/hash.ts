/*
 * Directory name hashes for htree (dx) directories, bit for bit as Linux's ext4fs_dirhash
 * (fs/ext4/hash.c): legacy, half-MD4 and TEA, each in the signed-char and unsigned-char
 * variants (which one a filesystem uses is its superblock's EXT2_FLAGS_*_HASH). siphash
 * (casefolded directories) is not implemented. Pure kernel code.
 */
import {
  DX_HASH_HALF_MD4, DX_HASH_HALF_MD4_UNSIGNED, DX_HASH_LEGACY, DX_HASH_LEGACY_UNSIGNED,
  DX_HASH_TEA, DX_HASH_TEA_UNSIGNED,
} from './layout.js';

export interface dx_hash_info { hash: number; minor_hash: number }

/* The largest 32-bit hash; 0x7fffffff << 1 is reserved as the end-of-directory cookie. */
export const EXT4_HTREE_EOF_32BIT = 0x7fffffff;

const rol32 = (x: number, s: number): number => ((x << s) | (x >>> (32 - s))) >>> 0;

function TEA_transform(buf: Uint32Array, inp: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0], b1 = buf[1];
  const a = inp[0], b = inp[1], c = inp[2], d = inp[3];
  for (let n = 0; n < 16; n++) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] += b0;
  buf[1] += b1;
}

/* Three MD4 rounds with fewer steps: enough mixing for a directory hash, not a digest. */
const F = (x: number, y: number, z: number): number => z ^ (x & (y ^ z));
const G = (x: number, y: number, z: number): number => ((x & y) + ((x ^ y) & z)) >>> 0;
const H = (x: number, y: number, z: number): number => x ^ y ^ z;
const K2 = 0o13240474631, K3 = 0o15666365641;

function half_md4_transform(buf: Uint32Array, x: Uint32Array): void {
  let a = buf[0], b = buf[1], c = buf[2], d = buf[3];
  const R = (f: typeof F, p: number, q: number, r: number, s: number, k: number, sh: number): number =>
    rol32((p + f(q, r, s) + k) >>> 0, sh);
  a = R(F, a, b, c, d, x[0], 3); d = R(F, d, a, b, c, x[1], 7);
  c = R(F, c, d, a, b, x[2], 11); b = R(F, b, c, d, a, x[3], 19);
  a = R(F, a, b, c, d, x[4], 3); d = R(F, d, a, b, c, x[5], 7);
  c = R(F, c, d, a, b, x[6], 11); b = R(F, b, c, d, a, x[7], 19);

  a = R(G, a, b, c, d, (x[1] + K2) >>> 0, 3); d = R(G, d, a, b, c, (x[3] + K2) >>> 0, 5);
  c = R(G, c, d, a, b, (x[5] + K2) >>> 0, 9); b = R(G, b, c, d, a, (x[7] + K2) >>> 0, 13);
  a = R(G, a, b, c, d, (x[0] + K2) >>> 0, 3); d = R(G, d, a, b, c, (x[2] + K2) >>> 0, 5);
  c = R(G, c, d, a, b, (x[4] + K2) >>> 0, 9); b = R(G, b, c, d, a, (x[6] + K2) >>> 0, 13);

  a = R(H, a, b, c, d, (x[3] + K3) >>> 0, 3); d = R(H, d, a, b, c, (x[7] + K3) >>> 0, 9);
  c = R(H, c, d, a, b, (x[2] + K3) >>> 0, 11); b = R(H, b, c, d, a, (x[6] + K3) >>> 0, 15);
  a = R(H, a, b, c, d, (x[1] + K3) >>> 0, 3); d = R(H, d, a, b, c, (x[5] + K3) >>> 0, 9);
  c = R(H, c, d, a, b, (x[0] + K3) >>> 0, 11); b = R(H, b, c, d, a, (x[4] + K3) >>> 0, 15);

  buf[0] += a; buf[1] += b; buf[2] += c; buf[3] += d;
}

/* The signedness of `char` leaks into these hashes: names with bytes >= 0x80 hash
 * differently on signed-char and unsigned-char machines, hence the two variants. */
const charval = (c: number, unsigned: boolean): number => (unsigned ? c : (c << 24) >> 24);

function dx_hack_hash(name: Uint8Array, unsigned: boolean): number {
  let hash0 = 0x12a3fe2d, hash1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    let hash = (hash1 + ((hash0 ^ Math.imul(charval(name[i], unsigned), 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

/* Packs up to 4*num bytes of the name into num words, padded with a length pattern. */
function str2hashbuf(msg: Uint8Array, off: number, len: number, out: Uint32Array, num: number, unsigned: boolean): void {
  let pad = (len | (len << 8)) >>> 0; // bits32: a name length, at most 255
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  if (len > num * 4) len = num * 4;
  let k = 0;
  for (let i = 0; i < len; i++) {
    val = (charval(msg[off + i], unsigned) + ((val << 8) >>> 0)) >>> 0;
    if (i % 4 === 3) {
      out[k++] = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) out[k++] = val;
  while (--num >= 0) out[k++] = pad;
}

/**
 * ext4fs_dirhash: `version` is a DX_HASH_* value with the unsigned offset already applied
 * (dx_root_info.hash_version + ext4_hash_unsigned(sb)); `seed` is s_hash_seed, and an
 * all-zero (or absent) seed means the MD4 initial state.
 * Returns null for versions this code does not implement.
 */
export function ext4fs_dirhash(name: Uint8Array, version: number, seed?: readonly number[] | null): dx_hash_info | null {
  const buf = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  if (seed && seed.some((w) => w !== 0)) for (let i = 0; i < 4; i++) buf[i] = seed[i];
  let hash: number, minor = 0;
  switch (version) {
    case DX_HASH_LEGACY_UNSIGNED:
    case DX_HASH_LEGACY:
      hash = dx_hack_hash(name, version === DX_HASH_LEGACY_UNSIGNED);
      break;
    case DX_HASH_HALF_MD4_UNSIGNED:
    case DX_HASH_HALF_MD4: {
      const u = version === DX_HASH_HALF_MD4_UNSIGNED;
      const inp = new Uint32Array(8);
      for (let p = 0, len = name.length; len > 0; len -= 32, p += 32) {
        str2hashbuf(name, p, len, inp, 8, u);
        half_md4_transform(buf, inp);
      }
      minor = buf[2];
      hash = buf[1];
      break;
    }
    case DX_HASH_TEA_UNSIGNED:
    case DX_HASH_TEA: {
      const u = version === DX_HASH_TEA_UNSIGNED;
      const inp = new Uint32Array(4);
      for (let p = 0, len = name.length; len > 0; len -= 16, p += 16) {
        str2hashbuf(name, p, len, inp, 4, u);
        TEA_transform(buf, inp);
      }
      hash = buf[0];
      minor = buf[1];
      break;
    }
    default:
      return null;
  }
  hash = (hash & ~1) >>> 0;
  if (hash === (EXT4_HTREE_EOF_32BIT << 1) >>> 0) hash = ((EXT4_HTREE_EOF_32BIT - 1) << 1) >>> 0;
  return { hash, minor_hash: minor >>> 0 };
}
