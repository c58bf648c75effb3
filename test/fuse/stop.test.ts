/*
 * Every way of stopping lklfuse leaves no process and no mount: SIGTERM, SIGINT and SIGHUP
 * to the daemon, and an external fusermount -u or umount.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { daemonsFor, isMounted, readStats, scratch, startForeground, teardown, waitFor } from './helpers.js';

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  t.test(`${sig} unmounts and exits 0`, async (t) => {
    const s = scratch(sig.toLowerCase());
    t.teardown(() => teardown(s));
    const c = await startForeground(s);
    fs.writeFileSync(path.join(s.mnt, 'f'), 'data');
    const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    c.kill(sig);
    t.equal(await exited, 0, 'exit status 0');
    t.notOk(await isMounted(s.mnt), 'no mount left');
    t.same(daemonsFor(s.mnt), [], 'no process left');
    t.ok(readStats(s), 'the kernel was halted (the fake wrote its stats)');
    t.equal(fs.readFileSync(path.join(s.back, 'f'), 'utf8'), 'data');
  });
}

for (const how of [['fusermount', '-u'], ['umount']] as const) {
  t.test(`an external ${how.join(' ')} stops the daemon`, async (t) => {
    const s = scratch(how[0]);
    t.teardown(() => teardown(s));
    const c = await startForeground(s);
    const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    t.equal(spawnSync(how[0], [...how.slice(1), s.mnt]).status, 0, how.join(' '));
    t.equal(await exited, 0, 'the daemon notices and exits 0');
    t.notOk(await isMounted(s.mnt), 'no mount left');
    t.ok(await waitFor(() => daemonsFor(s.mnt).length === 0, 3000), 'no process left');
    t.ok(readStats(s), 'the kernel was halted');
  });
}

t.test('a second signal during shutdown does not interrupt it', async (t) => {
  const s = scratch('double');
  t.teardown(() => teardown(s));
  const c = await startForeground(s);
  const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
  c.kill('SIGTERM');
  c.kill('SIGINT');
  t.equal(await exited, 0);
  t.notOk(await isMounted(s.mnt));
});
