// The per-BMC lock and the controller-wide limiter (pure logic, no BMC needed).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBmcLimiter, KeyedMutex } from '../../power/limit.ts';

describe('BMC call limits', () => {
  it('KeyedMutex runs one task per key at a time, keys in parallel, and survives failures', async () => {
    const mutex = new KeyedMutex();
    const trace: string[] = [];
    const task = (key: string, id: string, fail = false) =>
      mutex.run(key, async () => {
        trace.push(`${id}+`);
        await sleep(5);
        trace.push(`${id}-`);
        if (fail) throw new Error(`${id} failed`);
        return id;
      });
    const results = await Promise.allSettled([
      task('a', 'a1', true),
      task('a', 'a2'),
      task('b', 'b1'),
      task('a', 'a3'),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
    );
    const onlyA = trace.filter((t) => t.startsWith('a'));
    assert.deepEqual(onlyA, ['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-'], 'same key never overlaps, FIFO');
    assert.ok(trace.indexOf('b1+') < trace.indexOf('a1-'), 'another key does not wait');
    await sleep(0);
    assert.equal(mutex.size, 0, 'idle keys are forgotten');
  });

  it('createBmcLimiter caps concurrency and rejects nonsense', async () => {
    const limit = createBmcLimiter(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        limit(async () => {
          active++;
          peak = Math.max(peak, active);
          await sleep(2);
          active--;
        }),
      ),
    );
    assert.equal(peak, 3);
    assert.throws(() => createBmcLimiter(0), /positive integer/);
  });
});
