/* lklfuse's -o parsing: table-driven, one row per convention. */
import t from 'tap';
import {
  MS_DIRSYNC, MS_LAZYTIME, MS_NOATIME, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_RELATIME,
  MS_STRICTATIME, MS_SYNCHRONOUS,
} from '../../lib/kernel/include/uapi.js';
import { escapeOption, normalizeType, parseFsOptions, parseOptions, splitOptions } from '../../lib/fuse/options.js';
import type { LklfuseOptions } from '../../lib/fuse/options.js';
import { DAEMON_NODE_FLAGS, daemonExecArgv } from '../../lib/fuse/node-flags.js';
import fs from 'node:fs';

t.test('splitOptions', async (t) => {
  const rows: [string, string, string[]][] = [
    ['plain list', 'a,b,c', ['a', 'b', 'c']],
    ['empty items dropped', ',a,,b,', ['a', 'b']],
    ['escaped comma stays in the item', 'opts=x\\,y,ro', ['opts=x\\,y', 'ro']],
    ['escaped backslash', 'fsname=a\\\\b', ['fsname=a\\\\b']],
    ['empty', '', []],
  ];
  for (const [name, input, want] of rows) t.same(splitOptions(input), want, name);
  t.equal(escapeOption('/img,1\\x'), '/img\\,1\\\\x', 'escapeOption');
});

t.test('parseFsOptions: flags as mount(8) sets them, the rest is data', async (t) => {
  const rows: [string, string, number, string][] = [
    ['nothing', '', 0, ''],
    ['ro', 'ro', MS_RDONLY, ''],
    ['rw after ro clears it', 'ro,rw', 0, ''],
    ['atime family', 'noatime,relatime,strictatime,lazytime', MS_NOATIME | MS_RELATIME | MS_STRICTATIME | MS_LAZYTIME, ''],
    ['atime clears noatime', 'noatime,atime', 0, ''],
    ['sync and dirsync', 'sync,dirsync', MS_SYNCHRONOUS | MS_DIRSYNC, ''],
    ['async clears sync', 'sync,async', 0, ''],
    ['nodev nosuid noexec', 'nodev,nosuid,noexec', MS_NODEV | MS_NOSUID | MS_NOEXEC, ''],
    ['filesystem data in order', 'data=journal,noatime,errors=remount-ro,barrier', MS_NOATIME, 'data=journal,errors=remount-ro,barrier'],
    ['defaults is a placeholder', 'defaults,uid=1000', 0, 'uid=1000'],
    ['vfat options', 'uid=1000,gid=100,umask=022,shortname=mixed,utf8', 0, 'uid=1000,gid=100,umask=022,shortname=mixed,utf8'],
  ];
  for (const [name, input, flags, data] of rows) t.same(parseFsOptions(input), { flags, data }, name);
});

