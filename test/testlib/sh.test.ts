// Tests of test/lib/sh.ts: running tools without a shell, and knowing which exist.
import t from 'tap';
import { run, RunError, which, whyNot, describe } from '../lib/sh.js';

t.test('run captures stdout, stderr and the exit code', async t => {
  const r = await run('sh', ['-c', 'echo out; echo err >&2; exit 3'], { allowFail: true });
  t.equal(r.code, 3);
  t.equal(r.stdout, 'out\n');
  t.equal(r.stderr, 'err\n');
  t.equal(r.timedOut, false);
});

t.test('a non-zero exit throws RunError unless allowFail', async t => {
  await t.rejects(run('false'), RunError);
  const e = await run('sh', ['-c', 'echo boom >&2; exit 2']).catch((err: unknown) => err);
  t.ok(e instanceof RunError);
  t.match((e as RunError).message, /exited 2: boom/);
});

t.test('arguments pass through without a shell', async t => {
  const odd = `a b 'c' "d" $HOME \\ é日本語😀`;
  const r = await run('printf', ['%s', odd]);
  t.equal(r.stdout, odd);
});

t.test('stdin, env and cwd', async t => {
  t.equal((await run('cat', [], { input: 'hello\n' })).stdout, 'hello\n');
  t.equal((await run('sh', ['-c', 'echo $LKL_X'], { env: { LKL_X: 'y' } })).stdout, 'y\n');
  t.equal((await run('pwd', [], { cwd: '/' })).stdout, '/\n');
  t.equal((await run('sh', ['-c', 'echo $LC_ALL $TZ'])).stdout, 'C.UTF-8 UTC\n');
  // No input: stdin is closed (EOF), as in CI.
  t.equal((await run('cat', [])).stdout, '');
});

t.test('binary stdout is kept as bytes', async t => {
  const r = await run('printf', ['\\377\\000\\001']);
  t.same([...r.stdoutBuf], [0xff, 0, 1]);
});

t.test('timeout kills the command', async t => {
  const r = await run('sleep', ['10'], { timeoutMs: 200, allowFail: true });
  t.equal(r.timedOut, true);
  t.equal(r.signal, 'SIGKILL');
});

t.test('a missing program rejects with ENOENT', async t => {
  await t.rejects(run('/nonexistent/lkl-ts-tool'), { code: 'ENOENT' });
});

t.test('which and whyNot', async t => {
  t.match(which('sh'), /\/sh$/);
  t.equal(which('lkl-ts-no-such-tool'), null);
  t.equal(whyNot(['sh']), false);
  t.match(whyNot(['lkl-ts-no-such-tool', 'mdir']) || '', /missing lkl-ts-no-such-tool/);
  t.equal(describe('a', ['b c', "d'e"]), `a 'b c' 'd'\\''e'`);
});
