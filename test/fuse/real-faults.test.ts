// Device faults through a real lklfuse mount, ext4 and vfat: the daemon's image store
// fails chosen reads or writes (LKLFUSE_TEST_FAULTS, a FaultyStore around the image), and
// host processes using the mount see what Linux's ext4 gives them — EIO for the failed
// read, EIO from fsync and then EROFS once the journal is aborted — while the daemon keeps
// serving, unmounts on fusermount -u and loses nothing that was reported written:
// e2fsck -fn and the host kernel (loop mount) judge the image afterwards.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  box, fuseSkip, isMounted, overTransports, startForeground, within, type Daemon,
} from './real-helpers.js';
import {
  e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtools, mtoolsReadFile, withLoopMount,
} from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import type { Test } from 'tap';

const execFileP = promisify(execFile);
const skip = fuseSkip(['mke2fs', 'e2fsck', 'debugfs', 'dumpe2fs', 'losetup', 'mount', 'python3', 'mkfs.vfat', 'fsck.vfat', 'mcopy'])
  || whyNot([], { root: true });

/** A host process's view: exit status and stderr (never rejects). */
async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await execFileP(cmd, args, { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

/** Writes `data` to `file` and fsyncs it in a host process: 'ok' or the errno name of the failing step. */
async function writeFsync(file: string, data: string): Promise<string> {
  const py = 'import os,sys\n' +
    'try:\n fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)\nexcept OSError as e:\n print("open",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n os.write(fd,sys.argv[2].encode())\nexcept OSError as e:\n print("write",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n os.fsync(fd)\nexcept OSError as e:\n print("fsync",os.strerror(e.errno)); sys.exit(0)\n' +
    'os.close(fd)\nprint("ok")\n';
  const r = await sh('python3', ['-c', py, file, data]);
  return r.out.trim() || `python3 failed: ${r.err}`;
}

/** As writeFsync, with the bytes of the host file `src` (all of them, in as many writes as it takes); close is checked too. */
async function writeFileFsync(file: string, src: string): Promise<string> {
  const py = 'import os,sys\n' +
    'data=open(sys.argv[2],"rb").read()\n' +
    'try:\n fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)\nexcept OSError as e:\n print("open",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n n=0\n while n<len(data): n+=os.write(fd,data[n:])\nexcept OSError as e:\n print("write",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n os.fsync(fd)\nexcept OSError as e:\n print("fsync",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n os.close(fd)\nexcept OSError as e:\n print("close",os.strerror(e.errno)); sys.exit(0)\n' +
    'print("ok")\n';
  const r = await sh('python3', ['-c', py, file, src]);
  return r.out.trim() || `python3 failed: ${r.err}`;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** Byte range of a file's blocks on the image (contiguous files from mke2fs -d). */
async function fileRange(img: string, name: string, bs: number): Promise<{ pos: number; len: number }> {
  const out = (await run('debugfs', ['-R', `blocks ${name}`, img])).stdout.trim().split(/\s+/).map(Number);
  const first = Math.min(...out), last = Math.max(...out);
  if (last - first + 1 !== out.length) throw new Error(`${name} is not contiguous: ${out.join(' ')}`);
  return { pos: first * bs, len: out.length * bs };
}

/** fusermount -u; the daemon exits within 60 s; the mount is gone. */
async function unmount(t: Test, d: Daemon, mnt: string): Promise<number | null> {
  const u = await sh('fusermount', ['-u', mnt]);
  t.equal(u.code, 0, 'fusermount -u', { stderr: u.err });
  const ex = await within(d.exited, 60_000);
  t.ok(ex.ok, 'the daemon exits', { stderr: d.stderr() });
  t.notOk(await isMounted(mnt), 'no mount left');
  return ex.ok ? ex.value : null;
}


/** FAT32 geometry from the boot sector: where FAT #1 and #2 and cluster 2 start, in bytes. */
function fatGeometry(img: string): { fat1: number; fat2: number; fatBytes: number; data: number; cluster: number } {
  const b = Buffer.alloc(512);
  const fd = fs.openSync(img, 'r');
  try { fs.readSync(fd, b, 0, 512, 0); } finally { fs.closeSync(fd); }
  const bps = b.readUInt16LE(0x0b), spc = b[0x0d]!, reserved = b.readUInt16LE(0x0e), fats = b[0x10]!;
  const fatSectors = b.readUInt32LE(0x24);
  if (b.readUInt16LE(0x16) !== 0 || fats !== 2) throw new Error('not a FAT32 image with two FATs');
  return { fat1: reserved * bps, fat2: (reserved + fatSectors) * bps, fatBytes: fatSectors * bps, data: (reserved + fats * fatSectors) * bps, cluster: bps * spc };
}

/**
 * A FAT32 image with before.bin (random data, copied in by mtools) and where the next file
 * will go: the first cluster after before.bin's (the allocator starts at the next-free
 * hint; the image holds nothing else past the root directory), checked free in both FATs.
 */
async function vfatWithBefore(b: ReturnType<typeof box>, t: Test): Promise<{ img: string; before: Buffer; g: ReturnType<typeof fatGeometry>; next: number }> {
  const img = await makeVfatImage({ fat: 32, sizeMiB: 40, path: b.path('v.img') });
  const before = crypto.randomBytes(64 * 1024);
  fs.writeFileSync(b.path('before.bin'), before);
  await mtools('mcopy', ['-i', img, b.path('before.bin'), '::/']);
  const g = fatGeometry(img);
  const raw = fs.readFileSync(img);
  const at = raw.indexOf(before.subarray(0, 4096));
  const first = (at - g.data) / g.cluster + 2;
  t.ok(Number.isInteger(first) && first >= 3, `before.bin starts at cluster ${first}`);
  const next = first + Math.ceil(before.length / g.cluster);
  t.ok(raw.readUInt32LE(g.fat1 + next * 4) === 0 && raw.readUInt32LE(g.fat2 + next * 4) === 0 && raw.readUInt32LE(g.fat1 + (next - 1) * 4) >= 0x0ffffff8,
    `before.bin ends at cluster ${next - 1}; ${next} is free`);
  return { img, before, g, next };
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  overTransports(t, (t) => {
    t.test('a failed data read: EIO for that file only, the rest served, nothing damaged', async (t) => {
      const b = box(t, 'faults-read');
      const src = b.path('src');
      fs.mkdirSync(src);
      const bad = crypto.randomBytes(256 * 1024), good = crypto.randomBytes(256 * 1024);
      fs.writeFileSync(path.join(src, 'bad.bin'), bad);
      fs.writeFileSync(path.join(src, 'good.bin'), good);
      const img = await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 4096, fromDir: src, path: b.path('r.img') });
      const range = await fileRange(img, '/bad.bin', 4096);
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, [], { LKLFUSE_TEST_FAULTS: JSON.stringify([{ op: 'read', ...range }]) });
      const c = await sh('cat', [path.join(mnt, 'bad.bin')]);
      t.not(c.code, 0, 'reading the file whose blocks fail fails');
      t.match(c.err, /Input\/output error/, 'with EIO, as Linux reports a failed data read');
      const g = await sh('sha256sum', [path.join(mnt, 'good.bin')]);
      t.equal(g.out.split(' ')[0], sha(good), 'the other file reads back intact');
      t.equal(await writeFsync(path.join(mnt, 'new.txt'), 'written after the failure\n'), 'ok', 'writes still work (a data read error is not a filesystem error)');
      const ls = await sh('ls', [mnt]);
      t.strictSame(ls.out.split('\n').filter(Boolean).sort(), ['bad.bin', 'good.bin', 'lost+found', 'new.txt'], 'the daemon still lists the root');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      t.equal(await unmount(t, d, mnt), 0, 'and exits 0 on unmount');
      const f = await e2fsckClean(img);
      t.ok(f.clean, 'e2fsck -fn clean', { output: f.output });
      await withLoopMount(img, { ro: true }, async (m) => {
        t.equal(sha(fs.readFileSync(path.join(m, 'bad.bin'))), sha(bad), 'the host kernel reads the file that failed: its data were never touched');
        t.equal(fs.readFileSync(path.join(m, 'new.txt'), 'utf8'), 'written after the failure\n', 'the host kernel reads the file written through the mount');
      });
    });

    t.test('journal writes fail: fsync says EIO, then the filesystem is read-only; what was synced before survives', async (t) => {
      const b = box(t, 'faults-journal');
      const src = b.path('src');
      fs.mkdirSync(src);
      const kept = crypto.randomBytes(64 * 1024);
      fs.writeFileSync(path.join(src, 'kept.bin'), kept);
      const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, fromDir: src, path: b.path('j.img') });
      // The journal's blocks past its superblock: every commit writes there.
      const jblocks = (await run('debugfs', ['-R', 'blocks <8>', img])).stdout.trim().split(/\s+/).map(Number);
      const first = Math.min(...jblocks), n = jblocks.length;
      const faults = [{ op: 'write', pos: (first + 1) * 4096, len: (n - 1) * 4096 }];
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, ['-o', 'opts=errors=remount-ro'], { LKLFUSE_TEST_FAULTS: JSON.stringify(faults) });
      t.equal(await writeFsync(path.join(mnt, 'lost.txt'), 'never committed\n'), 'fsync Input/output error', 'fsync of a new file fails with EIO (its commit could not be written)');
      const after = await writeFsync(path.join(mnt, 'later.txt'), 'x');
      t.equal(after, 'open Read-only file system', 'the journal is aborted: the next create fails with EROFS');
      const k = await sh('sha256sum', [path.join(mnt, 'kept.bin')]);
      t.equal(k.out.split(' ')[0], sha(kept), 'files already on disk still read');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      await unmount(t, d, mnt);
      const h = (await run('dumpe2fs', ['-h', img])).stdout;
      t.match(h, /Filesystem state:\s+\S*\s*(with errors|not clean with errors)|FS Error count:\s+[1-9]/, 'the error is recorded on disk');
      const f = await e2fsckClean(img);
      // Besides the error state, the superblock's summary free counts may be off by what the
      // lost commit allocated: Linux's ext4_commit_super writes the in-memory counters too
      // (ext4_update_super), and e2fsck corrects them silently when preening.
      const text = f.output.replace(/^Free (blocks|inodes) count wrong \(\d+, counted=\d+\)\.\n+Fix\? no\n/gm, '');
      const findings = text.split('\n').filter((l) => /\?|Fix|Clear|differences|error/i.test(l) && !/contains a file system with errors|check forced/.test(l));
      t.same(findings, [], 'e2fsck -fn finds nothing but the recorded error state (and the summary counts)', { output: f.output });
      await withLoopMount(img, { ro: true, noload: true }, async (m) => {
        t.equal(sha(fs.readFileSync(path.join(m, 'kept.bin'))), sha(kept), 'the host kernel reads the file that was there before');
        t.notOk(fs.existsSync(path.join(m, 'later.txt')), 'nothing was created after the abort');
      });
    });

    t.test('vfat: a failed cluster read is EIO for that file only; the rest is served and written', async (t) => {
      const b = box(t, 'faults-vfat');
      const img = await makeVfatImage({ fat: 32, sizeMiB: 40, path: b.path('v.img') });
      const bad = crypto.randomBytes(128 * 1024), good = crypto.randomBytes(128 * 1024);
      fs.writeFileSync(b.path('bad.bin'), bad);
      fs.writeFileSync(b.path('good.bin'), good);
      await mtools('mcopy', ['-i', img, b.path('bad.bin'), b.path('good.bin'), '::/']);
      // Where bad.bin's clusters are: its (random, so unique) bytes in the image.
      const at = fs.readFileSync(img).indexOf(bad.subarray(0, 4096));
      t.ok(at > 0 && at % 512 === 0, `bad.bin's first cluster found at byte ${at}`);
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, [], { LKLFUSE_TEST_FAULTS: JSON.stringify([{ op: 'read', pos: at, len: bad.length }]) });
      const c = await sh('cat', [path.join(mnt, 'bad.bin')]);
      t.not(c.code, 0, 'reading the file whose clusters fail fails');
      t.match(c.err, /Input\/output error/, 'with EIO');
      const g = await sh('sha256sum', [path.join(mnt, 'good.bin')]);
      t.equal(g.out.split(' ')[0], sha(good), 'the other file reads back intact');
      t.equal(await writeFsync(path.join(mnt, 'new.txt'), 'written after the failure\n'), 'ok', 'writes still work');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      t.equal(await unmount(t, d, mnt), 0, 'and exits 0 on unmount');
      const f = await fsckVfatClean(img);
      t.ok(f.clean, 'fsck.vfat -n clean', { output: f.output });
      t.equal(sha(await mtoolsReadFile(img, '::/bad.bin')), sha(bad), 'mtools reads the file that failed: its data were never touched');
      t.equal((await mtoolsReadFile(img, '::/new.txt')).toString(), 'written after the failure\n', 'mtools reads the file written through the mount');
    });

    /*
     * FAT write errors. Linux's fat calls fat_fs_error (and so applies errors=) only for
     * corruption it finds in what it reads; a failed write is an I/O error for the caller
     * that waits for it (fat_file_fsync: the pages, then the entry, then the FAT buffers,
     * returning -EIO from the first that fails), and the filesystem stays writable under
     * every errors= value.
     * A failed data page stays in the page cache, clean and marked in error; a failed buffer
     * is no longer uptodate nor dirty: nothing retries it later. So: fsync says EIO, other
     * files are read and written as before, the daemon survives and unmounts, and on disk
     * only what fsync reported lost differs from what was written.
     */
    t.test('vfat: a failed cluster write is EIO from fsync, even under errors=panic; the rest is untouched', async (t) => {
      const b = box(t, 'faults-vfat-data');
      const { img, before, g, next } = await vfatWithBefore(b, t);
      const victim = crypto.randomBytes(256 * 1024);
      // victim.bin's clusters are the next ones: all of its data writes fail.
      const range = { pos: g.data + (next - 2) * g.cluster, len: victim.length };
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, ['-o', 'opts=errors=panic'], { LKLFUSE_TEST_FAULTS: JSON.stringify([{ op: 'write', ...range }]) });
      fs.writeFileSync(b.path('victim.bin'), victim);
      t.equal(await writeFileFsync(path.join(mnt, 'victim.bin'), b.path('victim.bin')), 'fsync Input/output error', 'fsync of the file whose clusters cannot be written fails with EIO');
      t.equal(d.child.exitCode, null, 'the daemon is alive (a write error is no fat_fs_error: errors=panic does not apply)');
      const good = crypto.randomBytes(128 * 1024);
      fs.writeFileSync(b.path('good.bin'), good);
      t.equal(await writeFileFsync(path.join(mnt, 'good.bin'), b.path('good.bin')), 'ok', 'another file is written and fsync\'d (the filesystem stays writable)');
      const r = await sh('sha256sum', [path.join(mnt, 'before.bin'), path.join(mnt, 'good.bin')]);
      t.strictSame(r.out.split('\n').filter(Boolean).map((l) => l.split(' ')[0]), [sha(before), sha(good)], 'the file that was there and the new one read back intact');
      const ls = await sh('ls', [mnt]);
      t.strictSame(ls.out.split('\n').filter(Boolean).sort(), ['before.bin', 'good.bin', 'victim.bin'], 'the daemon still lists the root');
      t.equal(await unmount(t, d, mnt), 0, 'and exits 0 on unmount');
      const f = await fsckVfatClean(img);
      t.ok(f.clean, 'fsck.vfat -n clean: a lost data write damages no structure', { output: f.output });
      t.equal(sha(await mtoolsReadFile(img, '::/before.bin')), sha(before), 'mtools reads before.bin intact');
      t.equal(sha(await mtoolsReadFile(img, '::/good.bin')), sha(good), 'and good.bin, whose fsync said ok');
      const v = await mtoolsReadFile(img, '::/victim.bin');
      t.equal(v.length, victim.length, 'victim.bin\'s entry and chain were written (its size is there)');
      t.ok(v.equals(Buffer.alloc(victim.length)), 'but not its data: the clusters hold what they held (zeros), as fsync reported');
    });

    t.test('vfat: a failed FAT-sector write is EIO from fsync; the mount stays writable; only that file\'s chain is damaged', async (t) => {
      const b = box(t, 'faults-vfat-fat');
      const { img, before, g, next } = await vfatWithBefore(b, t);
      // 2 MiB = 4,096 clusters of 512 bytes: 16 KiB of FAT #1 entries; one 4 KiB page of
      // them, wholly inside victim.bin's chain, cannot be written (FAT #2's copy can).
      const victim = crypto.randomBytes(2 * 1024 * 1024);
      const chain = { from: g.fat1 + next * 4, to: g.fat1 + (next + victim.length / g.cluster) * 4 };
      const pos = Math.ceil(chain.from / 4096) * 4096 + 4096;
      t.ok(pos + 4096 <= chain.to, `the failing FAT page ${pos}+4096 lies inside victim.bin's entries ${chain.from}..${chain.to}`);
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, ['-o', 'opts=errors=remount-ro'], { LKLFUSE_TEST_FAULTS: JSON.stringify([{ op: 'write', pos, len: 4096 }]) });
      fs.writeFileSync(b.path('victim.bin'), victim);
      t.equal(await writeFileFsync(path.join(mnt, 'victim.bin'), b.path('victim.bin')), 'fsync Input/output error', 'fsync of the file whose FAT entries cannot be written fails with EIO');
      const good = crypto.randomBytes(128 * 1024);
      fs.writeFileSync(b.path('good.bin'), good);
      t.equal(await writeFileFsync(path.join(mnt, 'good.bin'), b.path('good.bin')), 'ok', 'another file is written and fsync\'d: not remounted read-only (errors= is for corruption found, not for I/O errors)');
      const r = await sh('sha256sum', [path.join(mnt, 'before.bin'), path.join(mnt, 'good.bin')]);
      t.strictSame(r.out.split('\n').filter(Boolean).map((l) => l.split(' ')[0]), [sha(before), sha(good)], 'the file that was there and the new one read back intact');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      t.equal(await unmount(t, d, mnt), 0, 'and exits 0 on unmount');
      // On disk: FAT #1 without the failed page of victim.bin's entries, FAT #2 with them
      // (its copy was written), the entry with the full size. fsck finds exactly that.
      const f = await fsckVfatClean(img);
      const findings = f.output.split('\n').filter((l) => l.trim() && !/^fsck\.fat \d|: \d+ files, \d+\/\d+ clusters$|^Leaving filesystem unchanged/.test(l));
      const victimDamage = [/^FATs differ but appear to be intact\.$/, /^ {2}Using first FAT\.$/, /^\/victim\.bin$/,
        /^ {2}Contains a free cluster \(\d+\)\. Assuming EOF\.$/, /^ {2}File size is 2097152 bytes, cluster chain length is \d+ bytes\.$/,
        /^ {2}Truncating file to \d+ bytes\.$/, /^Reclaimed \d+ unused clusters \(\d+ bytes\)\.$/,
        /^Free cluster summary wrong \(\d+ vs\. really \d+\)$/, /^ {2}Auto-correcting\.$/];
      t.ok(findings.includes('/victim.bin') && findings.some((l) => /Contains a free cluster/.test(l)), 'fsck.vfat -n finds victim.bin\'s chain broken where the FAT page was not written', { output: f.output });
      t.strictSame(findings.filter((l) => !victimDamage.some((re) => re.test(l))), [], 'and nothing else: the FAT copies differing there, victim.bin\'s lost clusters and the free count they make wrong', { output: f.output });
      t.ok(Number(/cluster chain length is (\d+) bytes/.exec(f.output)?.[1]) < victim.length, 'victim.bin is cut short, not longer');
      t.equal(sha(await mtoolsReadFile(img, '::/before.bin')), sha(before), 'mtools reads before.bin intact');
      t.equal(sha(await mtoolsReadFile(img, '::/good.bin')), sha(good), 'and good.bin, whose fsync said ok');
    });
  });
}
