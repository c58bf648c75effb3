// Tests of test/lib/manifest.ts and the pure parts of tree.ts: parsing, hashing, diffing.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import {
  diffManifests, hashFile, hashFileSparse, hostManifest, manifestFromJSON, manifestToJSON,
  parseGetfattr, projectToFat, rdevString, TIME32_RANGE, type Manifest, type ManifestEntry,
} from '../lib/manifest.js';
import { manyNames, prngBytes, seedOf, sha256 } from '../lib/tree.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';

const S = 1_000_000_000n;
const m = (producer: string, entries: ManifestEntry[]): Manifest => ({ producer, entries });
const file = (p: string, extra: Partial<ManifestEntry> = {}): ManifestEntry =>
  ({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, nlink: 1, mtimeNs: 10n * S, sha256: 'aa', xattrs: {}, ...extra });

t.test('prngBytes is deterministic and seed-dependent', async t => {
  t.same(prngBytes(1, 37), prngBytes(1, 37));
  t.notSame(prngBytes(1, 37), prngBytes(2, 37));
  t.same(prngBytes(7, 10), prngBytes(7, 13).subarray(0, 10), 'a prefix of a longer stream');
  t.equal(seedOf('a'), seedOf('a'));
  t.not(seedOf('a'), seedOf('b'));
  const names = manyNames(100);
  t.equal(new Set(names).size, 100);
  t.ok(names.every(n => Buffer.byteLength(n) <= 255));
});

t.test('rdevString decodes old and new dev_t', async t => {
  t.equal(rdevString(0x0103n), '1:3');
  // major 300, minor 70000 in Linux's new encoding
  const dev = (70000n & 0xffn) | ((300n & 0xfffn) << 8n) | ((70000n & ~0xffn) << 12n);
  t.equal(rdevString(dev), '300:70000');
});

t.test('parseGetfattr: escapes, root, empty values', async t => {
  const text = [
    '# file: .', 'user.root=0x01', '',
    '# file: ./new\\012line', 'user.x=0x0102', '',
    '# file: ./back\\134slash é', 'user.e=0x', 'trusted.T=0xABCD', '',
  ].join('\n');
  const r = parseGetfattr(text);
  t.same([...r.keys()], ['.', 'new\nline', 'back\\slash é']);
  t.same(Object.fromEntries(r.get('back\\slash é')!), { 'user.e': '', 'trusted.T': 'abcd' });
});

t.test('diffManifests: equal, missing, changed, options', async t => {
  const a = m('A', [{ path: '.', type: 'dir' }, file('x'), file('y', { mtimeNs: 10n * S + 5n })]);
  t.strictSame(diffManifests(a, a), []);
  const b = m('B', [{ path: '.', type: 'dir' }, file('x', { sha256: 'bb', mode: 0o4755 }), file('z')]);
  t.strictSame(diffManifests(a, b), [
    'x: mode 00644 [A] ≠ 04755 [B]',
    'x: sha256 "aa" [A] ≠ "bb" [B]',
    'y: only in A (file)',
    'z: only in B (file)',
  ]);
  t.strictSame(diffManifests(a, b, { ignore: ['mode', 'sha256'], ignoreAt: [{ path: ['y', 'z'], fields: 'all' }] }), []);

  const c = m('C', [{ path: '.', type: 'dir' }, file('x'), file('y', { mtimeNs: 10n * S })]);
  t.equal(diffManifests(a, c).length, 1, 'a 5 ns difference shows');
  t.strictSame(diffManifests(a, c, { timePrecisionNs: S }), [], 'and disappears at 1 s precision');
  t.strictSame(diffManifests(a, c, { timePrecisionNs: { atime: S } }).length, 1, 'precision is per field');

  const far = m('far', [{ path: '.', type: 'dir' }, file('x', { mtimeNs: 2_300_000_000n * S }), file('y', { mtimeNs: 10n * S + 5n })]);
  const wrapped = m('wrapped', [{ path: '.', type: 'dir' }, file('x', { mtimeNs: -1_994_967_296n * S }), file('y', { mtimeNs: 10n * S + 5n })]);
  t.equal(diffManifests(far, wrapped).length, 1);
  t.strictSame(diffManifests(far, wrapped, { timeRange: TIME32_RANGE }), [], 'times out of range are not compared');

  const x1 = m('1', [file('x', { xattrs: { 'user.a': '01', 'security.selinux': 'ff' } })]);
  const x2 = m('2', [file('x', { xattrs: { 'user.a': '02' } })]);
  t.strictSame(diffManifests(x1, x2), [
    'x: xattr security.selinux 0xff (1 bytes) [1] ≠ (absent) [2]',
    'x: xattr user.a 0x01 (1 bytes) [1] ≠ 0x02 (1 bytes) [2]',
  ]);
  t.equal(diffManifests(x1, x2, { ignoreXattrs: [/^security\./] }).length, 1);

  const l1 = m('1', [file('a', { links: ['a', 'b'], nlink: 2 }), file('b', { links: ['a', 'b'], nlink: 2 })]);
  const l2 = m('2', [file('a', { nlink: 2 }), file('b', { nlink: 2 })]);
  t.equal(diffManifests(l1, l2).length, 2, 'lost link groups show');
  t.strictSame(diffManifests(l1, m('2', [file('a', { links: ['a', 'b'], nlink: 2 })]), { ignoreAt: [{ path: 'b', fields: 'all' }] }), [],
    'a partner left out of the comparison does not count');

  const t1 = m('1', [{ path: 'd', type: 'dir', size: 4096 }]);
  const t2 = m('2', [{ path: 'd', type: 'file', size: 4096 }]);
  t.strictSame(diffManifests(t1, t2), ['d: type dir [1] ≠ file [2]']);
  t.strictSame(diffManifests(t1, m('2', [{ path: 'd', type: 'dir', size: 8192 }]), { ignore: ['dirSize'] }), []);

  const many = m('many', Array.from({ length: 300 }, (_, i) => file(`f${i}`)));
  const d = diffManifests(many, m('none', []), { maxDiffs: 10 });
  t.equal(d.length, 11);
  t.equal(d[10], '… and 290 more differences');
});

