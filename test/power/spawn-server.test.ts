// The small helper process that starts ipmitool for the controller (power/spawn-server.ts), with real commands.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { execa } from 'execa';
import { isRunning } from '../../lab/bmc/proc.ts';
import { SpawnServer } from '../../power/spawn-server.ts';

const server = new SpawnServer();
after(() => server.close());
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

test('runs a command with exactly the environment given, output and exit code back', async () => {
  process.env.PXEFLOW_TEST_INHERITED = 'leak';
  const r = await server.run({
    file: 'sh',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, run by sh
    args: ['-c', 'echo "out:$SECRET:${PXEFLOW_TEST_INHERITED:-none}"; echo err >&2; exit 3'],
    env: { ...env, SECRET: 's3' },
    timeoutMs: 5000,
  });
  assert.equal(r.exitCode, 3);
  assert.equal(r.stdout.trim(), 'out:s3:none');
  assert.equal(r.stderr.trim(), 'err');
  assert.equal(r.timedOut, false);
});

test('kills a command that outlives its timeout', async () => {
  const t = performance.now();
  const r = await server.run({ file: 'sleep', args: ['30'], env, timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, undefined);
  assert.ok(performance.now() - t < 10_000);
});

test('a command that cannot start says why', async () => {
  const r = await server.run({ file: '/nonexistent/ipmitool', args: [], env, timeoutMs: 5000 });
  assert.equal(r.exitCode, undefined);
  assert.match(r.error ?? '', /ENOENT/);
});

test('many commands at once each get their own answer', async () => {
  const rs = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      server.run({ file: 'sh', args: ['-c', `echo ${i}`], env, timeoutMs: 5000 }),
    ),
  );
  assert.deepEqual(
    rs.map((r) => r.stdout.trim()),
    Array.from({ length: 40 }, (_, i) => String(i)),
  );
});

test('the helper dying mid-command fails that command and the next one starts a new helper', async () => {
  const s = new SpawnServer();
  try {
    const slow = s.run({ file: 'sleep', args: ['30'], env, timeoutMs: 60_000 });
    const helper = (s as unknown as { child: { pid: number } }).child.pid;
    process.kill(helper, 'SIGKILL');
    const r = await slow;
    assert.equal(r.exitCode, undefined);
    assert.match(r.error ?? '', /spawn helper exited/);
    // started while the dead helper's exit may still be on its way: that exit must not fail this command
    const again = await s.run({ file: 'sh', args: ['-c', 'sleep 0.3; echo ok'], env, timeoutMs: 5000 });
    assert.equal(again.error, undefined);
    assert.equal(again.stdout.trim(), 'ok');
    assert.notEqual((s as unknown as { child: { pid: number } }).child.pid, helper, 'a new helper');
  } finally {
    s.close();
  }
});

test('the helper and its commands do not outlive a parent killed with SIGKILL', async () => {
  const script = `
    import { SpawnServer } from ${JSON.stringify(new URL('../../power/spawn-server.ts', import.meta.url).pathname)};
    const s = new SpawnServer();
    void s.run({ file: 'sleep', args: ['60'], env: { PATH: process.env.PATH }, timeoutMs: 120000 });
    setTimeout(() => console.log(JSON.stringify({ helper: s.child.pid })), 300);
    setInterval(() => {}, 1000);`;
  const parent = execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], { reject: false });
  const line = await new Promise<string>((resolve) => parent.stdout?.once('data', (d) => resolve(String(d))));
  const { helper } = JSON.parse(line) as { helper: number };
  const sleeper = Number(
    (await execa('pgrep', ['-P', String(helper), '-x', 'sleep'], { reject: false })).stdout.trim(),
  );
  assert.ok(sleeper > 0, 'the command runs under the helper');
  parent.kill('SIGKILL');
  await parent;
  for (let i = 0; i < 50 && (isRunning(helper) || isRunning(sleeper)); i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok(!isRunning(helper), 'helper gone');
  assert.ok(!isRunning(sleeper), 'its command gone');
});
