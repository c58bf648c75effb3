/*
 * cptofs and cpfromfs, one program chosen by its name (as LKL's cptofs.c looks at argv[0]):
 *
 *   cptofs   -i IMAGE [-t TYPE] [-P PART] [-o OPTS] [-p] SRC... DST   host -> image
 *   cpfromfs -i IMAGE [-t TYPE] [-P PART] [-o OPTS] [-p] SRC... DST   image -> host
 *
 * Boots the kernel, attaches the image (read-only for cpfromfs), detects the type unless -t
 * gives it, mounts, copies recursively (lib/tools/copy.ts), unmounts and halts, whatever
 * happened. cptofs mounts read-only while it checks the sources and the destination and
 * only then switches to read-write, so a command that fails before copying leaves the image
 * byte for byte as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { CopyError, Copier, plan, scan } from './copy.js';
import { Progress } from './progress.js';
import { ImageSession, ToolError, checkType, lastArg, parseCommandLine, say, usageError, version } from './image.js';
import { hostSide, imageSide } from './sides.js';

export type CpProgram = 'cptofs' | 'cpfromfs';

/** The program a name stands for (LKL: strstr(argv[0], "cptofs")). */
export function programFromName(name: string): CpProgram {
  return path.basename(name).includes('cpfromfs') ? 'cpfromfs' : 'cptofs';
}

const EPILOG: Record<CpProgram, string> = {
  cptofs: `Copies host files and directories into the filesystem in IMAGE (recursively; symbolic
links stay links, hard links within the copy stay links, fifos and device nodes are made,
holes stay holes). DST is a path inside the image: an existing directory (each SRC is copied
into it under its own name) or, for a single SRC, a new name. A SRC of "DIR/." copies what is
in DIR. The filesystem type is detected when -t is absent (ext2, ext3, ext4, vfat); ext2/3/4
images are written with or without a journal (bigalloc and quota ones stay read-only). With -p, owners, modes,
nanosecond times, extended attributes and ACLs are kept (read on the host with getfattr).
What the filesystem cannot hold (FAT: owners, modes, links, special files, xattrs, fine
times) is left out with one warning line per kind. Stops at the first error, printing
"cptofs: PATH: reason"; the image is always unmounted cleanly. Exit status: 0 copied, 1 error.`,
  cpfromfs: `Copies files and directories out of the filesystem in IMAGE to the host (recursively;
symbolic links stay links, hard links within the copy stay links, fifos and device nodes are
made, holes stay holes). SRC are paths inside the image ("/" or "." = everything); DST is
an existing host directory (each SRC is copied into it under its own name) or, for a single
SRC, a new name. The image is opened read-only. The filesystem type is detected when -t is
absent (ext2, ext3, ext4, vfat). With -p, owners, modes, nanosecond times (set with touch),
extended attributes and ACLs (set with setfattr) are kept. A directory entry name that would
lead out of DST (from a damaged image) stops the copy. Stops at the first error, printing
"cpfromfs: PATH: reason". Exit status: 0 copied, 1 error.`,
};

interface CpArgs {
  image: string; type?: string; part: number; options: string[]; preserve: boolean;
  selinux?: string; owner: number; group: number; mb: number; verbose: boolean; quiet: boolean; printk: boolean;
  sources: string[]; dst: string;
}

