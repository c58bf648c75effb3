// halt: after a session with open files, orphans, mounts and a changed cwd, halt releases
// everything and the Node process exits by itself.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
