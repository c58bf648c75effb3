// The journal really holds the metadata. A child mounts an image read-write with
// checkpoints turned off (a test hook), writes a known tree, syncs (a commit: the file data
// goes home, data=ordered, the metadata only to the log) and is killed. Then:
//   - `debugfs -R logdump` shows the committed transactions (descriptor and commit blocks),
//   - without replay the new tree is not in the filesystem (its directories are only logged),
//   - the host kernel's mount replays the log (checking its checksums) and the tree is there,
//     content included, and `e2fsck -fn` is clean.
// On default ext4 (4 KiB and 1 KiB blocks: 64bit tags, checksum v3) and ext3 (32-bit tags,
// no checksums).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, type ExtType } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { checkKnownTree, knownTree, pattern } from './jbd2-write-tree.js';
import { crashChild } from './jbd2-write-crash-util.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'debugfs', 'losetup', 'mount'], { root: true });

const CASES: { type: ExtType; blockSize: number; features: RegExp; async?: boolean }[] = [
  { type: 'ext4', blockSize: 4096, features: /journal_64bit.*journal_checksum_v3|journal_checksum_v3.*journal_64bit/ },
  { type: 'ext4', blockSize: 1024, features: /journal_checksum_v3/ },
  { type: 'ext3', blockSize: 4096, features: /.*/ },
  // v1 checksums (crc32 over each transaction, in its commit block) with async_commit, as
  // Linux's journal_async_commit mount option leaves a journal: set by hand in its superblock.
  { type: 'ext3', blockSize: 1024, features: /journal_checksum.*journal_async_commit|journal_async_commit.*journal_checksum/, async: true },
];

