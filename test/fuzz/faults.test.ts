// Faults: a store that fails reads and writes (EIO, short transfers) at chosen points, under
// a mounted ext4 image (FaultyStore over the image file). What must hold:
//  - data writeback that fails is reported by fsync as EIO, once per open file (errseq, as
//    Linux), the filesystem stays writable, and — with only data writes failed — e2fsck -fn
//    is clean afterwards and every file fsync'd before is intact (host kernel loop mount);
//  - a journal write that fails aborts the journal: the filesystem goes read-only, the
//    process survives, and after the next mount replays the log e2fsck -fn is clean with the
//    earlier fsync'd files intact;
//  - an inode-table read that fails is an ext4 error handled as errors= says: continue
//    stays writable, remount-ro goes read-only, panic shuts the filesystem down (EIO), and
//    e2fsck finds nothing but the recorded error state;
//  - a short write (a torn data block) is an EIO like a failed one.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { FaultyStore, FileStore, type StoreFault } from '../../lib/drivers/stores.js';
import { startKernel, O_CREAT, O_DIRECTORY, O_RDONLY, O_WRONLY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'dumpe2fs', 'debugfs', 'losetup', 'mount'], { root: true });
const EIO = 5, EROFS = 30;
const ST_RDONLY = 1;
const enc = (s: string) => new TextEncoder().encode(s);

