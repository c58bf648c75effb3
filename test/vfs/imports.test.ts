// The kernel's only door out is HostOps: every file under lib/kernel imports only relative
// paths that stay inside lib/kernel (no node:*, no npm packages), with .js extensions.
import t from 'tap';
import { tsFilesUnder as walk } from '../lib/source-files.js';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const kernelDir = fileURLToPath(new URL('../../../lib/kernel/', import.meta.url));

/** Module specifiers of static imports/exports and dynamic import() calls. */
function specifiers(src: string): string[] {
  const noComments = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const re = /(?:^|[\s;}])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (let m; (m = re.exec(noComments));) out.push((m[1] ?? m[2])!);
  return out;
}

t.test('lib/kernel imports only lib/kernel', async (t) => {
  t.ok(existsSync(kernelDir), `found ${kernelDir}`);
  const files = walk(kernelDir);
  t.ok(files.length > 20, `${files.length} kernel source files`);
  const bad: string[] = [];
  let count = 0;
  for (const f of files) {
    for (const spec of specifiers(readFileSync(f, 'utf8'))) {
      count++;
      const where = `${relative(kernelDir, f)}: '${spec}'`;
      if (!spec.startsWith('./') && !spec.startsWith('../')) { bad.push(`${where} is not relative`); continue; }
      if (!spec.endsWith('.js')) { bad.push(`${where} lacks .js`); continue; }
      const target = resolve(dirname(f), spec);
      if (!(target + sep).startsWith(kernelDir) && !target.startsWith(kernelDir)) { bad.push(`${where} leaves lib/kernel`); continue; }
      if (!existsSync(target.replace(/\.js$/, '.ts'))) bad.push(`${where} names no file`);
    }
  }
  t.ok(count > 100, `${count} imports checked`);
  t.same(bad, [], 'every import is a relative .js path inside lib/kernel');
});

const repoDir = fileURLToPath(new URL('../../../', import.meta.url));
const libDir = join(repoDir, 'lib');
/** What code outside the kernel may import from it: its public entry points. */
const KERNEL_ENTRY = [
  /^host-ops\.js$/, /^include\//, /^arch\/setup\.js$/, /^arch\/syscalls\.js$/,
];
/**
 * lib/drivers/api.ts (the API every host binds) links the kernel in: it also imports the
 * built-in subsystems, and what its calls run in the kernel besides system calls — init's
 * context (arch/threads runAsInit), the sysrq-t task dump (kernel/sched/core), read-only
 * sysctls (kernel/sysctl). (Re-exporting them from arch/setup would be an import cycle.)
 */
const INDEX_EXTRA = [/^built-in\.js$/, /^all\.js$/, /^arch\/threads\.js$/, /^kernel\/sched\/core\.js$/, /^kernel\/sysctl\.js$/];

t.test('outside lib/kernel, only its entry points are imported', async (t) => {
  const files = [...walk(libDir), ...walk(join(repoDir, 'bin'))].filter((f) => !(f + sep).startsWith(kernelDir));
  t.ok(files.length > 20, `${files.length} files outside the kernel`);
  const bad: string[] = [];
  let count = 0;
  for (const f of files) {
    for (const spec of specifiers(readFileSync(f, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(f), spec);
      if (!target.startsWith(kernelDir)) continue;
      count++;
      const inKernel = relative(kernelDir, target).split(sep).join('/');
      const allowed = [...KERNEL_ENTRY, ...(f === join(libDir, 'drivers', 'api.ts') ? INDEX_EXTRA : [])];
      if (!allowed.some((re) => re.test(inKernel))) bad.push(`${relative(repoDir, f)} imports lib/kernel/${inKernel}`);
    }
  }
  t.ok(count > 10, `${count} imports of the kernel checked`);
  t.same(bad, [], 'each is host-ops.ts, include/**, arch/setup or arch/syscalls (lib/drivers/api.ts: also the link order)');
});

/** Runs the repository's tsc on a tsconfig; resolves to its exit status and output. */
function tsc(project: string): { status: number | null; out: string } {
  const bin = join(repoDir, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [bin, '-p', project], { encoding: 'utf8' });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

t.test('lib/kernel compiles on its own with no host types (a Node global there is an error)', async (t) => {
  const r = tsc(join(repoDir, 'lib', 'kernel'));
  t.equal(r.status, 0, 'tsc -p lib/kernel: clean', { output: r.out.slice(0, 2000) });
  // The same check on a copy of the kernel with one Node global in it must fail.
  const tmp = mkdtempSync(join(tmpdir(), 'lkl-ts-kernel-types-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  cpSync(join(repoDir, 'lib', 'kernel'), join(tmp, 'lib', 'kernel'), { recursive: true });
  cpSync(join(repoDir, 'tsconfig.json'), join(tmp, 'tsconfig.json'));
  // The copy is an ES module package like the repository (without it tsc reads the files
  // as CommonJS, and its complaints about that hide the ones this test looks for).
  cpSync(join(repoDir, 'package.json'), join(tmp, 'package.json'));
  writeFileSync(join(tmp, 'lib', 'kernel', 'kernel', 'broken.ts'),
    'export const leak = Buffer.from(\'x\').length + Number(process.env.X ?? 0);\n');
  const broken = tsc(join(tmp, 'lib', 'kernel'));
  t.not(broken.status, 0, 'a kernel file that uses Buffer and process does not compile');
  t.match(broken.out, /broken\.ts.*Cannot find name 'Buffer'/, 'tsc names Buffer');
  t.match(broken.out, /broken\.ts.*Cannot find name 'process'/, 'and process');
});
