/*
 * Locks and the file-range calls through lklfuse on ext4, against the host kernel's own ext4
 * (a loop mount of a copy of the same image), outcome by outcome (issue 13).
 *
 * Locks, over both transports: lklfuse asks for neither FUSE_POSIX_LOCKS nor FUSE_FLOCK_LOCKS
 * (the lkl-ts kernel has no file locks; fuse-native's binding has no lock operation either),
 * so the host kernel keeps the mount's locks itself, as it keeps them for its ext4. The same
 * sequence runs in both places with three real processes (lock-child.py, each answering a
 * command a line; a blocked command is known blocked when /proc/locks lists its waiter, not
 * after a sleep): flock shared/exclusive/non-blocking conflicts, conversion both ways (and the
 * shared lock a refused non-blocking upgrade gives up, Linux's non-atomic conversion),
 * release on close and on process exit; flock and fcntl locks not seeing each other; fcntl
 * F_SETLK/F_SETLKW/F_GETLK on byte ranges (the holder's pid, type, start and length), a
 * middle piece unlocked (the lock splits), a read lock inside a write lock (three pieces),
 * neighbours merging, deadlock detection (EDEADLK), every lock of a process released by any
 * close of the file and by its exit; OFD locks (F_OFD_SETLK/SETLKW/GETLK: owned by the open
 * file description, pid -1, conflicting with the same process's other descriptions and
 * classic locks). Each answer and each /proc/locks listing of the file (pids by process
 * name) is written below as Linux's answer; the host's run must give exactly these, and
 * each lklfuse run exactly the host's.
 *
 * fallocate (every mode ext4 has, and the refusals), SEEK_DATA/SEEK_HOLE maps (delayed,
 * written, preallocated and punched ranges), copy_file_range (whole, into the middle, past
 * EOF, overlapping, flags, bad descriptors), with sizes, st_blocks and contents, over the
 * kernel transport (fuse-native has none of them, README says so). Every image ends
 * e2fsck -fn clean, and the host reads the files lklfuse left as the ones it made itself.
 */
import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { box, fuseSkip, overTransports, startForeground, stopDaemon, transportSkip, waitFor, within } from './real-helpers.js';

const CHILD = fileURLToPath(new URL('../../../test/fuse/lock-child.py', import.meta.url));
const skip = fuseSkip(['mke2fs', 'e2fsck', 'losetup', 'mount', 'umount', 'python3'])
  || (process.getuid?.() !== 0 ? 'loop mounts need root' : false)
  || (fs.existsSync(CHILD) ? false : `the lock process ${CHILD} is missing (the test runs from the repository's dist/)`);

/* ---------- the lock processes ---------- */

class Actor {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<void>;
  private buf = '';
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  /** The answer of a blocking command sent and not awaited yet. */
  pending: Promise<string> | undefined;

