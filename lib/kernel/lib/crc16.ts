/*
 * CRC-16 with the reflected polynomial 0xA001 (x^16 + x^15 + x^2 + 1), Linux's lib/crc16.c.
 * ext4 uses it for the pre-metadata_csum group descriptor checksum (gdt_csum / uninit_bg).
 * Pure kernel code: no host imports.
 *
 * As in Linux, crc16(crc, p, len) is the bare register update: ext4 seeds it with ~0 and
 * stores the register without a final inversion.
 */

const crc16_table: Uint16Array = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** Feeds `len` bytes of `p` from `offset` into `crc` (16 bits) and returns the new register. */
export function crc16(crc: number, p: Uint8Array, offset = 0, len = p.length - offset): number {
  let c = crc & 0xffff;
  const end = offset + len;
  for (let i = offset; i < end; i++) c = (c >>> 8) ^ crc16_table[(c ^ p[i]) & 0xff];
  return c;
}