/** Set feature bits in the journal superblock (journals without v2/v3 checksums only). */
async function setJournalFeatures(img: string, bs: number, compat: number, incompat: number): Promise<void> {
  const blk = Number((await run('debugfs', ['-R', 'bmap <8> 0', img])).stdout.trim());
  const fd = fs.openSync(img, 'r+');
  const b = Buffer.alloc(8);
  fs.readSync(fd, b, 0, 8, blk * bs + 0x24);
  b.writeUInt32BE((b.readUInt32BE(0) | compat) >>> 0, 0);
  b.writeUInt32BE((b.readUInt32BE(4) | incompat) >>> 0, 4);
  fs.writeSync(fd, b, 0, 8, blk * bs + 0x24);
  fs.closeSync(fd);
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'jbd2-log');
  CASES.forEach((c, i) => {
    t.test(`${c.type} ${c.blockSize}${c.async ? ' async_commit + v1 checksums' : ''}: committed, not checkpointed, killed; logdump and host replay`, async (t) => {
      const img = path.join(dir, `log-${i}.img`);
      await makeExtImage({ type: c.type, sizeMiB: 64, blockSize: c.blockSize, path: img });
      if (c.async) await setJournalFeatures(img, c.blockSize, 0x1 /* COMPAT_CHECKSUM */, 0x4 /* ASYNC_COMMIT */);
      const seed = 40 + i;
      t.match(await crashChild('log', img, seed, 200), /^SYNCED /, 'the child synced and was killed');
      const log = (await run('debugfs', ['-R', 'logdump', img], { allowFail: true })).stdout;
      const commits = (log.match(/type 2 \(commit block\)/g) ?? []).length;
      const descs = (log.match(/type 1 \(descriptor block\)/g) ?? []).length;
      t.ok(commits >= 2 && descs >= 2, `logdump shows the transactions (${commits} commit blocks, ${descs} descriptor blocks)`, { log: log.slice(0, 2000) });
      t.match(log, /type 5 \(revoke table\)/, 'and revoke records (the blocks freed before the tree was written)');
      const tags = (await run('debugfs', ['-R', 'logdump -a', img], { allowFail: true })).stdout;
      t.match(tags, /logged at journal block \d+ \(flags 0x[0-9a-f]*[13579bdf]\)/,
        'and an escaped block (the symlink block starting with the jbd2 magic)');
      const hdr = (await run('dumpe2fs', ['-h', img], { allowFail: true })).stdout;
      t.match(hdr, /needs_recovery/, 'needs_recovery is set');
      t.match(hdr.match(/Journal features:.*/)?.[0] ?? '', c.features, 'journal features as Linux would set them');
      const ls = await run('debugfs', ['-R', 'ls -l /known', img], { allowFail: true });
      t.notMatch(ls.stdout, /file-0/, 'before replay the tree is not in place (only in the log)');
      const bad = await withLoopMount(img, {}, async (m) => checkKnownTree(m, seed));
      t.same(bad, [], 'after the host kernel\'s replay the tree is there with its content');
      const ck = await e2fsckClean(img);
      t.ok(ck.clean, 'e2fsck -fn is clean after the replay', { output: ck.output });
      fs.rmSync(img, { force: true });
    });
  });

  t.test('with delayed allocation the timer commits the names; unsynced files are whole or empty, never garbage', async (t) => {
    // Linux's ext4 behaves so: a file's blocks, and so its data and on-disk size, reach a
    // transaction when writeback allocates them (dirty pages expire after 30 s), while the
    // directory entries are committed by the timer. The on-disk size never covers blocks
    // that were not written.
    const img = path.join(dir, 'timer-da.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: img });
    const seed = 51;
    t.equal(await crashChild('timer-da', img, seed, 3000), 'WRITTEN', 'the child wrote the tree, waited 3 s and was killed');
    const bad = await withLoopMount(img, {}, async (m) => {
      const out: string[] = [];
      let empty = 0, whole = 0;
      for (const e of knownTree(seed)) {
        const p = path.join(m, e.path);
        let st: fs.Stats;
        try { st = fs.lstatSync(p); } catch { out.push(`${e.path}: missing`); continue; }
        if (e.type !== 'file') continue;
        if (st.size === 0) { empty++; continue; }
        if (st.size !== e.size || Buffer.compare(fs.readFileSync(p), Buffer.from(pattern(e.size!, e.seed!))) !== 0) out.push(`${e.path}: size ${st.size} of ${e.size}, or content differs`);
        else whole++;
      }
      t.ok(empty + whole > 0, `files: ${whole} whole, ${empty} empty`);
      return out;
    });
    t.same(bad, [], 'after the host kernel\'s replay every name is there and every file is whole or empty');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean after the replay', { output: ck.output });
  });

  t.test('auto_da_alloc: a file replaced by rename, or rewritten after O_TRUNC, is never found empty after a crash', async (t) => {
    const img = path.join(dir, 'replace.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: img });
    const seed = 52;
    t.equal(await crashChild('replace', img, seed, 3000), 'WRITTEN', 'the child replaced both files, waited 3 s and was killed');
    await withLoopMount(img, {}, async (m) => {
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'victim')), Buffer.from(pattern(250_000, seed + 2))) === 0,
        'the renamed-over file has the new copy, whole');
      t.notOk(fs.existsSync(path.join(m, 'victim.tmp')), 'the temporary name is gone');
      t.ok(Buffer.compare(fs.readFileSync(path.join(m, 'rewritten')), Buffer.from(pattern(150_000, seed + 3))) === 0,
        'the file rewritten after O_TRUNC has its new content, whole');
    });
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean after the replay', { output: ck.output });
  });

  t.test('the commit timer (commit=1) makes changes durable without any sync (nodelalloc)', async (t) => {
    const img = path.join(dir, 'timer.img');
    await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, path: img });
    const seed = 50;
    t.equal(await crashChild('timer', img, seed, 3000), 'WRITTEN', 'the child wrote the tree, waited 3 s and was killed');
    const log = (await run('debugfs', ['-R', 'logdump', img], { allowFail: true })).stdout;
    t.match(log, /type 2 \(commit block\)/, 'the log has commits');
    const bad = await withLoopMount(img, {}, async (m) => checkKnownTree(m, seed, false));
    t.same(bad, [], 'after the host kernel\'s replay the tree is there with its content');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean after the replay', { output: ck.output });
  });
}