async function parseArgs(prog: CpProgram, argv: string[]): Promise<CpArgs | number> {
  const to = prog === 'cptofs';
  const parsed = await parseCommandLine<Record<string, unknown> & { h?: unknown; V?: unknown; _: (string | number)[] }>(prog, yargs(argv)
    .scriptName(prog)
    .usage(`Usage: $0 -i IMAGE [-t TYPE] [-P PART] [-o OPTS] [-p] ${to ? 'SRC... DST' : 'SRC... DST'}\n\n` +
      (to ? 'Copy host files into a filesystem image.' : 'Copy files out of a filesystem image.'))
    .option('i', { alias: 'image', type: 'string', requiresArg: true, description: 'the filesystem image (required)' })
    .option('t', { alias: 'type', type: 'string', requiresArg: true, description: 'filesystem type: ext2, ext3, ext4, vfat (default: detect)' })
    .option('P', { alias: 'partition', type: 'string', requiresArg: true, description: 'partition number (default: 0, the whole image)' })
    .option('o', { alias: 'options', type: 'string', requiresArg: true, description: 'filesystem mount options, comma-separated (e.g. noatime, shortname=mixed); repeatable' })
    .option('p', { alias: 'preserve', type: 'boolean', description: 'preserve owner, group, mode bits, atime/mtime (ns), extended attributes and POSIX ACLs' })
    .option('s', { alias: 'selinux', type: 'string', requiresArg: true, description: 'SELinux context for new files (accepted and ignored)' })
    .option('owner', { type: 'string', requiresArg: true, description: 'owner (uid) of every copied entry' })
    .option('g', { alias: 'group', type: 'string', requiresArg: true, description: 'group (gid) of every copied entry' })
    .option('m', { alias: 'mb', type: 'string', requiresArg: true, description: 'kernel memory in MiB (default: 64)' })
    .option('v', { alias: 'verbose', type: 'boolean', description: 'list each copied path on stderr' })
    .option('q', { alias: 'quiet', type: 'boolean', description: 'no progress line (it is shown on a terminal when the copy takes more than a second)' })
    .option('printk', { type: 'boolean', description: 'show the kernel\'s messages' })
    .help('h').alias('h', 'help')
    .version('V', 'show the version', version()).alias('V', 'version')
    .epilog(EPILOG[prog]), argv
  );
  if (typeof parsed === 'number') return parsed;
  if (parsed.h || parsed.V) return 0;
  const last = lastArg;
  const bad = (m: string) => usageError(prog, m);
  const image = last(parsed.i);
  if (!image) return bad('missing -i IMAGE');
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number | undefined => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) return undefined;
    return Number(v);
  };
  const part = int('P', last(parsed.P), 0, 0, 255);
  if (part === undefined) return bad(`invalid partition number '${last(parsed.P)}'`);
  const mb = int('m', last(parsed.m), 64, 16, 65536);
  if (mb === undefined) return bad(`invalid memory size '${last(parsed.m)}' (MiB, 16 to 65536)`);
  const owner = int('owner', last(parsed.owner), -1, 0, 0xfffffffe);
  if (owner === undefined) return bad(`invalid owner '${last(parsed.owner)}' (a numeric uid)`);
  const group = int('g', last(parsed.g), -1, 0, 0xfffffffe);
  if (group === undefined) return bad(`invalid group '${last(parsed.g)}' (a numeric gid)`);
  const pos = parsed._.map(String);
  if (pos.length < 2) return bad(`expected SRC... DST, got ${pos.length} argument${pos.length === 1 ? '' : 's'}`);
  return {
    image, type: last(parsed.t), part, options: ([] as unknown[]).concat(parsed.o ?? []).map(String),
    preserve: !!parsed.p, selinux: last(parsed.s), owner, group, mb, verbose: !!parsed.v, quiet: !!parsed.q, printk: !!parsed.printk,
    sources: pos.slice(0, -1), dst: pos[pos.length - 1]!,
  };
}

/** Image paths are absolute inside the image (the tools chroot into it). */
const imagePath = (s: string) => Buffer.from('/' + s.replace(/^\/+/, ''));
const hostPath = (s: string) => Buffer.from(s);

/** Runs cptofs or cpfromfs with `argv` (without node and the script); resolves to the exit status. */
export async function runCp(prog: CpProgram, argv: string[]): Promise<number> {
  const a = await parseArgs(prog, argv);
  if (typeof a === 'number') return a;
  const to = prog === 'cptofs';
  if (a.selinux !== undefined) say(prog, 'note: -s (SELinux context) is accepted and ignored');

  // Everything that can be checked without the kernel, first.
  try {
    checkType(a.type);
  } catch (e) {
    say(prog, (e as Error).message);
    return 1;
  }
  if (to) {
    let bad = false;
    for (const s of a.sources) {
      try {
        fs.lstatSync(s);
      } catch (e) {
        say(prog, new CopyError(s, Math.abs((e as NodeJS.ErrnoException).errno ?? 5)).message);
        bad = true;
      }
    }
    if (bad) return 1;
  }

  let stop = false;
  let progress: Progress | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop) return;
    stop = true;
    progress?.finish();
    say(prog, `${sig}: stopping after the current entry`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  const umask = process.umask(0);
  const session = new ImageSession({
    prog, image: a.image, type: a.type, part: a.part, mountOptions: a.options,
    readOnly: !to, deferWrite: to, memMiB: a.mb, printk: a.printk,
  });
  let status = 0;
  try {
    await session.open();
    const sys = session.sys;
    await sys.umask(0);
    const host = hostSide();
    const img = imageSide(sys, session.type !== 'vfat' && session.type !== 'msdos');
    const from = to ? host : img;
    const dest = to ? img : host;
    const jobs = await plan(from, dest, { sources: a.sources, dst: a.dst }, to ? hostPath : imagePath, to ? imagePath : hostPath);
    if (to) await session.goWritable();
    const bar = progress = new Progress({ prog, quiet: a.quiet });
    if (bar.enabled) {
      // The totals, for the progress line only (pipes and -q never pay for the scan).
      bar.beginScan();
      await scan(from, jobs, bar);
      bar.endScan();
    }
    const copier = new Copier(from, dest, {
      preserve: a.preserve, umask, owner: a.owner, group: a.group,
      verbose: a.verbose ? (l) => bar.write(`${l}\n`) : undefined,
      warn: (l) => bar.write(`${prog}: ${l}\n`),
      progress: bar.enabled ? bar : undefined,
      stop: () => stop,
      fatDest: to && (session.type === 'vfat' || session.type === 'msdos'),
    });
    for (const job of jobs) await copier.run(job);
  } catch (e) {
    status = 1;
    progress?.finish();
    if (e instanceof CopyError || e instanceof ToolError) say(prog, e.message);
    else say(prog, `internal error: ${(e as Error)?.stack ?? String(e)}`);
  } finally {
    progress?.finish();
    process.umask(umask);
    try {
      const problem = await session.close();
      if (problem) { say(prog, problem); status = 1; }
    } catch (e) {
      say(prog, `internal error while unmounting: ${(e as Error)?.stack ?? String(e)}`);
      status = 1;
    }
  }
  return status;
}