t.test('parseOptions', async (t) => {
  const base = parseOptions([]);
  t.same(base, {
    part: 0, readOnly: false, mb: 64, hungTaskTimeout: 120, mountFlags: 0, mountData: '', nolock: false, allowOther: false,
    defaultPermissions: false, hardRemove: false, intr: false, fuse: [], ignored: [],
  }, 'defaults');
  const rows: [string, string[], Partial<LklfuseOptions>][] = [
    ['type', ['type=ext4'], { type: 'ext4' }],
    ['part and mb', ['part=2,mb=128'], { part: 2, mb: 128 }],
    ['ro makes the kernel mount read-only', ['ro'], { readOnly: true, mountFlags: MS_RDONLY }],
    ['rw after ro', ['ro', 'rw'], { readOnly: false, mountFlags: 0 }],
    ['opts= with escaped commas', ['opts=noatime\\,data=journal'], { mountFlags: MS_NOATIME, mountData: 'data=journal' }],
    ['opts=ro makes the mount read-only', ['opts=ro'], { readOnly: true, mountFlags: MS_RDONLY }],
    ['two opts= add up', ['opts=noatime', 'opts=discard'], { mountFlags: MS_NOATIME, mountData: 'discard' }],
    ['lock and log', ['lock=/run/x.lock,log=/tmp/l'], { lock: '/run/x.lock', log: '/tmp/l' }],
    ['nolock', ['nolock'], { nolock: true }],
    ['fsname and subtype', ['fsname=disk\\,1,subtype=foo'], { fsname: 'disk,1', subtype: 'foo' }],
    ['allow_other and default_permissions', ['allow_other,default_permissions'], { allowOther: true, defaultPermissions: true }],
    ['hard_remove', ['hard_remove'], { hardRemove: true }],
    ['intr is lklfuse\'s on both transports (handed to libfuse by fuse-native)', ['intr'], { intr: true, fuse: [] }],
    ['hung_task_timeout', ['hung_task_timeout=0'], { hungTaskTimeout: 0 }],
    ['lklfuse\'s own FUSE choices are not repeated', ['big_writes,max_write=65536,use_ino'], { fuse: [] }],
    ['everything else goes to FUSE', ['uid=1000,umask=077,nodev,noexec,max_read=65536'],
      { fuse: ['uid=1000', 'umask=077', 'nodev', 'noexec', 'max_read=65536'] }],
    // Both transports take these (lklfuse hands them to libfuse for fuse-native).
    ['cache timeouts, value 0 kept', ['entry_timeout=0,attr_timeout=1.5'], { entryTimeout: 0, attrTimeout: 1.5, fuse: [] }],
    ['transport and reader', ['transport=kernel,reader=worker,noreaddirplus'], { transport: 'kernel', reader: 'worker', noReaddirplus: true }],
    ['busy polling, 0 kept', ['busy_poll=0'], { busyPollUs: 0, fuse: [] }],
    ['busy polling', ['busy_poll=250'], { busyPollUs: 250, fuse: [] }],
    ['mount.fuse / fstab noise is ignored', ['rw,dev,suid,exec,auto,noauto,user,users,nofail,_netdev,defaults,x-systemd.automount,comment=foo'],
      { readOnly: false, fuse: [], ignored: ['dev', 'suid', 'exec', 'auto', 'noauto', 'user', 'users', 'nofail', '_netdev', 'defaults', 'x-systemd.automount', 'comment=foo'] }],
    ['what mount -t fuse.lklfuse passes', ['rw,nosuid,nodev,relatime,type=vfat'], { type: 'vfat', fuse: ['nosuid', 'nodev', 'relatime'] }],
  ];
  for (const [name, lists, want] of rows) t.match(parseOptions(lists), want, name);

  const bad: [string, string, RegExp][] = [
    ['part not a number', 'part=x', /invalid value for part/],
    ['busy_poll not microseconds', 'busy_poll=0.5', /busy_poll must be microseconds/],
    ['busy_poll too long', 'busy_poll=2000000', /busy_poll must be microseconds/],
    ['part out of range', 'part=300', /part must be between 0 and 255/],
    ['mb too small', 'mb=1', /mb must be between/],
    ['type without value', 'type=', /type needs a value/],
    ['lock without value', 'lock', /lock needs a value/],
    ['unknown transport', 'transport=libfuse3', /transport must be kernel or fuse-native/],
    ['unknown reader', 'reader=threadpool', /reader must be poll or worker/],
    ['timeout not a number', 'attr_timeout=soon', /invalid value for attr_timeout/],
  ];
  for (const [name, list, msg] of bad) t.throws(() => parseOptions([list]), { message: msg }, name);
});

t.test('normalizeType', async (t) => {
  const rows: [string, string | undefined][] = [
    ['ext2', 'ext2'], ['ext3', 'ext3'], ['EXT4', 'ext4'], ['vfat', 'vfat'], ['msdos', 'vfat'],
    ['fat32', 'vfat'], ['xfs', undefined], ['btrfs', undefined], ['', undefined],
  ];
  for (const [input, want] of rows) t.equal(normalizeType(input), want, input || '(empty)');
});

t.test('daemonExecArgv: the daemon\'s node flags, unless the caller set them', async (t) => {
  t.same(daemonExecArgv([]), [...DAEMON_NODE_FLAGS], 'added to an empty execArgv');
  t.same(daemonExecArgv(['--enable-source-maps']), ['--enable-source-maps', ...DAEMON_NODE_FLAGS], 'after the caller\'s own');
  t.same(daemonExecArgv(['--max-semi-space-size=8']), ['--max-semi-space-size=8'], 'a semi-space size of the caller\'s stays');
  t.same(daemonExecArgv(['--max_semi_space_size=8']), ['--max_semi_space_size=8'], 'also spelt with underscores');
  const shebang = fs.readFileSync(new URL('../../../bin/lklfuse.ts', import.meta.url), 'utf8').split('\n')[0];
  t.equal(shebang, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`, 'the lklfuse command\'s #! line gives node the same flags');
});
