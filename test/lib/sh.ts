// Running host tools from tests: one command, no shell, everything captured.
//
// The judges of lkl-ts (e2fsck, mke2fs, fsck.vfat, mtools, the host kernel via mount) are
// external programs; every test helper reaches them through run(). No shell is involved,
// so file names with spaces, quotes or UTF-8 pass through untouched. tools() answers
// "can this test run here?" so a test can skip with the reason stated instead of failing.

import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface RunOptions {
  /** Bytes or text written to the command's standard input (closed afterwards). */
  input?: string | Uint8Array;
  /** Variables added to (not replacing) the process environment. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Milliseconds before the command is killed (SIGKILL); 0 = no limit. Default 120 s. */
  timeoutMs?: number;
  /** Do not throw on a non-zero exit; the caller inspects `code`. Default false. */
  allowFail?: boolean;
  /** Largest stdout/stderr kept, in bytes. Default 256 MiB. */
  maxBuffer?: number;
}

export interface RunResult {
  cmd: string;
  args: string[];
  /** Exit code, or null when a signal ended the command. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout as raw bytes (for binary output such as `mcopy ... -`). */
  stdoutBuf: Buffer;
  timedOut: boolean;
}

export class RunError extends Error {
  constructor(readonly result: RunResult) {
    super(`${describe(result.cmd, result.args)} ` +
      (result.timedOut ? 'timed out' : result.signal ? `killed by ${result.signal}` : `exited ${result.code}`) +
      (result.stderr.trim() ? `: ${result.stderr.trim()}` : result.stdout.trim() ? `: ${result.stdout.trim().slice(-2000)}` : ''));
    this.name = 'RunError';
  }
}

/** A shell-like rendering of a command line, for messages only. */
export function describe(cmd: string, args: readonly string[]): string {
  const q = (s: string) => /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
  return [cmd, ...args].map(q).join(' ');
}

/** The environment for tools whose output we parse: C.UTF-8 so UTF-8 names survive, UTC. */
export const TOOL_ENV: Readonly<Record<string, string>> = { LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', TZ: 'UTC' };

/** Run `cmd args...` without a shell; resolves with the captured result. */
export function run(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, {
      encoding: 'buffer',
      env: { ...process.env, ...TOOL_ENV, ...opts.env },
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
      maxBuffer: opts.maxBuffer ?? 256 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null; code?: unknown }) | null;
      if (e && typeof e.code === 'string') { // spawn failure: ENOENT, EACCES, maxBuffer...
        if (e.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(e);
      }
      const result: RunResult = {
        cmd, args: [...args],
        code: child.exitCode,
        signal: child.signalCode,
        stdout: stdout.toString('utf8'),
        stderr: stderr.toString('utf8'),
        stdoutBuf: stdout,
        timedOut: !!e?.killed && child.signalCode === 'SIGKILL',
      };
      if ((result.code !== 0 || result.signal) && !opts.allowFail) return reject(new RunError(result));
      if (e && typeof e.code === 'string') return reject(new RunError(result));
      resolve(result);
    });
    // No stdin given: close it, so a tool that asks a question gets EOF, as in CI.
    child.stdin?.on('error', () => { /* the tool may exit before reading */ });
    child.stdin?.end(opts.input ?? undefined);
  });
}

/** Synchronous variant, for process-exit cleanup only (never in normal test flow). */
export function runSync(cmd: string, args: readonly string[]): { code: number; output: string } {
  try {
    const out = execFileSync(cmd, args, { env: { ...process.env, ...TOOL_ENV }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    return { code: 0, output: out.toString() };
  } catch (err) {
    const e = err as { status?: number | null; stderr?: Buffer; message: string };
    return { code: e.status ?? -1, output: e.stderr?.toString() ?? e.message };
  }
}

const whichCache = new Map<string, string | null>();

/** Full path of an executable found on PATH (plus the sbin directories), or null. */
export function which(tool: string): string | null {
  if (whichCache.has(tool)) return whichCache.get(tool)!;
  let found: string | null = null;
  if (tool.includes('/')) {
    found = isExecutable(tool) ? tool : null;
  } else {
    const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
    for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
    for (const d of dirs) {
      const p = path.join(d, tool);
      if (isExecutable(p)) { found = p; break; }
    }
  }
  whichCache.set(tool, found);
  return found;
}

function isExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Names of the tools in `list` that are missing. */
export function missingTools(list: readonly string[]): string[] {
  return list.filter(t => which(t) === null);
}

/** Whether the process runs as root (loop mounts, mknod, chown and trusted.* need it). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Why a test cannot run here, or false when it can: missing tools (with the package that
 * provides them) and, if asked, missing root. Use as `t.test(name, { skip: whyNot(...) }, ...)`.
 */
export function whyNot(tools: readonly string[], opts: { root?: boolean } = {}): string | false {
  const reasons: string[] = [];
  const missing = missingTools(tools);
  if (missing.length) {
    const pkgs = [...new Set(missing.map(t => TOOL_PACKAGE[t] ?? '?'))];
    reasons.push(`missing ${missing.join(', ')} (apt-get install ${pkgs.join(' ')})`);
  }
  if (opts.root && !isRoot()) reasons.push('needs root (loop devices, mount, mknod, chown)');
  return reasons.length ? reasons.join('; ') : false;
}

/** The Debian package of each tool the helpers use, for skip messages. */
export const TOOL_PACKAGE: Readonly<Record<string, string>> = {
  'mke2fs': 'e2fsprogs', 'mkfs.ext4': 'e2fsprogs', 'e2fsck': 'e2fsprogs', 'debugfs': 'e2fsprogs',
  'dumpe2fs': 'e2fsprogs', 'tune2fs': 'e2fsprogs',
  'mkfs.vfat': 'dosfstools', 'fsck.vfat': 'dosfstools',
  'mdir': 'mtools', 'mcopy': 'mtools', 'mattrib': 'mtools', 'mmd': 'mtools',
  'getfattr': 'attr', 'setfattr': 'attr', 'setfacl': 'acl', 'getfacl': 'acl',
  'losetup': 'mount', 'mount': 'mount', 'umount': 'mount',
  'mknod': 'coreutils', 'touch': 'coreutils', 'truncate': 'coreutils',
  'sfdisk': 'fdisk', 'sgdisk': 'gdisk', 'stress-ng': 'stress-ng',
  'script': 'bsdutils', 'stty': 'coreutils', 'lsattr': 'e2fsprogs', 'chattr': 'e2fsprogs',
};