/** 8 KiB of a recognisable pattern: a fault can pick out exactly the writes of this data. */
function pattern(tag: string): Uint8Array {
  const b = new Uint8Array(8192);
  const m = enc(`@@${tag}@@`);
  for (let i = 0; i < b.length; i += 64) b.set(m, i);
  return b;
}
function contains(buf: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= buf.length; i += 64) {
    for (let j = 0; j < needle.length; j++) if (buf[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
/** A jbd2 block (descriptor, commit, revoke): its big-endian magic at a block start. */
function isJournalBlock(buf: Uint8Array): boolean {
  for (let o = 0; o + 4 <= buf.length; o += 1024) if (buf[o] === 0xc0 && buf[o + 1] === 0x3b && buf[o + 2] === 0x39 && buf[o + 3] === 0x98) return true;
  return false;
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'faults');
  const messages: string[] = [];
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64, print: (m) => messages.push(m) }); });
  t.teardown(async () => { await k?.halt(); });

  const newImage = async (name: string): Promise<string> => {
    const p = path.join(dir, `${name}.img`);
    await makeExtImage({ path: p, type: 'ext4', sizeMiB: 16, blockSize: 1024 });
    await withLoopMount(p, {}, async (m) => {
      fs.mkdirSync(path.join(m, 'd'));
      for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(m, 'd', `f${i}`), `file ${i}\n`);
    });
    return p;
  };
  const mount = async (img: string, opts = '', faults: StoreFault[] = []) => {
    const store = new FaultyStore(await FileStore.open(img), { faults });
    const id = await k.diskAdd({ store });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, opts);
    if (typeof mnt !== 'string') throw new Error(`mount failed: ${mnt}`);
    return { store, id, mnt };
  };
  const unmount = async (id: number) => {
    const u = await k.umountDev(id, 0);
    const r = await k.diskRemove(id);
    return { u, r };
  };
  const writeFile = async (p: string, data: Uint8Array) => {
    const fd = await k.sys.open(p, O_WRONLY | O_CREAT, 0o644);
    if (fd < 0) return { fd, w: fd, s: fd };
    const w = await k.sys.pwrite64(fd, data, 0);
    const s = await k.sys.fsync(fd);
    await k.sys.close(fd);
    return { fd, w, s };
  };
  const readonly = async (mnt: string) => { const s = await k.sys.statfs(mnt); return typeof s !== 'number' && (s.flags & ST_RDONLY) !== 0; };
  const noBug = (t: { same: (a: unknown, b: unknown, m: string) => unknown }, from: number) => t.same(messages.slice(from).filter((m) => /BUG/.test(m)), [], 'no kernel BUG');

  t.test('data writeback fails: fsync says EIO once per file, the fs stays writable, fsck clean, fsync\'d data intact', async (t) => {
    const img = await newImage('data');
    const good = pattern('good'), bad = pattern('bad!');
    const from = messages.length;
    const { store, id, mnt } = await mount(img);
    const g = await writeFile(`${mnt}/good`, good);
    t.same([g.w, g.s], [good.length, 0], 'a file written and fsync\'d before any fault');
    store.addFault({ op: 'write', match: (b) => contains(b, enc('@@bad!@@')) });
    const fd = await k.sys.open(`${mnt}/bad`, O_WRONLY | O_CREAT, 0o644);
    const fd2 = await k.sys.open(`${mnt}/bad`, O_RDONLY, 0);
    t.equal(await k.sys.pwrite64(fd, bad, 0), bad.length, 'the write itself succeeds (into the page cache)');
    t.equal(await k.sys.fsync(fd), -EIO, 'fsync reports the failed writeback: EIO');
    t.equal(await k.sys.fsync(fd), 0, 'a second fsync on the same file has nothing new to report');
    t.equal(await k.sys.fsync(fd2), -EIO, 'another file open before the failure sees it too (errseq)');
    t.ok(store.faults[0]!.hits! > 0, `the fault hit ${store.faults[0]!.hits} write(s)`);
    await k.sys.close(fd); await k.sys.close(fd2);
    t.notOk(await readonly(mnt), 'a data write error does not make the filesystem read-only');
    const after = await writeFile(`${mnt}/after`, enc('after\n'));
    t.same([after.w, after.s], [6, 0], 'new files can still be written and fsync\'d');
    store.clearFaults();
    t.same(await unmount(id), { u: 0, r: 0 }, 'unmounts');
    noBug(t, from);
    const f = await e2fsckClean(img);
    t.ok(f.clean, 'e2fsck -fn clean: only data writes failed', { output: f.output });
    await withLoopMount(img, { ro: true, noload: true }, async (m) => {
      t.ok(fs.readFileSync(path.join(m, 'good')).equals(good), 'the host kernel reads the fsync\'d file back intact');
      t.equal(fs.readFileSync(path.join(m, 'after'), 'utf8'), 'after\n', 'and the one written after the failure');
      t.equal(fs.readdirSync(path.join(m, 'd')).length, 40, 'and the tree that was there');
    });
  });

  t.test('a short (torn) data write is an EIO like a failed one; fsck clean', async (t) => {
    const img = await newImage('short');
    const bad = pattern('torn');
    const from = messages.length;
    const { store, id, mnt } = await mount(img, '', []);
    store.addFault({ op: 'write', match: (b) => contains(b, enc('@@torn@@')), short: 512, times: 1 });
    const r = await writeFile(`${mnt}/torn`, bad);
    t.same([r.w, r.s], [bad.length, -EIO], 'write succeeds, fsync reports EIO');
    t.equal(store.faults[0]!.hits, 1, 'one torn write');
    t.same(await unmount(id), { u: 0, r: 0 }, 'unmounts');
    noBug(t, from);
    const f = await e2fsckClean(img);
    t.ok(f.clean, 'e2fsck -fn clean', { output: f.output });
  });

  t.test('a journal write fails: the journal aborts, the fs goes read-only, replay leaves fsck clean', async (t) => {
    const img = await newImage('journal');
    const good = pattern('kept');
    const from = messages.length;
    const { store, id, mnt } = await mount(img);
    const g = await writeFile(`${mnt}/kept`, good);
    t.same([g.w, g.s], [good.length, 0], 'a file written and fsync\'d before the fault');
    store.addFault({ op: 'write', match: isJournalBlock });
    t.equal(await k.sys.mkdir(`${mnt}/newdir`, 0o755), 0, 'mkdir succeeds (in the running transaction)');
    // fsync of the directory mkdir changed commits its transaction (ext4_sync_file on a
    // directory, as Linux; an fsync of an unchanged file would need no commit).
    const fd = await k.sys.open(mnt, O_RDONLY | O_DIRECTORY, 0);
    const s = await k.sys.fsync(fd);
    await k.sys.close(fd);
    t.ok(s === -EIO || s === -EROFS, `the commit fails: fsync of the directory returns ${s}`);
    t.ok(store.faults[0]!.hits! > 0, 'the journal write was refused');
    // As Linux: the next handle finds the journal aborted ("Detected aborted journal") and
    // the filesystem goes read-only whatever errors= says.
    t.equal(await k.sys.mkdir(`${mnt}/later`, 0o755), -EROFS, 'further changes fail with EROFS');
    t.ok(await readonly(mnt), 'the filesystem is read-only now');
    t.ok(messages.slice(from).some((m) => /abort|read-only/i.test(m)), 'the kernel says why', { messages: messages.slice(from) });
    store.clearFaults();
    const u = await unmount(id);
    t.equal(u.r, 0, `unmount and removal (umount ${u.u})`);
    noBug(t, from);
    // The next mount replays what the log holds; then the image must be consistent.
    const m2 = await mount(img);
    t.notOk(await readonly(m2.mnt), 'mounts read-write again');
    const st = await k.sys.lstat(`${m2.mnt}/kept`);
    t.equal(typeof st === 'number' ? st : st.size, good.length, 'the fsync\'d file is there');
    t.same(await unmount(m2.id), { u: 0, r: 0 }, 'unmounts');
    const f = await e2fsckClean(img);
    t.ok(f.clean, 'e2fsck -fn clean after replay', { output: f.output });
    await withLoopMount(img, { ro: true, noload: true }, async (m) => {
      t.ok(fs.readFileSync(path.join(m, 'kept')).equals(good), 'the host kernel reads the fsync\'d file back intact');
    });
  });

  for (const policy of ['continue', 'remount-ro', 'panic'] as const) {
    t.test(`an inode table read fails: errors=${policy}`, async (t) => {
      const img = await newImage(`policy-${policy}`);
      const dump = (await run('dumpe2fs', [img])).stdout;
      const itable = Number(/Inode table at (\d+)-/.exec(dump)![1]);
      const isize = Number(/Inode size:\s+(\d+)/.exec((await run('dumpe2fs', ['-h', img])).stdout)![1]);
      const from = messages.length;
      // Fail exactly the inode-table block that holds d/f5's inode.
      const ino = Number(/Inode:\s+(\d+)/.exec((await run('debugfs', ['-R', 'stat /d/f5', img])).stdout)![1]);
      const first = itable + Math.floor((ino - 1) * isize / 1024);
      const { store, id, mnt } = await mount(img, `errors=${policy},inode_readahead_blks=0`);
      store.addFault({ op: 'read', pos: first * 1024, len: 1024 });
      const st = await k.sys.lstat(`${mnt}/d/f5`);
      t.equal(st, -EIO, 'the lookup fails with EIO');
      t.ok(messages.slice(from).some((m) => /EXT4-fs error/.test(m)), 'reported as an ext4 error');
      const mk = await k.sys.mkdir(`${mnt}/after`, 0o755);
      if (policy === 'continue') {
        t.notOk(await readonly(mnt), 'errors=continue: still read-write');
        t.equal(mk, 0, 'errors=continue: mkdir still works');
      } else if (policy === 'remount-ro') {
        t.ok(await readonly(mnt), 'errors=remount-ro: read-only now');
        t.equal(mk, -EROFS, 'errors=remount-ro: mkdir fails with EROFS');
      } else {
        t.equal(mk, -EIO, 'errors=panic: the filesystem is shut down, calls fail with EIO');
      }
      store.clearFaults();
      const u = await unmount(id);
      t.equal(u.r, 0, `unmount and removal (umount ${u.u})`);
      noBug(t, from);
      const f = await e2fsckClean(img);
      // What fsck may find: the error the kernel recorded in the superblock, nothing else.
      const findings = f.output.split('\n').filter((l) => /\?|Fix|Clear|differences|error/i.test(l) && !/contains a file system with errors|check forced/.test(l));
      t.same(findings, [], 'e2fsck -fn finds nothing but the recorded error state', { output: f.output });
      const h = (await run('dumpe2fs', ['-h', img])).stdout;
      t.match(h, /Filesystem state:\s+\S*\s*(with errors|not clean with errors)|FS Error count:\s+[1-9]/, 'the error is recorded on disk');
    });
  }
}
