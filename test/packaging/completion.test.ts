/*
 * Shell completion as bash runs it: the script `PROG --completion bash` prints is sourced
 * in `bash -c`, and its function is called with COMP_LINE, COMP_POINT, COMP_WORDS and
 * COMP_CWORD set as bash sets them for the line (bash also splits words at "=", see
 * COMP_WORDBREAKS); COMPREPLY must hold real option names (every one --help lists), -o
 * items, -t types, and nothing for a file-name argument (bash then completes file names,
 * `complete -o default`). The programs are this build's, found on PATH under their names
 * as an installed copy is.
 */
import t from 'tap';
import type { Test as Tap } from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { which } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { PROGRAMS, binOf, helpOptions, helpText } from './helpers.js';

const bash = which('bash');

/** A directory with PROG wrappers for this build's programs, to put first on PATH. */
function binDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = scratchDir(t, 'completion');
  for (const prog of PROGRAMS) {
    fs.writeFileSync(path.join(dir, prog), `#!/bin/sh\nexec "${process.execPath}" "${binOf(prog)}" "$@"\n`, { mode: 0o755 });
  }
  return dir;
}

interface Case { line: string; words?: string[] }

/**
 * COMPREPLY of PROG's completion function for each case's `line` (the cursor at its end),
 * in one bash that sources the script once; `words` are COMP_WORDS as bash splits that
 * line (default: at blanks).
 */
function completeAll(dir: string, prog: string, cases: Case[]): string[][] {
  const script = [`source <(${prog} --completion bash) || exit 3`];
  const args: string[] = [];
  for (const c of cases) {
    const w = c.words ?? (c.line.endsWith(' ') ? [...c.line.trim().split(/ +/), ''] : c.line.split(/ +/));
    // $1 is the line, $2 the number of words, then the words.
    script.push(
      'COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; n=$2; shift 2',
      'COMP_WORDS=("${@:1:n}"); shift "$n"; COMP_CWORD=$(( n - 1 )); COMPREPLY=()',
      `_${prog}_completion || exit 4`,
      'printf \'%s\\n\' "${COMPREPLY[@]}" "--end--"');
    args.push(c.line, String(w.length), ...w);
  }
  const r = spawnSync(bash!, ['-c', script.join('\n'), 'bash', ...args], {
    encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, SHELL: '/bin/bash' },
  });
  if (r.status !== 0) throw new Error(`bash exited ${r.status}: ${r.stderr}`);
  const out = r.stdout.split('--end--\n').slice(0, cases.length).map((b) => b.split('\n').filter((l) => l !== ''));
  if (out.length !== cases.length) throw new Error(`${out.length} answers for ${cases.length} cases: ${r.stdout}`);
  return out;
}
const complete = (dir: string, prog: string, line: string, words?: string[]) => completeAll(dir, prog, [{ line, words }])[0]!;

const help = new Map<string, ReturnType<typeof helpOptions>>();
const helpOf = (prog: string) => help.get(prog) ?? help.set(prog, helpOptions(helpText(prog))).get(prog)!;

/** The cases every program answers alike; `reply` checks what comes back. */
function commonCases(prog: string): (Case & { name: string; check(t: Tap, reply: string[]): void })[] {
  const { flags } = helpOf(prog);
  return [
    {
      name: `${prog} -`, line: `${prog} -`, check: (t, reply) => {
        t.same(flags.filter((f) => !reply.includes(f)), [], `${prog} -<Tab>: all ${flags.length} options of --help offered`, { reply });
        t.ok(reply.length > 0 && reply.every((c) => c.startsWith('-')), `${prog} -<Tab>: nothing but options`, { reply });
      },
    },
    { name: `${prog} --he`, line: `${prog} --he`, check: (t, reply) => t.same(reply, ['--help'], `${prog} --he<Tab>: --help`) },
    { name: `${prog} <Tab>`, line: `${prog} `, check: (t, reply) => t.same(reply, [], `${prog} <Tab>: none (a file name comes first)`) },
    { name: `${prog} --completion`, line: `${prog} --completion `, check: (t, reply) => t.same(reply, ['bash', 'zsh'], `${prog} --completion <Tab>: the shells`) },
  ];
}

