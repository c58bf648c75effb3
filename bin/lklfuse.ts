#!/usr/bin/env -S node --max-semi-space-size=2
/*
 * lklfuse IMAGE MOUNTPOINT [-o opt,...] [-f] [-d] [-s]: mount an ext2/ext3/ext4 or vfat
 * disk image through FUSE with the lkl-ts kernel. The command line only; lib/fuse/lklfuse.ts
 * does the work. Also the helper behind `mount -t fuse.lklfuse IMAGE DIR -o ...`.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runBackground, runDaemon } from '../lib/fuse/lklfuse.js';
import { completeOptionList, splitOptions } from '../lib/fuse/options.js';
import { COMPLETION_OPTION, answerCompletion, printCompletionScript } from '../lib/tools/completion.js';

function version(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      return (JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch { /* try the next */ }
  }
  return 'unknown';
}

const OPTIONS_HELP = `Options for -o (comma-separated; repeat -o as you like; "\\," is a literal comma):
  type=TYPE            filesystem type: ext2, ext3, ext4 or vfat (default: detect)
  part=N               mount partition N of a partitioned image (default: 0, the whole image)
  ro                   mount read-only (the image is opened read-only)
  rw                   mount read-write (the default)
  mb=N                 kernel memory in MiB (default: 64)
  hung_task_timeout=S  report kernel tasks blocked for more than S seconds, with every
                       task's state, to the log (default 120; 0: off); SIGUSR1 to the
                       daemon prints the task states at any time (sysrq-t)
  opts=LIST            filesystem mount options, e.g. opts=noatime\\,data=journal;
                       ro, rw, noatime, relatime, strictatime, lazytime, sync, dirsync,
                       nodev, nosuid, noexec become mount flags, the rest is passed on
  lock=FILE            lock FILE instead of the image (exclusive, or shared for ro);
                       a second lklfuse on a locked image exits with status 2
  nolock               do not lock anything
  log=FILE             append the daemon's messages to FILE
  fsname=NAME          source shown in mount tables (default: the image path)
  subtype=NAME         type shown as fuse.NAME (default: lklfuse)
  allow_other          let other users in (non-root users need user_allow_other in
                       /etc/fuse.conf); over fuse-native it implies default_permissions,
                       over the kernel transport each request runs as its caller (on
                       ext4 with ACLs the host checks them too: default_permissions)
  default_permissions  let the host kernel check file modes
  transport=T          how lklfuse talks to the host's FUSE (default: kernel when run as
                       root with /dev/fuse, fuse-native otherwise):
                         kernel       lklfuse speaks the FUSE protocol on /dev/fuse itself
                                      (root only): nanosecond and pre-1970 times, 64-bit
                                      inode numbers, each request with its caller's
                                      uid/gid/groups (owners of new files, permission
                                      checks), touch -a/-m, fallocate, SEEK_DATA/SEEK_HOLE,
                                      copy_file_range, readdirplus, 1 MiB writes,
                                      lsattr/chattr (ext4 inode flags)
                         fuse-native  libfuse 2 through fuse-native (any user): times in
                                      whole milliseconds from 1970 on, 32-bit inode numbers,
                                      every request as the daemon's user, no one-sided
                                      time updates, no fallocate/lseek/copy_file_range,
                                      no lsattr/chattr
                       flock and fcntl locks are kept by the host kernel on either
  noreaddirplus        kernel transport: no READDIRPLUS at all (by default a directory's
                       first read gets names only, later reads the host marks as
                       followed by stat get full entries)
  busy_poll=US         kernel transport: keep polling /dev/fuse for US microseconds after
                       each reply, so that a request right after it is read at once
                       instead of waking the daemon (default 100; 0: off)
  entry_timeout=S      seconds the host may cache names (default 1)
  attr_timeout=S       seconds the host may cache attributes (default 1)
  hard_remove          libfuse's hard_remove (unlinked open files then stop being readable;
                       by default lklfuse keeps them readable without .fuse_hidden files)
  intr                 libfuse's intr: a read-only request whose caller got a signal ends
                       with EINTR (by default it completes, as on a local filesystem)
  any other option     passed to FUSE (e.g. uid=, gid=, umask=, nodev, noexec, max_read=)
  dev, suid, exec, auto, noauto, user, users, nofail, _netdev, defaults, x-*, comment=
                       accepted from mount(8)/fstab and ignored

Exit status: 0 mounted (or, in the foreground, unmounted cleanly), 1 error, 2 image locked.
Stop with: fusermount -u MOUNTPOINT (or umount, or SIGTERM/SIGINT/SIGHUP to the daemon).
SIGUSR1 to the daemon: print the kernel's task states to the log (stderr or log=);
SIGUSR2: one line with the kernel's inode and dentry counts and the daemon's RSS.`;

async function main(): Promise<number> {
  const argv = hideBin(process.argv);
  const y = yargs(argv)
    .scriptName('lklfuse')
    .usage('Usage: $0 IMAGE MOUNTPOINT [-o opt,...] [-f] [-d] [-s]\n\nMount an ext2/ext3/ext4 or vfat disk image through FUSE, served by the lkl-ts kernel.')
    .option('o', { type: 'string', nargs: 1, description: 'mount options, comma-separated (see below)', requiresArg: true })
    .option('f', { type: 'boolean', description: 'stay in the foreground' })
    .option('d', { type: 'boolean', description: 'debug output (implies -f)' })
    .option('s', { type: 'boolean', description: 'single-threaded: one request at a time' })
    .option('completion', COMPLETION_OPTION)
    .help('h').alias('h', 'help')
    .version('V', 'show the version', version()).alias('V', 'version')
    .epilog(OPTIONS_HELP)
    .strictOptions()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => { throw err ?? new Error(msg); });
  if (answerCompletion(y, argv, (key, word) => key === 'o' ? completeOptionList(word) : undefined)) return 0;
  const parsed = await y.parseAsync()
    .catch((e: Error) => {
      process.stderr.write(`lklfuse: ${e.message}\nTry 'lklfuse --help'.\n`);
      return null;
    });
  if (parsed === null) return 1;
  if (parsed.h || parsed.V) return 0;
  if (parsed.completion !== undefined) return printCompletionScript('lklfuse', parsed.completion);
  const pos = parsed._.map(String);
  if (pos.length !== 2) {
    process.stderr.write(`lklfuse: expected IMAGE and MOUNTPOINT, got ${pos.length} argument${pos.length === 1 ? '' : 's'}\nTry 'lklfuse --help'.\n`);
    return 1;
  }
  const options = ([] as unknown[]).concat(parsed.o ?? []).map(String);
  const args = {
    image: pos[0]!, mountpoint: pos[1]!, options,
    foreground: !!parsed.f || !!parsed.d, debug: !!parsed.d, singleThreaded: !!parsed.s,
  };
  if (!args.foreground) {
    // log= must reach the daemon's stdio before it can open it itself.
    const logOpt = options.flatMap(splitOptions).filter((o) => o.startsWith('log=')).pop();
    return runBackground(fileURLToPath(import.meta.url), argv, logOpt?.slice(4));
  }
  return runDaemon(args);
}

main().then((status) => process.exit(status), (e: unknown) => {
  process.stderr.write(`lklfuse: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
