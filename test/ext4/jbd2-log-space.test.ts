/*
 * A commit short of log space (jbd2, data=journal): the transaction that deletes a file
 * whose journalled blocks still wait for a checkpoint. Those copies pin their transaction
 * in the log until the deleting transaction commits, so that commit, when it is bigger than
 * what is left, used to find too little log even after a checkpoint, abort the journal and
 * lose itself (CI: write-exerciser, data=journal 1k, seed 2: the filesystem left needing
 * recovery, the last changes gone, umount returning 0). Now the commit writes the pinned
 * copies home (jbd2_log_do_checkpoint's pendingCancels) and goes on.
 *
 * The test insists that the path ran (j_stats.pinned_checkpoints), that the journal did not
 * abort, and after unmount: e2fsck -fn clean, no recovery pending, and the host kernel sees
 * exactly the files that should be there, as written.
 *
 * The second test: a checkpoint copy that no pass can write (it stands for one freed by a
 * transaction that never commits) must keep the log at unmount. jbd2_journal_destroy used to
 * skip marking the log empty without a word, and ext4 then cleared needs_recovery over a log
 * still holding what the disk lacked (e2fsck found the damage).
 */
import t from 'tap';
import path from 'node:path';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { makeExtImage, withLoopMount, e2fsckClean } from '../lib/images.js';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { prngBytes } from '../lib/tree.js';
import { jbd2_debug } from '../../lib/kernel/fs/jbd2/journal.js';
import { startKernel, O_CREAT, O_WRONLY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount'], { root: true });

/** A file's bytes, different per name. */
const content = (name: string, size: number): Buffer => prngBytes(name.charCodeAt(0), size);

async function writeFile(k: Kernel, p: string, data: Buffer, sync: boolean): Promise<void> {
  const fd = await k.sys.open(p, O_CREAT | O_WRONLY, 0o644);
  if (fd < 0) throw new Error(`open ${p}: ${fd}`);
  for (let o = 0; o < data.length; o += 1024) {
    const n = await k.sys.pwrite64(fd, data.subarray(o, o + 1024), o);
    if (n !== Math.min(1024, data.length - o)) throw new Error(`pwrite ${p} at ${o}: ${n}`);
  }
  const r = sync ? await k.sys.fsync(fd) : 0;
  if (r !== 0) throw new Error(`fsync ${p}: ${r}`);
  await k.sys.close(fd);
}

t.test('data=journal, 1 KiB blocks: the commit of a delete whose file\'s journalled blocks pin the log', { skip }, async (t) => {
  const dir = scratchDir(t, 'jbd2-space');
  const img = path.join(dir, 'j.img');
  await makeExtImage({ type: 'ext4', sizeMiB: 96, blockSize: 1024, path: img });
  const k = await startKernel({ memMiB: 128 });
  t.teardown(() => k.halt());
  const id = await k.diskAdd({ path: img });
  const mnt = await k.mountDev(id, 0, 'ext4', 0, 'data=journal,commit=60');
  if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
  const j = jbd2_debug.last!;
  t.equal(j.j_last - j.j_first + 1, 4096, 'a 4096-block log');
  // The transaction that deletes a must outgrow what is left of the log. A transaction grows
  // past j_max_transaction_buffers while handles keep joining it before its commit starts
  // (the exerciser's two writers did); here that limit is lifted so that one writer does it.
  j.j_max_transaction_buffers = 1e9;
  const files: [string, number][] = [['a', 1000], ['b', 1000]];
  for (const [name, kib] of files) await writeFile(k, `${mnt}/${name}`, content(name, kib * 1024), true);
  t.ok(j.j_cp.size > 1900, `a and b committed, not checkpointed (${j.j_cp.size} copies wait)`);
  t.equal(await k.sys.unlink(`${mnt}/a`), 0, 'a deleted');
  await writeFile(k, `${mnt}/c`, content('c', 2200 * 1024), false);
  // Unmount commits it: about 2,200 blocks with some 2,040 free, and a's copies, cancelled by
  // this very transaction, keep a's transaction (the oldest) in the log.
  t.equal(await k.umountDev(id, 0), 0, 'unmounted');
  t.ok(j.j_stats.pinned_checkpoints > 0, `the commit found the log pinned and wrote the pinned copies home (${JSON.stringify(j.j_stats)})`);
  t.notOk(j.j_aborted, 'the journal did not abort');
  await k.diskRemove(id);
  const ck = await e2fsckClean(img);
  t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output.slice(0, 3000) });
  const dump = spawnSync('dumpe2fs', ['-h', img], { encoding: 'utf8' });
  t.notMatch(dump.stdout, /needs_recovery/, 'no recovery pending');
  await withLoopMount(img, { ro: true }, async (m) => {
    t.same(fs.readdirSync(m).filter((n) => n !== 'lost+found').sort(), ['b', 'c'], 'the host kernel sees b and c, not a');
    t.ok(fs.readFileSync(path.join(m, 'b')).equals(content('b', 1000 * 1024)), 'b as written');
    t.ok(fs.readFileSync(path.join(m, 'c')).equals(content('c', 2200 * 1024)), 'c as written');
  });
});

t.test('a checkpoint copy that cannot go home at unmount: the log is kept for recovery, not marked empty', { skip }, async (t) => {
  const dir = scratchDir(t, 'jbd2-destroy');
  const img = path.join(dir, 'd.img');
  await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 1024, path: img });
  const messages: string[] = [];
  const k = await startKernel({ memMiB: 64, print: (m) => { messages.push(m); } });
  t.teardown(() => k.halt());
  const id = await k.diskAdd({ path: img });
  const mnt = await k.mountDev(id, 0, 'ext4', 0, 'commit=60');
  if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
  const j = jbd2_debug.last!;
  await writeFile(k, `${mnt}/f`, content('f', 64 * 1024), true);
  t.ok(j.j_cp.size > 0, `committed, not checkpointed (${j.j_cp.size} copies wait)`);
  // One copy made unwritable: marked as freed by a transaction that will never commit. Every
  // checkpoint pass must skip it, so unmount cannot empty the log.
  const pinned = [...j.j_cp.values()][0]!;
  pinned.cancelled_by = (j.j_commit_sequence + 1000) >>> 0;
  t.equal(await k.umountDev(id, 0), 0, 'unmounted (umount(2) succeeds, as Linux\'s does after a journal error)');
  t.ok(messages.some((m) => /checkpoint buffers left unwritten; the log is kept for recovery/.test(m) && /needs_recovery left set/.test(m)),
    'the kernel says why the log is kept', { messages: messages.slice(-5) });
  await k.diskRemove(id);
  const dump = spawnSync('dumpe2fs', ['-h', img], { encoding: 'utf8' });
  t.match(dump.stdout, /needs_recovery/, 'ext4 keeps needs_recovery set');
  t.notMatch(dump.stdout, /Journal start:\s+0\b/, 'and the log is not marked empty');
  // The host replays the log and finds the file as written.
  await withLoopMount(img, {}, async (m) => {
    t.ok(fs.readFileSync(path.join(m, 'f')).equals(content('f', 64 * 1024)), 'the host kernel replays the log and reads f as written');
  });
  const ck = await e2fsckClean(img);
  t.ok(ck.clean, 'e2fsck -fn clean after the replay', { output: ck.output.slice(0, 3000) });
});