const SPECIFIC: Record<string, (Case & { check(t: Tap, reply: string[]): void })[]> = {
  lklfuse: [
    { line: 'lklfuse disk.im', check: (t, r) => t.same(r, [], 'lklfuse disk.im<Tab>: none (IMAGE is a file)') },
    { line: 'lklfuse disk.img -f ', check: (t, r) => t.same(r, [], 'lklfuse IMAGE -f <Tab>: none (MOUNTPOINT is a directory)') },
    {
      line: 'lklfuse disk.img /mnt -o ', check: (t, all) => {
        // Every -o option of lklfuse's own that --help lists (not the values listed under
        // transport=, not those accepted from mount(8) and ignored) is offered.
        const { mountOptions } = helpOf('lklfuse');
        const own = mountOptions.slice(0, mountOptions.indexOf('dev')).filter((o) => o !== 'kernel' && o !== 'fuse-native');
        t.ok(own.length >= 18, `--help lists ${own.length} own -o options`);
        t.same(own.filter((o) => !all.some((c) => c.replace(/=$/, '') === o)), [], '-o <Tab>: all of them offered', { all });
      },
    },
    { line: 'lklfuse disk.img /mnt -o ro,ty', check: (t, r) => t.same(r, ['ro,type='], '-o ro,ty<Tab>: the item after the comma') },
    {
      line: 'lklfuse disk.img /mnt -o ro,type=', words: ['lklfuse', 'disk.img', '/mnt', '-o', 'ro,type', '='],
      check: (t, r) => t.same(r, ['ext2', 'ext3', 'ext4', 'vfat'], '-o ro,type=<Tab>: the types (what follows the "=" bash splits at)'),
    },
    {
      line: 'lklfuse disk.img /mnt -o transport=k', words: ['lklfuse', 'disk.img', '/mnt', '-o', 'transport', '=', 'k'],
      check: (t, r) => t.same(r, ['kernel'], '-o transport=k<Tab>: kernel'),
    },
  ],
  cptofs: [
    { line: 'cptofs -i ', check: (t, r) => t.same(r, [], 'cptofs -i <Tab>: none (IMAGE is a file)') },
    { line: 'cptofs -t e', check: (t, r) => t.same(r, ['ext2', 'ext3', 'ext4'], 'cptofs -t e<Tab>: the types') },
  ],
  cpfromfs: [
    { line: 'cpfromfs --type v', check: (t, r) => t.same(r, ['vfat'], 'cpfromfs --type v<Tab>: vfat') },
  ],
  fs2tar: [
    { line: 'fs2tar --no', check: (t, r) => t.same(r, ['--no-xattrs'], 'fs2tar --no<Tab>: --no-xattrs') },
    { line: 'fs2tar -t ext', check: (t, r) => t.same(r, ['ext2', 'ext3', 'ext4'], 'fs2tar -t ext<Tab>: the types') },
  ],
};

t.test('bash completion', { skip: bash ? false : 'no bash' }, async (t) => {
  const dir = binDir(t);
  for (const prog of PROGRAMS) {
    t.test(prog, async (t) => {
      const reg = spawnSync(bash!, ['-c', `source <(${prog} --completion bash) && complete -p ${prog}`], {
        encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` },
      });
      t.equal(reg.status, 0, `${prog}: the script sources cleanly`, { stderr: reg.stderr });
      t.match(reg.stdout, new RegExp(`^complete -o bashdefault -o default -F _${prog}_completion ${prog}$`, 'm'),
        `${prog}: registered as complete -F _${prog}_completion, falling back to file names (-o default)`);
      const cases = [...commonCases(prog), ...(SPECIFIC[prog] ?? [])];
      const replies = completeAll(dir, prog, cases);
      cases.forEach((c, i) => c.check(t, replies[i]!));
    });
  }

  t.test('--completion without a shell, and with an unknown one', async (t) => {
    // bin/lklfuse.ts and lib/tools/image.ts (all three tools) handle the option.
    for (const prog of ['lklfuse', 'cptofs']) {
      const s = spawnSync(process.execPath, [binOf(prog), '--completion'], { encoding: 'utf8', env: { ...process.env, SHELL: '/bin/bash' } });
      t.equal(s.status, 0, `${prog} --completion (SHELL=/bin/bash): exit 0`);
      t.match(s.stdout, /^# bash completion/, `${prog} --completion (SHELL=/bin/bash): the bash script`);
      const z = spawnSync(process.execPath, [binOf(prog), '--completion'], { encoding: 'utf8', env: { ...process.env, SHELL: '/usr/bin/zsh' } });
      t.match(z.stdout, /^#compdef /, `${prog} --completion (SHELL=/usr/bin/zsh): the zsh script`);
      const bad = spawnSync(process.execPath, [binOf(prog), '--completion', 'fish'], { encoding: 'utf8' });
      t.equal(bad.status, 1, `${prog} --completion fish: exit 1`);
      t.match(bad.stderr, /unknown shell 'fish'/, `${prog} --completion fish: says why`);
    }
  });
});

t.test('the zsh script parses', { skip: which('zsh') ? false : 'no zsh (the bash tests above cover the answers)' }, async (t) => {
  for (const prog of PROGRAMS) {
    const s = spawnSync(process.execPath, [binOf(prog), '--completion', 'zsh'], { encoding: 'utf8' });
    t.equal(s.status, 0, `${prog} --completion zsh: exit 0`);
    t.match(s.stdout, new RegExp(`^#compdef ${prog}\\n`), `${prog}: a #compdef file`);
    const z = spawnSync('zsh', ['-n', '-f'], { input: s.stdout, encoding: 'utf8' });
    t.equal(z.status, 0, `${prog}: zsh -n accepts it`, { stderr: z.stderr });
  }
});
