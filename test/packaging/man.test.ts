/*
 * The man pages: each renders with man(1) without a warning, and each has an entry for
 * every option its program's --help lists (for lklfuse also every -o option), so a page
 * cannot fall behind the command line.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { which } from '../lib/sh.js';
import { PROGRAMS, helpOptions, helpText, pageEntries, pageOf } from './helpers.js';

t.test('every program has a man page listed in package.json', async (t) => {
  for (const prog of PROGRAMS) t.ok(fs.existsSync(pageOf(prog)), `${prog}: ${pageOf(prog)}`);
});

t.test('man --warnings renders each page without a warning', { skip: which('man') ? false : 'no man(1) (Debian package man-db)' }, async (t) => {
  for (const prog of PROGRAMS) {
    const page = pageOf(prog);
    for (const locale of [process.env.LANG ?? '', 'C.UTF-8', 'C']) {
      const r = spawnSync('man', ['--warnings', '-l', page], {
        env: { ...process.env, MANWIDTH: '80', LANG: locale, LC_ALL: locale, MANPAGER: 'cat', PAGER: 'cat' },
        stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8',
      });
      t.equal(r.status, 0, `${prog} (LANG=${locale}): man exits 0`);
      t.equal(r.stderr, '', `${prog} (LANG=${locale}): no warnings`);
      t.match(r.stdout, new RegExp(`NAME\\s+${prog} - `), `${prog} (LANG=${locale}): rendered, with its NAME line`);
    }
  }
});

t.test('each page has an entry for every option --help lists', async (t) => {
  for (const prog of PROGRAMS) {
    const { flags, mountOptions } = helpOptions(helpText(prog));
    // The parse must find the table: every program has at least -h, --help, -V, --version.
    t.ok(flags.length >= 5 && flags.includes('--help') && flags.includes('-V'), `${prog}: --help lists ${flags.length} option names`, { flags });
    if (prog === 'lklfuse') t.ok(mountOptions.length >= 25 && mountOptions.includes('allow_other'), `lklfuse: --help lists ${mountOptions.length} -o options`, { mountOptions });
    const entries = pageEntries(fs.readFileSync(pageOf(prog), 'utf8'));
    const missing = [...flags, ...mountOptions].filter((o) => !entries.has(o));
    t.same(missing, [], `${prog}: the page has an entry for each of ${flags.length + mountOptions.length} options`, { entries: [...entries] });
  }
});
