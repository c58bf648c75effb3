/*
 * BusyPoll (dev-reader.ts): after a reply the event loop keeps turning without blocking for
 * the window, then stops; timers and I/O still run while it does; 0 is off.
 */
import t from 'tap';
import { BusyPoll } from '../../lib/fuse/dev-reader.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('window 0: nothing polls', async (t) => {
  const b = new BusyPoll(0);
  b.kick();
  t.equal(b.active, false, 'not polling');
  await sleep(20);
  t.equal(b.turns, 0, 'no turn spent polling');
});

t.test('a 50 ms window: polls, then stops by itself', async (t) => {
  const b = new BusyPoll(50_000);
  const t0 = performance.now();
  b.kick();
  t.equal(b.active, true, 'polling right after the reply');
  // Timers still fire while it polls (the loop turns; it is not a busy loop inside a callback).
  let fired = 0;
  await new Promise<void>((r) => setTimeout(() => { fired = performance.now() - t0; r(); }, 1));
  t.ok(fired > 0 && fired < 50 && b.active, `a 1 ms timer fired during the window (${fired.toFixed(2)} ms)`);
  while (b.active && performance.now() - t0 < 1000) await sleep(1);
  const took = performance.now() - t0;
  t.equal(b.active, false, 'stopped');
  t.ok(took >= 50 && took < 1000, `after the window (${took.toFixed(1)} ms)`);
  t.ok(b.turns > 10, `${b.turns} turns of the loop polled`);
  const turns = b.turns;
  await sleep(20);
  t.equal(b.turns, turns, 'none once stopped: an idle mount costs no CPU');
});

t.test('each reply extends the window', async (t) => {
  const b = new BusyPoll(50_000);
  const t0 = performance.now();
  let stoppedEarly = false, lastKick = 0;
  for (let i = 0; i < 10; i++) {
    b.kick();
    lastKick = performance.now();
    await sleep(1);
    if (!b.active) stoppedEarly = true;
  }
  t.notOk(stoppedEarly, 'polling all through replies ~1 ms apart');
  while (b.active && performance.now() - t0 < 2000) await sleep(1);
  const after = performance.now() - lastKick;
  t.ok(after >= 50 && after < 1000, `stopped ${after.toFixed(1)} ms after the last reply`);
});
