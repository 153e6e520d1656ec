// `pxeflow images` on a real ISO library (the test ISO) and `pxeflow discover` against real ipmi_sim BMCs.
import assert from 'node:assert/strict';
import { link, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildTestIso } from '../../image/testiso/build.ts';
import { type BmcLab, startBmcs } from '../../lab/bmc/index.ts';
import { pxeflow } from './run.ts';

let dir: string;
let bmcs: BmcLab | undefined;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-cli-peers-'));
});
after(async () => {
  await bmcs?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('images lists the library, prepare verifies and indexes an ISO, unknown versions exit 2', async () => {
  const iso = await buildTestIso();
  const library = join(dir, 'isos');
  await (await import('node:fs/promises')).mkdir(library);
  await link(iso.isoPath, join(library, `${iso.version}.iso`));

  const before = await pxeflow(['images', '--library', library, '--json']);
  assert.equal(before.exitCode, 0, before.all);
  const list = JSON.parse(before.stdout) as Array<{ version: string; prepared: boolean; size: number }>;
  assert.deepEqual(
    list.map((i) => [i.version, i.prepared]),
    [[iso.version, false]],
  );
  assert.ok(list[0].size > 0);

  const prep = await pxeflow(['images', 'prepare', iso.version, '--library', library]);
  assert.equal(prep.exitCode, 0, prep.all);
  assert.match(prep.stdout, /sha256 {2}[0-9a-f]{64}/);
  assert.match(prep.stdout, /kernel {2}\S+/);

  const table = await pxeflow(['images', '--library', library]);
  assert.equal(table.exitCode, 0);
  assert.match(
    table.stdout,
    new RegExp(`^${iso.version.replace(/\./g, '\\.')}\\s+\\d+\\.\\d \\w+\\s+prepared\\s+[0-9a-f]{64}$`, 'm'),
  );

  // the library folder also comes from PXEFLOW_ISO_LIBRARY
  const env = await pxeflow(['images', '--json'], { env: { PXEFLOW_ISO_LIBRARY: library } });
  assert.equal((JSON.parse(env.stdout) as Array<{ prepared: boolean }>)[0].prepared, true);

  const unknown = await pxeflow(['images', 'prepare', 'storageos-0.0', '--library', library]);
  assert.equal(unknown.exitCode, 2);
  assert.match(
    unknown.stderr,
    new RegExp(`unknown ISO version "storageos-0.0"; known versions: ${iso.version}`),
  );
  const wrongSum = await pxeflow([
    'images',
    'prepare',
    iso.version,
    '--library',
    library,
    '--sha256',
    '0'.repeat(64),
  ]);
  assert.equal(wrongSum.exitCode, 2);
  assert.match(wrongSum.stderr, /sha256 mismatch/);
  const missing = await pxeflow(['images', '--library', join(dir, 'nope')]);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /nope/);
});

test('discover finds the BMCs with product and power state; without credentials only the addresses', async () => {
  bmcs = await startBmcs([{ name: 'n1' }, { name: 'n2' }], { port: 6230 + (process.pid % 500) });
  const [b1, b2] = bmcs.bmcs;
  const port = String(b1.port);
  const found = await pxeflow(
    [
      'discover',
      '--ipmi-subnet',
      bmcs.subnet,
      '--port',
      port,
      '--username',
      b1.username,
      '--password-env',
      'LAB_BMC_PW',
      '--json',
    ],
    { env: { LAB_BMC_PW: b1.password } },
  );
  // b2 has another user/password: reported with its error, and the command exits 1
  assert.equal(found.exitCode, 1, found.all);
  const rows = JSON.parse(found.stdout) as Array<{
    address: string;
    powerState?: string;
    error?: { code: string };
  }>;
  const byAddr = new Map(rows.map((r) => [r.address, r]));
  assert.equal(byAddr.get(b1.address)?.powerState, 'off');
  assert.equal(byAddr.get(b2.address)?.error?.code, 'BMC_AUTH');
  assert.ok(!found.all.includes(b1.password), 'the password never shows');

  const text = await pxeflow(['discover', '--ipmi-subnet', bmcs.subnet, '--port', port]);
  assert.equal(text.exitCode, 0, text.all);
  assert.match(text.stdout, /^ADDRESS\s+PORT\s+PRODUCT\s+POWER/m);
  for (const b of [b1, b2])
    assert.match(
      text.stdout,
      new RegExp(`^${b.address.replace(/\./g, '\\.')}\\s+${port}\\s+-\\s+-\\s+no credentials given`, 'm'),
    );

  const bad = await pxeflow(['discover', '--ipmi-subnet', '10.0.0.0/8']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--ipmi-subnet: .*more than the limit/);
  const unset = await pxeflow([
    'discover',
    '--ipmi-subnet',
    bmcs.subnet,
    '--password-env',
    'PXEFLOW_NOT_SET_ANYWHERE',
  ]);
  assert.equal(unset.exitCode, 2);
  assert.match(unset.stderr, /PXEFLOW_NOT_SET_ANYWHERE is not set/);
});
