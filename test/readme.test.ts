// The README's library example must run as written (with 'lkl-ts' resolved to this build).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/test/readme.test.js -> repository root two levels up; lib/index.js of this build one up.
const repo = path.resolve(here, '..', '..');
const indexJs = path.resolve(here, '..', 'lib', 'index.js');

t.test('README library example runs', async (t) => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library API'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  t.ok(m, 'the README has a ts example under "Library API"');
  if (!m) return;
  const code = m[1]!.replace(/from 'lkl-ts'/g, `from '${pathToFileURL(indexJs).href}'`)
    + "\nconsole.log('example-done');\n";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lkl-readme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'example.mjs');
  fs.writeFileSync(file, code);
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
  t.match(out, /example-done/, 'the example ran to the end and the process exited by itself');
});