t.test('JSON round trip keeps bigints', async t => {
  const a = m('A', [file('x', { mtimeNs: -5n, atimeNs: 2n ** 62n, target: '12n' })]);
  t.same(manifestFromJSON(manifestToJSON(a)), a);
});

t.test('projectToFat', async t => {
  const a = m('A', [
    { path: '.', type: 'dir', mtimeNs: 3n * S, mode: 0o755 },
    file('f', { mtimeNs: 3n * S + 999n, links: ['f', 'g'] }),
    { path: 'l', type: 'symlink', target: 'f' },
    { path: 'd', type: 'dir', mtimeNs: 5n * S, size: 4096 },
  ]);
  t.strictSame(projectToFat(a).entries, [
    { path: '.', type: 'dir' },
    { path: 'f', type: 'file', size: 1, sha256: 'aa', mtimeNs: 2n * S },
    { path: 'd', type: 'dir', mtimeNs: 4n * S },
  ]);
});

t.test('hostManifest on a small tree; sparse-aware hash equals the plain one', { skip: whyNot(['getfattr', 'setfattr', 'filefrag']) }, async t => {
  const dir = scratchDir(t, 'manifest');
  fs.writeFileSync(path.join(dir, 'a'), 'hello');
  fs.linkSync(path.join(dir, 'a'), path.join(dir, 'b'));
  fs.symlinkSync('a', path.join(dir, 's'));
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'c'), '');
  await run('setfattr', ['-n', 'user.k', '-v', '0x00ff', path.join(dir, 'sub', 'c')]).catch(() => t.comment('no user xattrs on tmp'));
  const fd = fs.openSync(path.join(dir, 'sparse'), 'w');
  fs.writeSync(fd, prngBytes(3, 5000), 0, 5000, 70 * 1024 * 1024);
  fs.writeSync(fd, prngBytes(4, 100), 0, 100, 0);
  fs.ftruncateSync(fd, 130 * 1024 * 1024 + 7);
  fs.closeSync(fd);

  const man = await hostManifest(dir, { exclude: ['sparse'] });
  t.same(man.entries.map(e => e.path), ['.', 'a', 'b', 's', 'sub', 'sub/c']);
  const a = man.entries[1]!;
  t.equal(a.sha256, sha256(Buffer.from('hello')));
  t.same(a.links, ['a', 'b']);
  t.equal(a.nlink, 2);
  t.equal(man.entries[3]!.target, 'a');
  t.equal(typeof a.mtimeNs, 'bigint');
  const c = man.entries[5]!;
  if (Object.keys(c.xattrs ?? {}).length) t.same(c.xattrs, { 'user.k': '00ff' });

  const sp = path.join(dir, 'sparse');
  t.equal(await hashFileSparse(sp), hashFile(sp), 'FIEMAP-guided hash = plain hash');
});
