/*
 * Small host helpers for the benchmark: running commands with a time limit, reading
 * /proc, waiting for a condition. Host-only code (scripts/ may use node:* freely).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command (no shell), collecting its output; kills it with SIGKILL after `timeoutMs`. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '', stderr = '', timedOut = false;
    c.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    if (opts.input !== undefined) c.stdin!.end(opts.input);
    const timer = opts.timeoutMs ? setTimeout(() => { timedOut = true; c.kill('SIGKILL'); }, opts.timeoutMs) : undefined;
    c.on('error', (e) => { stderr += e.message; });
    c.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs a command and throws (with its stderr) unless it exits 0. */
export async function must(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await run(cmd, args, { timeoutMs });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${describeRun(r)}`);
  return r.stdout;
}

/** One line saying how a command ended, with the first line of its error output. */
export function describeRun(r: RunResult): string {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  const msg = firstLine(r.stderr || r.stdout);
  return msg ? `${why}: ${msg}` : why;
}

export function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean)[0] ?? '';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every `everyMs` until true or `timeoutMs` passed; resolves to the last answer. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}

/** True if `dir` is a mount point in this mount namespace. */
export function isMounted(dir: string): boolean {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const esc = dir.replace(/[ \t\n\\]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  return text.split('\n').some((l) => l.split(' ')[4] === esc);
}

/** A process that is alive (not gone, not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Peak resident set size (VmHWM) of a live process, in KiB; undefined if unreadable. */
export function vmHwmKiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Live processes whose argument list contains every one of `needles` (exact arguments). */
export function findProcesses(needles: string[]): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (needles.every((n) => argv.includes(n)) && alive(pid)) out.push(pid);
  }
  return out;
}

/** `sync` then drop the host's page, dentry and inode caches. */
export async function dropHostCaches(): Promise<void> {
  await must('sync', []);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** Counts regular files and directories under `dir` (not following symlinks). */
export function countTree(dir: string): { files: number; dirs: number; bytes: number } {
  let files = 0, dirs = 0, bytes = 0;
  const walk = (d: string) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${ent.name}`;
      if (ent.isDirectory()) { dirs++; walk(p); } else if (ent.isFile()) { files++; bytes += fs.lstatSync(p).size; }
    }
  };
  walk(dir);
  return { files, dirs, bytes };
}
