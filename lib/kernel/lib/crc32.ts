/*
 * CRC-32 as IEEE 802.3 defines it (reflected polynomial 0xEDB88320), the checksum GPT
 * headers and partition entry arrays carry. Linux's lib/crc32.c names: crc32_le() is the raw
 * register update with no inversion, so callers can chain buffers; efi_crc32() is what the
 * UEFI spec calls CRC32 (seed ~0, final ~). Pure kernel code: no host imports.
 *
 * This is NOT crc32c (Castagnoli), which ext4 and jbd2 use; that lives in its own file.
 */

const CRC32_POLY_LE = 0xedb88320;

/* One 256-entry table, built once: byte-at-a-time is fast enough for partition tables
 * (a few KiB per scan) and keeps the code obvious. */
const crc32table_le: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32_POLY_LE : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/**
 * Feeds `p` (optionally only `len` bytes from `offset`) into the CRC register `crc` and
 * returns the new register, unsigned. No pre- or post-inversion, as Linux's crc32_le().
 */
export function crc32_le(crc: number, p: Uint8Array, offset = 0, len = p.length - offset): number {
  let c = crc >>> 0;
  const end = offset + len;
  for (let i = offset; i < end; i++) c = crc32table_le[(c ^ p[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** The CRC32 of the UEFI spec and zlib: crc32_le(~0, ...) ^ ~0. "123456789" → 0xCBF43926. */
export function efi_crc32(p: Uint8Array, offset = 0, len = p.length - offset): number {
  return (crc32_le(0xffffffff, p, offset, len) ^ 0xffffffff) >>> 0;
}
