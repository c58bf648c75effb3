// No 32-bit bitwise operator on an offset, sector, block or page number, size or count
// anywhere in lib/ (issue: images of 2 GiB and more did not mount because of
// `bd_nr_sectors << SECTOR_SHIFT`). A line that must use one says why with `bits32:`.
import t from 'tap';
import { tsFilesUnder as walk } from '../lib/source-files.js';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lintBits32 } from '../lib/bits32.js';

const libDir = fileURLToPath(new URL('../../../lib/', import.meta.url));

t.test('the lint catches what it is for', async (t) => {
  const bad: [string, string][] = [
    ['the 2 GiB bug itself', 'const end = Math.floor((bdev.bd_nr_sectors << SECTOR_SHIFT) / size);'],
    ['a page number shifted to a block number', 'const first = page.index << (PAGE_SHIFT - bits);'],
    ['a frame number shifted to an address', 'get phys(): number { return this.pfn << PAGE_SHIFT; }'],
    ['an offset masked', 'const within = pos & (blocksize - 1);'],
    ['a mask applied to an offset', 'const within = (blocksize - 1) & pos;'],
    ['a size truncated to 32 bits', 'dv.setUint32(0, i_size >>> 0, true);'],
    ['a count halved', 'const half = count >> 1;'],
    ['a compound shift', 'offset <<= 9;'],
    ['a parenthesised sum', 'const s = (bio.bi_sector + nr) << 9;'],
  ];
  for (const [name, src] of bad) t.equal(lintBits32('x.ts', src).length, 1, `flags: ${name}`);
  const good: [string, string][] = [
    ['a shift count that is a block size exponent', 'const blocksize = 1 << inode.i_blkbits;'],
    ['flag words', 'if (inode.i_flags & S_SYNC) x |= O_SYNC;'],
    ['logical operators', 'if (size && count || pos) f();'],
    ['type arguments', 'const m: Map<string, Set<BlockDevice>> = new Map();'],
    ['a nullable struct type', 'let sb: super_block | null = null;'],
    ['a type intersection', 'type R = InHeader & (| { op: 1; offset: number });'],
    ['a comment', '// bd_nr_sectors << SECTOR_SHIFT was the bug'],
    ['a string', "print('offset << 9');"],
    ['an explained exception', 'const lo = blocknr >>> 0; // bits32: the low word of a 64-bit field'],
    ['arithmetic', 'const end = Math.floor(bdev.bd_nr_sectors * SECTOR_SIZE / size);'],
  ];
  for (const [name, src] of good) t.same(lintBits32('x.ts', src), [], `passes: ${name}`);
});

t.test('lib/ has no 32-bit bitwise operator on a quantity', async (t) => {
  const files = walk(libDir);
  t.ok(files.length > 100, `${files.length} files read`);
  const findings = files.flatMap((f) => lintBits32(relative(libDir, f), readFileSync(f, 'utf8')));
  t.same(findings.map((f) => `${f.file}:${f.line} (${f.operand}): ${f.text}`), [],
    'every such line is arithmetic, or says with bits32: why its value stays below 2^31');
});
