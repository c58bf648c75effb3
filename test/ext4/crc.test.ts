import t from 'tap';
import { crc32c, crc32c_std, crc32c_le32 } from '../../lib/kernel/lib/crc32c.js';
import { crc16 } from '../../lib/kernel/lib/crc16.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytewise = (crc: number, p: Uint8Array): number => {
  let c = crc >>> 0;
  for (const b of p) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
};

t.test('crc32c known vectors (RFC 3720 B.4 and the catalogue check value)', async (t) => {
  const cases: [string, Uint8Array, number][] = [
    ['"123456789"', ascii('123456789'), 0xe3069283],
    ['32 bytes of zeros', new Uint8Array(32), 0x8a9136aa],
    ['32 bytes of 0xff', new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ['32 ascending bytes', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    ['32 descending bytes', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    ['empty', new Uint8Array(0), 0],
  ];
  for (const [name, data, want] of cases) t.equal(crc32c_std(data), want, name);
});

t.test('crc32c is the bare register, as ext4 uses it', async (t) => {
  const d = ascii('123456789');
  t.equal(crc32c(0xffffffff, d), (~0xe3069283) >>> 0, 'seed ~0, no final inversion');
  t.equal(crc32c(0, new Uint8Array(0)), 0, 'empty leaves the register alone');
  t.equal(crc32c(0x12345678, new Uint8Array(0)), 0x12345678, 'empty with a seed');
  const a = crc32c(0xffffffff, d, 0, 4);
  t.equal(crc32c(a, d, 4), crc32c(0xffffffff, d), 'chaining two pieces equals one pass');
  const le = new Uint8Array([0x78, 0x56, 0x34, 0x12]);
  t.equal(crc32c_le32(7, 0x12345678), crc32c(7, le), 'le32 helper');
});

t.test('crc32c slicing-by-8 agrees with the bitwise definition at every length and alignment', async (t) => {
  const buf = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
  let bad = 0;
  for (let off = 0; off < 9; off++) {
    for (let len = 0; len < 280; len += 7) {
      if (crc32c(0xdeadbeef, buf, off, len) !== bytewise(0xdeadbeef, buf.subarray(off, off + len))) bad++;
    }
  }
  t.equal(bad, 0);
});

t.test('crc16 (lib/crc16.c, reflected 0x8005)', async (t) => {
  const d = ascii('123456789');
  t.equal(crc16(0, d), 0xbb3d, 'CRC-16/ARC check value (seed 0)');
  t.equal(crc16(0xffff, d), 0x4b37, 'CRC-16/MODBUS check value (seed ~0, as ext4 seeds it)');
  t.equal(crc16(crc16(0xffff, d, 0, 5), d, 5), 0x4b37, 'chaining');
});
