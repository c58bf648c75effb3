/*
 * Kernel.sysAs: system calls that run with a caller's fsuid, fsgid and supplementary
 * groups (override_fscreds, carried by the syscall request), the process cred untouched.
 */
import t from 'tap';
import { startKernel, EACCES, O_CREAT, O_RDONLY, O_RDWR } from '../../lib/index.js';

t.test('sysAs: owners of new files, permission checks, groups; the process stays root', async (t) => {
  const k = await startKernel({ memMiB: 32 });
  t.teardown(() => k.halt());
  const { sys } = k;
  await sys.umask(0);
  t.equal(await sys.mkdir('/pub', 0o777), 0);
  const fd = await sys.open('/pub/secret', O_CREAT | O_RDWR, 0o600);
  await sys.close(fd);
  const g = await sys.open('/pub/grp', O_CREAT | O_RDWR, 0o640);
  await sys.close(g);
  await sys.chown('/pub/grp', 0, 4242);

  const nobody = k.sysAs({ uid: 65534, gid: 65534, groups: [] });
  const member = k.sysAs({ uid: 65534, gid: 65534, groups: [4242, 100] });
  t.equal(await nobody.open('/pub/secret', O_RDONLY), -EACCES, 'fsuid 65534: EACCES on root 0600');
  t.equal(await nobody.open('/pub/grp', O_RDONLY), -EACCES, 'no group 4242: EACCES on 0640 root:4242');
  const ok = await member.open('/pub/grp', O_RDONLY);
  t.ok(ok >= 0, 'with 4242 among its groups: readable');
  await sys.close(ok);
  t.same(await member.getgroups(), [100, 4242], 'getgroups shows the caller\'s groups');
  t.equal(await nobody.mkdir('/pub/mine', 0o755), 0, 'mkdir in a 0777 directory');
  const st = await sys.stat('/pub/mine');
  t.ok(typeof st !== 'number' && st.uid === 65534 && st.gid === 65534, 'owned by the caller');
  t.equal(await nobody.chown('/pub/mine', 0, 0), -1, 'no CAP_CHOWN for fsuid 65534 (EPERM)');
  t.equal(await nobody.mkdir('/rootonly', 0o755), -EACCES, 'no CAP_DAC_OVERRIDE: cannot write in root\'s 0755 /');

  t.equal(await sys.getuid(), 0, 'the process is still uid 0');
  t.same(await sys.getgroups(), [], 'with no supplementary groups');
  const mine = await sys.open('/pub/root-file', O_CREAT | O_RDWR, 0o644);
  const fst = await sys.fstat(mine);
  await sys.close(mine);
  t.ok(typeof fst !== 'number' && fst.uid === 0 && fst.gid === 0, 'its own new files are root\'s');
  const root = k.sysAs({ uid: 0, gid: 0, groups: [] });
  const r = await root.open('/pub/secret', O_RDONLY);
  t.ok(r >= 0, 'fsuid 0 keeps root\'s capabilities');
  await sys.close(r);
});
