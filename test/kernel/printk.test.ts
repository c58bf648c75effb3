// printk: levels as Linux marks them, every message to registered consoles, and to the
// host's console unless it is below console_loglevel (debug, by default).
import t from 'tap';
import { startKernel } from '../../lib/index.js';
import {
  KERN_DEBUG, KERN_ERR, KERN_INFO, KERN_WARNING, printk, printk_get_level, pr_debug, pr_err, register_console,
  set_console_loglevel, unregister_console,
} from '../../lib/kernel/kernel/printk.js';

t.test('levels, consoles and the host console', async (t) => {
  t.equal(printk_get_level(KERN_ERR + 'x'), 3, 'KERN_ERR is level 3');
  t.equal(printk_get_level(KERN_DEBUG + 'x'), 7, 'KERN_DEBUG is level 7');
  t.equal(printk_get_level('plain'), -1, 'an unmarked message has no level of its own');
  const host: string[] = [];
  const k = await startKernel({ memMiB: 16, print: (m) => host.push(m) });
  t.teardown(() => k.halt());
  const seen: [number, string][] = [];
  const con = { write: (level: number, text: string) => seen.push([level, text]) };
  register_console(con);
  host.length = 0;
  pr_err('an error');
  printk(KERN_WARNING + 'a warning');
  printk(KERN_INFO + 'some news');
  pr_debug('a detail');
  printk('no level');
  unregister_console(con);
  printk(KERN_ERR + 'after unregister');
  t.same(seen, [[3, 'an error'], [4, 'a warning'], [6, 'some news'], [7, 'a detail'], [4, 'no level']],
    'the console gets every message with its level (default 4), markers stripped');
  t.same(host, ['an error', 'a warning', 'some news', 'no level', 'after unregister'],
    'the host console gets all but debug, markers stripped');
  set_console_loglevel(4);
  host.length = 0;
  printk(KERN_INFO + 'quiet now');
  pr_err('still loud');
  set_console_loglevel(7);
  t.same(host, ['still loud'], 'console_loglevel 4: only errors and worse reach the host');
});

t.test('printing with no kernel booted goes nowhere, quietly', async (t) => {
  const seen: string[] = [];
  const con = { write: (_l: number, text: string) => seen.push(text) };
  register_console(con);
  t.doesNotThrow(() => pr_err('nobody home'), 'no throw');
  unregister_console(con);
  t.same(seen, ['nobody home'], 'a registered console still gets it');
});
