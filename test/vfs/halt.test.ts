// halt: after a session with open files, orphans, mounts and a changed cwd, halt releases
// everything and the Node process exits by itself; system calls after halt are -ENOSYS.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startKernel, ENOENT, ENOSYS, O_CREAT, O_RDWR } from '../../lib/index.js';
import { alloc_irq_number } from '../../lib/kernel/arch/irq.js';

const index = fileURLToPath(new URL('../../lib/index.js', import.meta.url));

const script = `
import { startKernel, O_CREAT, O_RDWR } from ${JSON.stringify(index)};
const k = await startKernel({ memMiB: 32 });
const s = k.sys;
await s.mkdir('/work', 0o755);
const fd = await s.open('/work/open', O_CREAT | O_RDWR, 0o644);
await s.write(fd, new Uint8Array(100000));
const orphan = await s.open('/work/orphan', O_CREAT | O_RDWR, 0o644);
await s.unlink('/work/orphan');
await s.mkdir('/mnt/a', 0o755);
await s.mount('none', '/mnt/a', 'ramfs', 0, null);
await s.mkdir('/mnt/a/b', 0o755);
await s.mount('none', '/mnt/a/b', 'ramfs', 0, null);
const inner = await s.open('/mnt/a/b/f', O_CREAT | O_RDWR, 0o644);
await s.chdir('/mnt/a/b');
await s.nanosleep({ sec: 0, nsec: 1e6 });
await k.halt();
console.log('done', fd, orphan, inner);
`;

t.test('the process exits by itself after halt', async (t) => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', errOut = '';
  child.stdout.on('data', (b) => { out += b; });
  child.stderr.on('data', (b) => { errOut += b; });
  const started = Date.now();
  const code = await new Promise<number | null>((res) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); res(null); }, 10000);
    child.on('exit', (c) => { clearTimeout(timer); res(c); });
  });
  t.equal(code, 0, `exit code 0 (stderr: ${errOut.slice(0, 500)})`);
  t.match(out, /^done \d+ \d+ \d+/m, 'the script ran to the end');
  t.ok(Date.now() - started < 8000, 'and exited promptly');
});

t.test('a system call after halt resolves to -ENOSYS at once, and never reaches a later boot', async (t) => {
  const k1 = await startKernel({ memMiB: 16 });
  const irq1 = alloc_irq_number();
  t.equal(await k1.sys.mkdir('/first', 0o755), 0, 'the first boot serves calls');
  await k1.halt();
  const started = Date.now();
  t.equal(await k1.sys.getpid(), -ENOSYS, 'after halt: -ENOSYS');
  t.equal(await k1.sys.open('/x', O_CREAT | O_RDWR, 0o644), -ENOSYS, 'every call: -ENOSYS');
  t.ok(Date.now() - started < 1000, 'at once, not after a timeout');
  const k2 = await startKernel({ memMiB: 16 });
  t.teardown(() => k2.halt());
  t.equal(alloc_irq_number(), irq1, 'IRQ numbers start again at each boot');
  t.equal(await k1.sys.mkdir('/from-old', 0o755), -ENOSYS, 'the first boot\'s sys does not reach the second kernel');
  t.equal(await k2.sys.access('/from-old', 0), -ENOENT, 'nothing was made there');
  t.equal(await k2.sys.mkdir('/second', 0o755), 0, 'the second boot\'s sys works');
  t.equal(await k2.sys.access('/first', 0), -ENOENT, 'and its root is new');
});
