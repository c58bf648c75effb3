/* ext4fs_dirhash against values debugfs 1.47's dx_hash printed (tree.test.ts asks it live). */
import t from 'tap';
import { ext4fs_dirhash, EXT4_HTREE_EOF_32BIT } from '../../lib/kernel/fs/ext4/hash.js';
import {
  DX_HASH_HALF_MD4, DX_HASH_HALF_MD4_UNSIGNED, DX_HASH_LEGACY, DX_HASH_LEGACY_UNSIGNED,
  DX_HASH_TEA, DX_HASH_TEA_UNSIGNED,
} from '../../lib/kernel/fs/ext4/layout.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
/* -s 01234567-89ab-cdef-0123-456789abcdef, as the le32 words s_hash_seed holds */
const seed = [0x67452301, 0xefcdab89, 0x67452301, 0xefcdab89];

t.test('known vectors', async (t) => {
  const cases: [string, string, number, number[] | null, number, number][] = [
    ['legacy, high-bit name', 'héllo', DX_HASH_LEGACY, seed, 0x239928cc, 0],
    ['half_md4, high-bit name', 'héllo', DX_HASH_HALF_MD4, seed, 0x1e7a395c, 0xe9adfb54],
    ['tea, high-bit name', 'héllo', DX_HASH_TEA, seed, 0x313ecf7e, 0xedbe6b7e],
    ['legacy unsigned', 'héllo', DX_HASH_LEGACY_UNSIGNED, seed, 0x7798acd8, 0],
    ['half_md4 unsigned', 'héllo', DX_HASH_HALF_MD4_UNSIGNED, seed, 0x3e1227d0, 0x68ceb7ad],
    ['tea unsigned', 'héllo', DX_HASH_TEA_UNSIGNED, seed, 0x7472d1be, 0x99e4e95b],
    ['zero seed means the default', 'hello', DX_HASH_HALF_MD4, [0, 0, 0, 0], 0x1746da32, 0x420013b5],
    ['no seed means the default', 'hello', DX_HASH_HALF_MD4, null, 0x1746da32, 0x420013b5],
  ];
  for (const [name, s, v, sd, hash, minor] of cases) t.same(ext4fs_dirhash(enc(s), v, sd), { hash, minor_hash: minor }, name);
});

t.test('properties', async (t) => {
  for (let v = 0; v <= 5; v++) {
    for (const s of ['a', 'abc', 'x'.repeat(255)]) {
      const h = ext4fs_dirhash(enc(s), v, seed)!;
      t.equal(h.hash & 1, 0, `v${v} ${s.length}: low bit clear`);
      t.not(h.hash, (EXT4_HTREE_EOF_32BIT << 1) >>> 0, 'never the EOF cookie');
    }
  }
  t.same(ext4fs_dirhash(enc('plain'), DX_HASH_TEA, seed), ext4fs_dirhash(enc('plain'), DX_HASH_TEA_UNSIGNED, seed),
    'ASCII names hash the same signed and unsigned');
});