  constructor(readonly name: string) {
    this.child = spawn('python3', [CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) { this.lines.push(this.buf.slice(0, i)); this.buf = this.buf.slice(i + 1); }
      this.wake?.();
    });
    let err = '';
    this.child.stderr.on('data', (d: Buffer) => { err += d; });
    this.exited = new Promise((r) => this.child.on('exit', () => { if (err) process.stderr.write(`${name}: ${err}`); r(); this.wake?.(); }));
  }

  get pid(): number { return this.child.pid!; }
  get answered(): boolean { return this.lines.length > 0; }
  get dead(): boolean { return this.child.exitCode !== null || this.child.signalCode !== null; }

  async next(): Promise<string> {
    while (this.lines.length === 0) {
      if (this.dead) return '(exited)';
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
    return this.lines.shift()!;
  }

  send(cmd: string): Promise<string> {
    this.child.stdin.write(cmd + '\n');
    return this.next();
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/* ---------- the lock sequence, with Linux's answers ---------- */

/*
 * [actor, command, answer]: an actor's command (lock-child.py's language; a file operand is
 * a name in the mount) and what it must answer;
 * ['block', actor, command]: the command must block (its waiter shows in /proc/locks);
 * ['await', actor, answer]: what the blocked command answers once it returns;
 * ['kill', actor] (SIGKILL: the process exits holding its locks); ['spawn', actor];
 * ['locks', file, listing]: the file's locks in /proc/locks, "[-> ]KIND TYPE PID START END",
 * pids by actor name (OFD locks show -1), sorted.
 */
type Step = [actor: string, cmd: string, answer: string] | ['block', string, string] | ['await', string, string]
  | ['kill', string] | ['spawn', string] | ['locks', string, string[]];

const FILES = ['flk', 'mix', 'pos', 'ofd'];

const SEQUENCE: Step[] = [
  // flock(2): shared, exclusive, non-blocking.
  ['A', 'open a flk', 'ok'], ['B', 'open b flk', 'ok'], ['C', 'open c flk', 'ok'],
  ['A', 'flock a sh', 'ok'],
  ['B', 'flock b sh|nb', 'ok'],
  ['C', 'flock c ex|nb', 'EAGAIN'],
  ['locks', 'flk', ['FLOCK READ A 0 EOF', 'FLOCK READ B 0 EOF']],
  // A refused non-blocking upgrade: the conversion is not atomic, A's shared lock is gone.
  ['A', 'flock a ex|nb', 'EAGAIN'],
  ['locks', 'flk', ['FLOCK READ B 0 EOF']],
  ['B', 'flock b un', 'ok'],
  ['A', 'flock a ex|nb', 'ok'],
  ['B', 'flock b sh|nb', 'EAGAIN'],
  ['locks', 'flk', ['FLOCK WRITE A 0 EOF']],
  ['A', 'flock a sh', 'ok'], // downgrade
  ['B', 'flock b sh|nb', 'ok'],
  ['block', 'C', 'flock c ex'],
  ['locks', 'flk', ['-> FLOCK WRITE C 0 EOF', 'FLOCK READ A 0 EOF', 'FLOCK READ B 0 EOF']],
  ['B', 'close b', 'ok'], // released on close
  // Another open file description of the same process is another owner.
  ['A', 'open a2 flk', 'ok'],
  ['A', 'flock a2 ex|nb', 'EAGAIN'],
  ['A', 'close a2', 'ok'], // and closing it leaves a's lock alone
  ['locks', 'flk', ['-> FLOCK WRITE C 0 EOF', 'FLOCK READ A 0 EOF']],
  ['kill', 'A'], // released when the process exits: C gets its lock
  ['await', 'C', 'ok'],
  ['locks', 'flk', ['FLOCK WRITE C 0 EOF']],
  ['C', 'close c', 'ok'],
  ['locks', 'flk', []],
  ['spawn', 'A'],

  // flock and fcntl locks do not see each other (on Linux's local locks).
  ['A', 'open m mix', 'ok'], ['B', 'open m mix', 'ok'],
  ['A', 'flock m ex', 'ok'],
  ['B', 'setlk m w 0 0', 'ok'],
  ['A', 'setlk m w 0 1', 'EAGAIN'],
  ['B', 'flock m sh|nb', 'EAGAIN'],
  ['locks', 'mix', ['FLOCK WRITE A 0 EOF', 'POSIX WRITE B 0 EOF']],
  ['A', 'close m', 'ok'], ['B', 'close m', 'ok'],
  ['locks', 'mix', []],

  // fcntl byte-range locks.
  ['A', 'open p pos', 'ok'], ['B', 'open p pos', 'ok'],
  ['A', 'setlk p w 0 100', 'ok'],
  ['B', 'getlk p w 0 0', 'w A 0 100'],
  ['B', 'getlk p r 99 1', 'w A 0 100'],
  ['B', 'getlk p r 100 0', 'unlck'],
  ['B', 'setlk p r 50 10', 'EAGAIN'],
  ['B', 'setlk p w 100 50', 'ok'],
  ['A', 'getlk p w 0 0', 'w B 100 50'], // a process's own locks never conflict with it
  ['A', 'setlk p u 40 20', 'ok'], // a middle piece unlocked: the lock splits
  ['locks', 'pos', ['POSIX WRITE A 0 39', 'POSIX WRITE A 60 99', 'POSIX WRITE B 100 149']],
  ['B', 'getlk p w 40 20', 'unlck'],
  ['B', 'getlk p w 30 40', 'w A 0 40'],
  ['B', 'setlk p w 40 20', 'ok'],
  ['B', 'setlk p u 40 20', 'ok'],
  ['A', 'setlk p r 20 10', 'ok'], // a read lock inside A's write lock: three pieces
  ['locks', 'pos', ['POSIX READ A 20 29', 'POSIX WRITE A 0 19', 'POSIX WRITE A 30 39', 'POSIX WRITE A 60 99', 'POSIX WRITE B 100 149']],
  ['B', 'getlk p r 20 10', 'unlck'],
  ['B', 'getlk p w 20 10', 'r A 20 10'],
  ['B', 'setlk p r 25 10', 'EAGAIN'],
  ['B', 'setlk p r 20 10', 'ok'],
  ['A', 'setlk p w 40 20', 'ok'], // fills the gap: merges with the write locks on both sides
  ['locks', 'pos', ['POSIX READ A 20 29', 'POSIX READ B 20 29', 'POSIX WRITE A 0 19', 'POSIX WRITE A 30 99', 'POSIX WRITE B 100 149']],
  ['A', 'setlk p w 0 0', 'EAGAIN'],
  ['B', 'close p', 'ok'], // all of B's locks go
  ['A', 'setlk p w 0 0', 'ok'], // one lock over everything
  ['locks', 'pos', ['POSIX WRITE A 0 EOF']],
  ['B', 'open p pos', 'ok'],
  ['block', 'B', 'setlkw p w 10 10'],
  ['locks', 'pos', ['-> POSIX WRITE B 10 19', 'POSIX WRITE A 0 EOF']],
  ['A', 'setlk p u 0 20', 'ok'],
  ['await', 'B', 'ok'],
  ['locks', 'pos', ['POSIX WRITE A 20 EOF', 'POSIX WRITE B 10 19']],
  // A waits for B; B waiting for A would deadlock.
  ['block', 'A', 'setlkw p w 10 5'],
  ['B', 'setlkw p w 30 5', 'EDEADLK'],
  ['B', 'setlk p u 10 10', 'ok'],
  ['await', 'A', 'ok'],
  ['locks', 'pos', ['POSIX WRITE A 10 14', 'POSIX WRITE A 20 EOF']],
  // Any close of the file by the owner process releases all its locks on it.
  ['A', 'open p2 pos', 'ok'],
  ['A', 'close p2', 'ok'],
  ['locks', 'pos', []],
  ['B', 'getlk p w 0 0', 'unlck'],
  // And so does its exit.
  ['A', 'setlk p r 0 10', 'ok'],
  ['B', 'getlk p w 5 1', 'r A 0 10'],
  ['block', 'B', 'setlkw p w 0 1'],
  ['kill', 'A'],
  ['await', 'B', 'ok'],
  ['locks', 'pos', ['POSIX WRITE B 0 0']],
  ['B', 'close p', 'ok'],
  ['spawn', 'A'],

  // Open file description locks.
  ['A', 'open o1 ofd', 'ok'], ['A', 'open o2 ofd', 'ok'], ['B', 'open o ofd', 'ok'],
  ['A', 'ofdsetlk o1 w 0 10', 'ok'],
  ['A', 'ofdsetlk o2 w 5 10', 'EAGAIN'], // the same process's other description conflicts
  ['A', 'ofdgetlk o2 w 0 0', 'w -1 0 10'],
  ['A', 'setlk o2 w 0 1', 'EAGAIN'], // and so does its classic lock
  ['B', 'getlk o r 0 0', 'w -1 0 10'],
  ['A', 'close o2', 'ok'], // closing another descriptor keeps it
  ['locks', 'ofd', ['OFDLCK WRITE -1 0 9']],
  ['block', 'B', 'ofdsetlkw o r 0 0'],
  ['A', 'ofdsetlk o1 u 0 10', 'ok'],
  ['await', 'B', 'ok'],
  ['A', 'ofdsetlk o1 r 0 0', 'ok'], // readers share
  ['A', 'ofdsetlk o1 w 0 1', 'EAGAIN'], // an upgrade waits for the other reader
  ['B', 'close o', 'ok'],
  ['A', 'ofdsetlk o1 w 0 1', 'ok'],
  ['locks', 'ofd', ['OFDLCK READ -1 1 EOF', 'OFDLCK WRITE -1 0 0']],
  ['A', 'close o1', 'ok'],
  ['locks', 'ofd', []],
];

/** The expected transcript: one line per step. */
function expected(): string[] {
  return SEQUENCE.map((s, i) => {
    if (s[0] === 'block') return `${i} ${s[1]} ${s[2]}: blocked`;
    if (s[0] === 'await') return `${i} await ${s[1]}: ${s[2]}`;
    if (s[0] === 'kill' || s[0] === 'spawn') return `${i} ${s[0]} ${s[1]}`;
    if (s[0] === 'locks') return `${i} locks ${s[1]}: ${(s[2] as string[]).join(', ')}`;
    return `${i} ${s[0]} ${s[1]}: ${s[2]}`;
  });
}

/** "fe:00:1234": how /proc/locks names a file (its superblock's device, its inode). */
function lockId(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  const major = Number(((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn));
  const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn));
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `${hex(major)}:${hex(minor)}:${st.ino}`;
}

/** /proc/locks lines of one file: { waiter, kind, type, pid, start, end }. */
function procLocks(id: string): { waiter: boolean; kind: string; type: string; pid: number; start: string; end: string }[] {
  const out = [];
  for (const line of fs.readFileSync('/proc/locks', 'utf8').split('\n')) {
    const m = /^\d+: (-> )?(\S+)\s+\S+\s+(\S+) (-?\d+) (\S+) (\S+) (\S+)$/.exec(line);
    if (m && m[5] === id) out.push({ waiter: !!m[1], kind: m[2]!, type: m[3]!, pid: Number(m[4]), start: m[6]!, end: m[7]! });
  }
  return out;
}

/** Runs SEQUENCE in `root`; the transcript, pids replaced by actor names. */
async function runSequence(root: string): Promise<string[]> {
  const actors = new Map<string, Actor>();
  const names = new Map<number, string>();
  const spawnActor = (n: string) => { const a = new Actor(n); actors.set(n, a); names.set(a.pid, n); return a; };
  for (const n of ['A', 'B', 'C']) spawnActor(n);
  const ids = Object.fromEntries(FILES.map((f) => [f, lockId(path.join(root, f))]));
  const byName = (pid: number) => (pid === -1 ? '-1' : names.get(pid) ?? `pid${pid}`);
  const cmdIn = (cmd: string) => {
    const w = cmd.split(' ');
    if (w[0] === 'open') w[2] = path.join(root, w[2]!);
    return w.join(' ');
  };
  const answer = (s: string) => {
    const m = /^([rw]) (-?\d+) (\d+) (\d+)$/.exec(s);
    return m ? `${m[1]} ${byName(Number(m[2]))} ${m[3]} ${m[4]}` : s;
  };
  /* Until every blocked command has either answered or shows its waiter in /proc/locks. */
  const settle = async () => {
    for (const a of actors.values()) {
      if (!a.pending) continue;
      await waitFor(() => a.answered || Object.values(ids).some((id) => procLocks(id).some((l) => l.waiter && l.pid === a.pid)), 10_000);
    }
  };
  const out: string[] = [];
  try {
    for (const [i, s] of SEQUENCE.entries()) {
      if (s[0] === 'block') {
        const a = actors.get(s[1])!;
        a.pending = a.send(cmdIn(s[2]));
        await settle();
        out.push(`${i} ${s[1]} ${s[2]}: ${a.answered ? `returned ${answer(await a.pending)}` : 'blocked'}`);
        if (a.answered) a.pending = undefined;
      } else if (s[0] === 'await') {
        const a = actors.get(s[1])!;
        const r = a.pending ? await within(a.pending, 10_000) : { ok: true as const, value: '(nothing pending)' };
        a.pending = undefined;
        out.push(`${i} await ${s[1]}: ${r.ok ? answer(r.value) : 'still blocked after 10 s'}`);
      } else if (s[0] === 'kill') {
        await actors.get(s[1])!.kill();
        out.push(`${i} kill ${s[1]}`);
      } else if (s[0] === 'spawn') {
        spawnActor(s[1]);
        out.push(`${i} spawn ${s[1]}`);
      } else if (s[0] === 'locks') {
        await settle();
        const ls = procLocks(ids[s[1]]!).map((l) => `${l.waiter ? '-> ' : ''}${l.kind} ${l.type} ${byName(l.pid)} ${l.start} ${l.end}`).sort();
        out.push(`${i} locks ${s[1]}: ${ls.join(', ')}`);
      } else {
        const a = actors.get(s[0])!;
        out.push(`${i} ${s[0]} ${s[1]}: ${answer(await a.send(cmdIn(s[1])))}`);
      }
    }
  } finally {
    for (const a of actors.values()) await a.kill();
  }
  return out;
}

/* ---------- fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range ---------- */

const PY_IO = String.raw`
import ctypes, errno, hashlib, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.copy_file_range.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
libc.copy_file_range.restype = ctypes.c_ssize_t
KEEP, PUNCH, COLLAPSE, ZERO, INSERT = 0x01, 0x02, 0x08, 0x10, 0x20
m = sys.argv[1]
out = []
def rec(label, f):
    try: v = f()
    except OSError as e: v = errno.errorcode.get(e.errno, str(e.errno))
    out.append('%s: %s' % (label, v))
def chk(r):
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return r
def fa(fd, mode, off, ln): chk(libc.fallocate(fd, mode, off, ln)); return 'ok'
def cfr(a, oa, b, ob, n, flags=0):
    pa, pb = ctypes.c_longlong(oa), ctypes.c_longlong(ob)
    r = chk(libc.copy_file_range(a, ctypes.byref(pa), b, ctypes.byref(pb), n, flags))
    return '%d (offsets %d %d)' % (r, pa.value, pb.value)
def seeks(fd):
    size, pos, segs = os.fstat(fd).st_size, 0, []
    while pos < size:
        try: d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e: segs.append('no data from %d (%s)' % (pos, errno.errorcode[e.errno])); break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        segs.append('%d-%d' % (d, h)); pos = h
    return ' '.join(segs) or 'empty'
def st(fd): s = os.fstat(fd); return 'size=%d blocks=%d' % (s.st_size, s.st_blocks)
def digest(fd):
    h = hashlib.sha256(os.pread(fd, os.fstat(fd).st_size + 1, 0)).hexdigest()[:16]
    # Drop the clean pages just read: SEEK_DATA counts cached pages over unwritten extents as
    # data (row 'read unwritten'), and the maps below are about the extents.
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return h
def state(label, fd):
    rec(label + ' stat', lambda: st(fd)); rec(label + ' map', lambda: seeks(fd)); rec(label + ' sha', lambda: digest(fd))
MiB = 1 << 20

# A sparse file: dirty (delayed), then written.
fd = os.open(m + '/sparse', os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b'a' * 4096, 0); os.pwrite(fd, b'b' * 100, MiB + 10); os.pwrite(fd, b'c' * 5000, 3 * MiB)
state('sparse dirty', fd)
os.fsync(fd)
state('sparse written', fd)
size = os.fstat(fd).st_size
for what, off in (('data', 5000), ('data', MiB), ('hole', 100), ('hole', MiB + 200), ('data', size - 1), ('data', size), ('hole', size), ('hole', size - 1), ('data', -1)):
    rec('SEEK_%s %d' % (what.upper(), off), lambda: os.lseek(fd, off, os.SEEK_DATA if what == 'data' else os.SEEK_HOLE))

# fallocate: every mode ext4 has, and the refusals.
g = os.open(m + '/falloc', os.O_RDWR | os.O_CREAT, 0o644)
rec('mode 0 0+1M', lambda: fa(g, 0, 0, MiB)); state('after mode 0', g)
rec('keep size 1M+1M', lambda: fa(g, KEEP, MiB, MiB)); state('after keep size', g)
os.pwrite(g, bytes(range(256)) * 64, 8192); os.fsync(g)
state('after a write', g)
rec('punch 4096+8192', lambda: fa(g, PUNCH | KEEP, 4096, 8192)); state('after punch', g)
rec('punch past EOF', lambda: fa(g, PUNCH | KEEP, 3 * MiB, 4096))
rec('zero range 20000+10000', lambda: fa(g, ZERO, 20000, 10000)); state('after zero range', g)
rec('zero range past EOF', lambda: fa(g, ZERO, MiB - 4096, 8192)); state('after zero range past EOF', g)
rec('punch without keep size', lambda: fa(g, PUNCH, 0, 4096))
rec('zero length', lambda: fa(g, 0, 0, 0))
rec('negative offset', lambda: fa(g, 0, -1, 4096))
rec('unknown mode', lambda: fa(g, 0x1000, 0, 4096))
rec('collapse with keep size', lambda: fa(g, COLLAPSE | KEEP, 0, 4096))
r = os.open(m + '/falloc', os.O_RDONLY)
rec('read-only descriptor', lambda: fa(r, 0, 0, 4096))
os.close(r)
# What was read of an unwritten range is data for SEEK_DATA while it stays cached.
u = os.open(m + '/unwritten', os.O_RDWR | os.O_CREAT, 0o644)
rec('unwritten fallocate', lambda: fa(u, 0, 0, 65536))
rec('unwritten SEEK_DATA', lambda: os.lseek(u, 0, os.SEEK_DATA))
rec('read unwritten', lambda: len(os.pread(u, 65536, 0)))
rec('read unwritten SEEK_DATA', lambda: os.lseek(u, 0, os.SEEK_DATA))
os.close(u)
# Shifting ranges.
h = os.open(m + '/shift', os.O_RDWR | os.O_CREAT, 0o644)
os.write(h, b''.join(bytes([65 + i]) * 4096 for i in range(16))); os.fsync(h)
rec('collapse 4096+8192', lambda: fa(h, COLLAPSE, 4096, 8192)); state('after collapse', h)
rec('insert 0+4096', lambda: fa(h, INSERT, 0, 4096)); state('after insert', h)
rec('collapse unaligned', lambda: fa(h, COLLAPSE, 100, 4096))
rec('collapse to EOF', lambda: fa(h, COLLAPSE, 0, os.fstat(h).st_size))
rec('insert at EOF', lambda: fa(h, INSERT, os.fstat(h).st_size, 4096))
os.close(h)
os.fsync(g)
state('falloc final', g)

# copy_file_range.
src = os.open(m + '/src', os.O_RDWR | os.O_CREAT, 0o644)
payload = bytes((i * 7 + i // 4096) & 0xff for i in range(MiB + 123))
os.write(src, payload)
dst = os.open(m + '/dst', os.O_RDWR | os.O_CREAT, 0o644)
n = 0
while n < len(payload):
    k = os.copy_file_range(src, dst, len(payload) - n, n, n)
    if k == 0: break
    n += k
out.append('copied: %d' % n)
state('dst whole', dst)
rec('into the middle', lambda: cfr(src, 100, dst, 5000, 70000)); state('dst middle', dst)
rec('past source EOF', lambda: cfr(src, len(payload) + 10, dst, 0, 100))
rec('short at source EOF', lambda: cfr(src, len(payload) - 50, dst, 2 * MiB, 4096)); state('dst extended', dst)
rec('flags 1', lambda: cfr(src, 0, dst, 0, 10, 1))
rec('same file overlapping', lambda: cfr(src, 0, src, 100, 1000))
rec('same file apart', lambda: cfr(src, 0, src, 2 * MiB, 1000)); state('src grown', src)
rec('sparse source', lambda: cfr(fd, 0, dst, 4 * MiB, 3 * MiB + 5000)); state('dst from sparse', dst)
w = os.open(m + '/src', os.O_WRONLY)
rec('write-only source', lambda: cfr(w, 0, dst, 0, 10))
os.close(w)
r = os.open(m + '/dst', os.O_RDONLY)
rec('read-only destination', lambda: cfr(src, 0, r, 0, 10))
os.close(r)
os.mkdir(m + '/dir')
dd = os.open(m + '/dir', os.O_RDONLY)
rec('directory source', lambda: cfr(dd, 0, dst, 0, 10))
os.close(dd)
os.fsync(dst); os.fsync(src)
state('dst final', dst)
print('\n'.join(out))
`;

/*
 * Where the kernel transport's answers are not the host's, all of it the lkl-ts ext4's (the
 * transport passes fallocate, lseek and copy_file_range through as they are). An entry
 * whose line turns out equal fails the test, so the table stays true; for an entry marked
 * `hostVaries` (the host's own figure moves from run to run), only if none of its lines
 * differs.
 */
const IO_DIFFERENCES: { label: RegExp; why: string; hostVaries?: string }[] = [
  {
    label: /^(after a write|after punch|after zero range|after zero range past EOF|falloc final) stat$/,
    why: 'st_blocks has one block more, the extent tree\'s index block: the lkl-ts ext4 leaves falloc in 7 extents where Linux has 3 '
      + '(ZERO_RANGE gives whole blocks newly allocated unwritten blocks instead of converting them in place, and neighbouring extents '
      + 'that became written one after the other are not merged)',
    hostVaries: 'the host\'s st_blocks after the punch is 4080 in most runs and 4088, lkl-ts\'s figure, in some (seen under load, '
      + 'about one run in five with a CPU hog): its own extent tree then has an index block too. The shape '
      + 'it gets depends on the timing of its writeback and unwritten-extent conversion, not on the steps',
  },
  {
    label: /^dst (middle|extended|from sparse|final) stat$/,
    why: 'st_blocks has one block more, an index block, once dst is written out: the lkl-ts allocator reuses the blocks falloc\'s '
      + 'punch and zero range freed at once (Linux does not before the journal commits), so dst starts in small extents',
  },
  {
    label: /^read unwritten SEEK_DATA$/,
    why: 'Linux\'s SEEK_DATA counts cached, up-to-date pages over an unwritten extent as data; the lkl-ts ext4 looks at the extents only '
      + '(ENXIO). Counting its own cached pages would not give the host\'s answers either: the pages the host reads through the mount are '
      + 'cached a second time in the lkl-ts kernel, where the host\'s POSIX_FADV_DONTNEED does not reach (tried: every map after a read '
      + 'then differed)',
  },
  {
    label: /^(collapse|insert) (\d|unaligned|to EOF|at EOF)|^after (collapse|insert) (stat|map|sha)$/,
    why: 'FALLOC_FL_COLLAPSE_RANGE and FALLOC_FL_INSERT_RANGE never reach a FUSE daemon: the host kernel\'s FUSE client refuses '
      + 'every mode but KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE (fuse_file_fallocate: EOPNOTSUPP, before any argument check; the file '
      + 'stays as it was). The lkl-ts ext4 has them (test/ext4/collapse-insert)',
  },
];

function runIo(root: string): string[] {
  const r = spawnSync('python3', ['-c', PY_IO, root], { encoding: 'utf8', timeout: 120_000 });
  return [...r.stdout.trim().split('\n'), `exit ${r.status} ${r.stderr.trim()}`];
}

/** sha256 and size of each file the I/O script leaves, read by the host kernel. */
function fileSums(dir: string): string[] {
  return ['sparse', 'falloc', 'unwritten', 'shift', 'src', 'dst'].map((f) => {
    const p = path.join(dir, f);
    const b = fs.readFileSync(p);
    return `${f} ${b.length} ${spawnSync('sha256sum', [p], { encoding: 'utf8' }).stdout.split(' ')[0]}`;
  });
}

/* ---------- the tests ---------- */

async function makeImage(t: Test, label: string): Promise<{ img: string; b: ReturnType<typeof box> }> {
  const b = box(t, label);
  const img = await makeExtImage({ path: b.path('a.img'), type: 'ext4', sizeMiB: 64, blockSize: 4096 });
  await withLoopMount(img, {}, async (dir) => {
    for (const f of FILES) fs.writeFileSync(path.join(dir, f), `${f}\n`.repeat(100));
  });
  return { img, b };
}

async function fsckAll(t: Test, images: string[]): Promise<void> {
  for (const i of images) {
    const r = await e2fsckClean(i);
    t.ok(r.clean, `e2fsck -fn clean: ${path.basename(i)}`, { output: r.output });
  }
}

t.test('flock, fcntl and OFD locks through lklfuse behave as on the host\'s ext4', { skip }, async (t) => {
  const { img, b } = await makeImage(t, 'locks');
  const copies = ['host', 'fuse-native', 'kernel'].map((n) => { const c = b.path(`${n}.img`); fs.copyFileSync(img, c); return c; });
  const want = expected();
  const host = await withLoopMount(copies[0]!, {}, async (dir) => runSequence(dir));
  t.same(host, want, 'the host kernel\'s ext4 answers every step as Linux is written down here');
  await fsckAll(t, [copies[0]!]);

  overTransports(t, (t, tr) => {
    t.test('the same sequence through the mount', async (t) => {
      const image = copies[tr === 'kernel' ? 2 : 1]!;
      const mnt = b.mnt(`mnt-${tr}`);
      const d = await startForeground(image, mnt);
      const got = await runSequence(mnt);
      t.same(got, host, `over ${tr}, every answer and every lock listing is the host's`);
      await stopDaemon(t, mnt, d);
      await fsckAll(t, [image]);
    });
  });
});

t.test('fallocate, SEEK_DATA/SEEK_HOLE and copy_file_range through the kernel transport as on the host\'s ext4', { skip: skip || transportSkip('kernel') }, async (t) => {
  const { img, b } = await makeImage(t, 'fileio');
  const hostImg = b.path('host.img');
  fs.copyFileSync(img, hostImg);
  const host = await withLoopMount(hostImg, {}, async (dir) => runIo(dir));
  t.equal(host[host.length - 1], 'exit 0 ', 'the script runs on the host');
  t.ok(host.includes('punch 4096+8192: ok') && host.includes('negative offset: EINVAL'), 'the host did punch and refuse (the script exercised something)');

  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'transport=kernel']);
  const fuse = runIo(mnt);
  await stopDaemon(t, mnt, d);
  const undocumented: string[] = [], stale: string[] = [];
  const differed = new Set<(typeof IO_DIFFERENCES)[number]>();
  const equalVarying: string[] = [];
  fuse.forEach((l, i) => {
    const label = l.split(': ')[0]!;
    const doc = IO_DIFFERENCES.find((d) => d.label.test(label));
    if (l !== host[i] && !doc) undocumented.push(`lklfuse: ${l}\n   host: ${host[i]}`);
    if (l === host[i] && doc && !doc.hostVaries) stale.push(`${l} (documented as differing: ${doc.why})`);
    if (l === host[i] && doc?.hostVaries) equalVarying.push(l);
    if (l !== host[i] && doc) {
      differed.add(doc);
      t.comment(`known difference: ${l} (host: ${(host[i] ?? '').split(': ').slice(1).join(': ')})`);
    }
  });
  for (const doc of IO_DIFFERENCES) {
    if (doc.hostVaries && !differed.has(doc) && fuse.some((l) => doc.label.test(l.split(': ')[0]!))) stale.push(`${doc.label} (no line differs: ${doc.why})`);
  }
  for (const l of equalVarying) t.comment(`equal to the host's this time (its figure varies): ${l}`);
  t.same(undocumented, [], 'every answer, size, st_blocks, data/hole map and content is the host\'s, but for the differences documented below');
  t.same(stale, [], 'and each documented difference is still one');
  t.equal(fuse.length, host.length, 'and as many of them');

  await fsckAll(t, [img, hostImg]);
  const sums = (i: string) => withLoopMount(i, { ro: true }, async (dir) => fileSums(dir));
  const [mine, its] = [await sums(img), await sums(hostImg)];
  // shift differs (no COLLAPSE/INSERT_RANGE through FUSE): there the host must read what the mount showed.
  const shift = mine.find((l) => l.startsWith('shift '))!;
  t.same(mine.filter((l) => l !== shift), its.filter((l) => !l.startsWith('shift ')), 'the host reads the same files in the image lklfuse wrote');
  const seen = fuse.find((l) => l.startsWith('after insert sha: '))?.slice('after insert sha: '.length);
  t.ok(seen && shift.split(' ')[2]!.startsWith(seen), `and shift as the mount showed it (${seen})`);
});
