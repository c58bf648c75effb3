/*
 * Keeps two lklfuse processes from mounting one image read-write at once.
 *
 * The lock is flock(2) on the image file itself (or on lock=FILE): exclusive for a
 * read-write mount, shared for a read-only one, so any number of read-only mounts may share
 * an image but never with a writer. flock locks belong to an open file, are advisory (the
 * image is not modified, and no file is created next to it) and vanish when the holder
 * dies, even by SIGKILL, so there is nothing stale to clean up.
 *
 * Node cannot call flock(2) without a native addon, so a helper process holds it:
 * `flock -n [-s|-x] FILE sh -c 'echo L; exec cat'` from util-linux. It reports "L" once
 * the lock is taken, then `cat` waits on a pipe from us: when we exit (however we exit) the
 * pipe closes, cat and flock exit, and the lock is released.
 */
import { spawn } from 'node:child_process';
import createDebug from 'debug';

const debug = createDebug('lkl:fuse');

/** flock's exit status when -n finds the lock taken (chosen with -E). */
const CONFLICT_STATUS = 75;

export type LockResult =
  | { ok: true; release(): void }
  | { ok: false; conflict: boolean; message: string };

/** Takes the lock; `what` names the file in messages ("image" or "lock file /x"). */
export function acquireLock(file: string, shared: boolean, what = file): Promise<LockResult> {
  return new Promise((resolve) => {
    const child = spawn('flock', ['-n', '-E', String(CONFLICT_STATUS), shared ? '-s' : '-x', '--', file,
      'sh', '-c', 'echo L; exec cat'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let out = '', err = '', settled = false;
    const settle = (r: LockResult) => { if (!settled) { settled = true; resolve(r); } };
    child.on('error', (e: NodeJS.ErrnoException) => settle({
      ok: false, conflict: false,
      message: e.code === 'ENOENT' ? 'cannot lock: flock(1) not found (install util-linux, or use -o nolock)' : `cannot lock: ${e.message}`,
    }));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.startsWith('L')) return;
      debug('locked %s (%s), helper pid %d', file, shared ? 'shared' : 'exclusive', child.pid);
      // The helper must not keep our event loop alive; it has its own process group
      // (detached) so a Ctrl-C meant for us does not drop the lock before we are done.
      child.unref();
      child.stdout.destroy();
      child.stderr.destroy();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
      settle({ ok: true, release: () => { child.stdin.destroy(); } });
    });
    child.on('exit', (code) => {
      if (code === CONFLICT_STATUS) {
        settle({ ok: false, conflict: true, message: `${what} is locked by another lklfuse (mounted${shared ? ' read-write' : ''} elsewhere)` });
      } else {
        settle({ ok: false, conflict: false, message: `cannot lock ${file}: ${err.trim().replace(/^flock: /, '') || `flock exited with status ${code}`}` });
      }
    });
  });
}
