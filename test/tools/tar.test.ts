/*
 * The tar writer (lib/tools/tar.ts) on its own: pax record lengths across digit boundaries,
 * pax times before 1970, the ustar prefix/name split, headers GNU tar reads (a checksum it
 * accepts, pax path/linkpath/uid/mtime records), and the size record for files of 8 GiB
 * and more (checked in the header: such data is not written here).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { aclFromText, aclToText } from '../../lib/tools/acl.js';
import { alignSparseMap, entryHeader, padding, paxRecord, paxTime, sparseDataSize, sparseMapBlock, trailer, type TarEntry } from '../../lib/tools/tar.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';

t.test('pax records count their own length', async (t) => {
  for (let n = 0; n < 300; n++) {
    const r = paxRecord('path', 'a'.repeat(n));
    const len = Number(r.toString('latin1').split(' ')[0]);
    t.equal(len, r.length, `value of ${n} bytes`);
    if (len !== r.length) break;
  }
  t.equal(paxRecord('k', Buffer.from([0, 255])).length, Number(paxRecord('k', Buffer.from([0, 255])).toString('latin1').split(' ')[0]));
});

t.test('pax times', async (t) => {
  t.equal(paxTime({ sec: 5, nsec: 0 }), '5');
  t.equal(paxTime({ sec: 5, nsec: 120_000_000 }), '5.12');
  t.equal(paxTime({ sec: 5, nsec: 1 }), '5.000000001');
  t.equal(paxTime({ sec: -2, nsec: 750_000_000 }), '-1.25');
  t.equal(paxTime({ sec: -1000, nsec: 0 }), '-1000');
});

t.test('headers: ustar where it fits, pax where it does not', async (t) => {
  const base: TarEntry = { path: Buffer.from('a/b.txt'), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: { sec: 1000, nsec: 0 } };
  t.equal(entryHeader(base).length, 512, 'a plain entry is one ustar block');
  const split = entryHeader({ ...base, path: Buffer.from(`${'p'.repeat(120)}/${'n'.repeat(90)}`) });
  t.equal(split.length, 512, 'prefix + name needs no pax header');
  t.equal(split.subarray(345, 345 + 120).toString(), 'p'.repeat(120), 'the prefix field');
  const long = entryHeader({ ...base, path: Buffer.from('q'.repeat(200)) });
  t.ok(long.length > 512 && long.includes('path=' + 'q'.repeat(200)), 'a name with no split gets a pax path');
  const big = entryHeader({ ...base, size: 8 * 1024 ** 3 });
  t.ok(big.includes('size=8589934592\n'), 'a size of 8 GiB gets a pax size record');
  const last = big.subarray(big.length - 512);
  t.equal(last[124], 0x80, 'and a base-256 size field');
  t.equal(entryHeader({ ...base, size: 8 * 1024 ** 3 - 1 }).length, 512, '8 GiB - 1 still fits in octal');
  const ids = entryHeader({ ...base, uid: 3_000_000, gid: 65534 });
  t.ok(ids.includes('uid=3000000\n') && !ids.includes('gid='), 'uid beyond 7 octal digits gets a record');
  t.equal(padding(3).length, 509);
  t.equal(padding(512).length, 0);
  t.equal(trailer(512).length, 10240 - 512);
  t.equal(trailer(9216).length, 1024, 'two zero blocks exactly fill the record');
});

t.test('GNU tar reads what the writer writes', { skip: whyNot(['tar']) }, async (t) => {
  const dir = scratchDir(t, 'tarunit');
  const parts: Buffer[] = [];
  const add = (e: TarEntry, data?: Buffer) => {
    parts.push(entryHeader(e));
    if (data) parts.push(data, padding(data.length));
  };
  const longDir = 'l'.repeat(130);
  add({ path: Buffer.from(longDir), type: 'dir', mode: 0o750, uid: 0, gid: 0, size: 0, mtime: { sec: 1_600_000_000, nsec: 0 } });
  add({ path: Buffer.from(`${longDir}/${'m'.repeat(140)}`), type: 'file', mode: 0o640, uid: 3_000_000, gid: 7, size: 5,
    mtime: { sec: 1_614_834_367, nsec: 123_456_789 } }, Buffer.from('data\n'));
  add({ path: Buffer.from('old'), type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: { sec: -1000, nsec: 250_000_000 } });
  add({ path: Buffer.from('sym'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: { sec: 1, nsec: 0 }, linkpath: Buffer.from('t'.repeat(300)) });
  add({ path: Buffer.from('hard'), type: 'hardlink', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: { sec: 1, nsec: 0 }, linkpath: Buffer.from('old') });
  const body = Buffer.concat(parts);
  const file = path.join(dir, 't.tar');
  fs.writeFileSync(file, Buffer.concat([body, trailer(body.length)]));
  const r = await run('tar', ['-tvf', file, '--full-time', '--numeric-owner']);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 5, r.stdout);
  t.match(lines[0], new RegExp(`^drwxr-x--- 0/0 .* ${longDir}/$`));
  t.match(lines[1], /^-rw-r----- 3000000\/7 +5 2021-03-04 05:06:07\.123456789 l+\/m+$/);
  t.match(lines[2], /^-rw------- 0\/0 +0 1969-12-31 .* old$/); // GNU tar lists -999.75 oddly; extraction below is exact
  t.match(lines[3], new RegExp(`^lrwxrwxrwx .* sym -> ${'t'.repeat(300)}$`));
  t.match(lines[4], /^hrw------- .* hard link to old$/);
  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  await run('tar', ['-xpf', file, '-C', x], { allowFail: true }); // warns "implausibly old time stamp"
  t.equal(fs.lstatSync(path.join(x, 'old'), { bigint: true }).mtimeNs, -999_750_000_000n, 'a time before 1970 with a fraction');
  t.equal(fs.lstatSync(path.join(x, longDir, 'm'.repeat(140)), { bigint: true }).mtimeNs, 1_614_834_367_123_456_789n, 'nanoseconds');
  t.equal(fs.readlinkSync(path.join(x, 'sym')), 't'.repeat(300), 'long link target');
  t.equal(fs.lstatSync(path.join(x, 'hard')).ino, fs.lstatSync(path.join(x, 'old')).ino, 'hard link');
});

t.test('ACL xattr values in text form and back', async (t) => {
  const text = 'user::rw-,user:1234:rwx,group::r--,group:4321:r-x,mask::rwx,other::---';
  const v = aclFromText(text)!;
  t.equal(v.length, 4 + 6 * 8, 'version and six entries');
  t.equal(v.readUInt32LE(0), 2, 'version 2');
  t.equal(aclToText(v), text, 'the text again');
  t.equal(aclToText(v, '\n'), text.replaceAll(',', '\n'), 'GNU tar\'s own separator');
  t.same(aclFromText('u::rw-\ng:7:r--\nm::r--\no::r--'), aclFromText('user::rw-,group:7:r--,mask::r--,other::r--'), 'short tags and newlines read too');
  t.equal(aclToText(Buffer.from([1, 0, 0, 0])), null, 'wrong version');
  t.equal(aclToText(Buffer.from([2, 0, 0, 0, 1])), null, 'truncated');
  t.equal(aclFromText('mask:5:rwx'), null, 'a mask has no id');
});

t.test('sparse 1.0 map blocks', async (t) => {
  t.equal(sparseMapBlock([[4096, 100]], 4196).toString('latin1').replace(/\0+$/, ''), '1\n4096\n100\n', 'data to the end: no extra entry');
  t.equal(sparseMapBlock([[0, 10]], 1000).toString('latin1').replace(/\0+$/, ''), '2\n0\n10\n1000\n0\n', 'a trailing hole: a last empty extent');
  t.equal(sparseMapBlock([], 1 << 20).toString('latin1').replace(/\0+$/, ''), '1\n1048576\n0\n', 'all hole');
  t.equal(sparseMapBlock([[0, 1]], 5).length, 512, 'padded to a block');
  t.equal(sparseDataSize([[0, 10], [600, 20]], 1000), 512 + 30);
  t.same(alignSparseMap([[0, 4096], [4096, 100], [10_000, 0], [1_000_000, 1]], 1_000_001), [[0, 4608], [999_936, 65]], 'merged, empty dropped, clamped');
});

t.test('GNU tar extracts sparse 1.0 entries with their holes, and ACL records', { skip: whyNot(['tar', 'getfacl']) }, async (t) => {
  const dir = scratchDir(t, 'tarsparse');
  const size = 5 * 1024 * 1024 + 7;
  // GNU tar reads every extent but the last in whole blocks: align what SEEK_DATA found.
  const map = alignSparseMap([[1000, 3000], [2 * 1024 * 1024, 10], [size - 3, 3]], size);
  t.same(map, [[512, 3584], [2 * 1024 * 1024, 512], [size - 7, 7]], 'aligned to blocks');
  const e: TarEntry = { path: Buffer.from('d/sparse'), type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: { sec: 1_600_000_000, nsec: 5 },
    sparse: { map }, acl: { access: 'user::rw-,user:1234:r--,group::r--,mask::r--,other::r--' } };
  const want = Buffer.alloc(size);
  want.fill(1, 1000, 4000);
  want.fill(2, 2 * 1024 * 1024, 2 * 1024 * 1024 + 10);
  want.fill(3, size - 3);
  const data = map.map(([o, l]) => want.subarray(o, o + l));
  const body = Buffer.concat([entryHeader(e), sparseMapBlock(map, size), ...data, padding(sparseDataSize(map, size))]);
  const file = path.join(dir, 's.tar');
  fs.writeFileSync(file, Buffer.concat([body, trailer(body.length)]));
  const r = await run('tar', ['-tvf', file]);
  t.match(r.stdout, new RegExp(` ${size} .* d/sparse\\n`), 'listed under its name with its real size');
  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  await run('tar', ['--acls', '-xpf', file, '-C', x]);
  const f = path.join(x, 'd/sparse');
  const got = fs.readFileSync(f);
  t.ok(got.equals(want), 'the content, zeros in the holes');
  t.ok(fs.statSync(f).blocks * 512 < 256 * 1024, 'the holes are holes');
  const acl = await run('getfacl', ['-n', '-c', f]);
  t.match(acl.stdout, /user:1234:r--/, 'the ACL is set');
});
