/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of ext4's and jbd2's
 * metadata. Pure kernel code: no host imports.
 *
 * Linux's crc32c(crc, p, len) is the bare register update: no inversion on the way in or
 * out. ext4 and jbd2 rely on that: they seed with ~0 (or with a per-filesystem seed that is
 * itself such a register value), chain several buffers through one register, and store the
 * register as it is. The textbook CRC-32C of a message is therefore ~crc32c(~0, msg).
 */

const CRC32C_POLY_LE = 0x82f63b78;

/* Slicing-by-8: every 4 KiB metadata block goes through here, so the 8 KiB of tables pay
 * for themselves; table 0 alone is the classic byte-at-a-time table. */
const crc32ctable: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Uint32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_LE : c >>> 1;
    t[0][i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) t[k][i] = (t[k - 1][i] >>> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
})();

/**
 * Feeds `len` bytes of `p` from `offset` into the register `crc` and returns the new
 * register, unsigned. No pre- or post-inversion, exactly as Linux's crc32c().
 */
export function crc32c(crc: number, p: Uint8Array, offset = 0, len = p.length - offset): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = crc32ctable;
  let c = crc >>> 0;
  let i = offset;
  const end = offset + len;
  const end8 = end - 8;
  while (i <= end8) {
    const a = (c ^ (p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (p[i + 3] << 24))) >>> 0;
    c = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[p[i + 4]] ^ t2[p[i + 5]] ^ t1[p[i + 6]] ^ t0[p[i + 7]];
    i += 8;
  }
  while (i < end) c = t0[(c ^ p[i++]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** Feeds one little-endian 32-bit word, as ext4 does with `__le32 inum` and friends. */
export function crc32c_le32(crc: number, v: number): number {
  const b = new Uint8Array(4);
  b[0] = v; b[1] = v >>> 8; b[2] = v >>> 16; b[3] = v >>> 24;
  return crc32c(crc, b);
}

/** The textbook CRC-32C (iSCSI, RFC 3720): "123456789" → 0xE3069283. */
export function crc32c_std(p: Uint8Array, offset = 0, len = p.length - offset): number {
  return (crc32c(0xffffffff, p, offset, len) ^ 0xffffffff) >>> 0;
}
