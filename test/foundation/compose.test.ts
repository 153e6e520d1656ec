// No Docker engine runs here, so the compose file is checked as data: services, images, ports, env agree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';

const ROOT = new URL('../../', import.meta.url).pathname;
const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'));

test('compose has the production services', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), [
    'postgresql',
    'pxeflow-controller',
    'temporal',
    'temporal-ui',
  ]);
  assert.match(compose.services.postgresql.image, /^postgres:\d+/);
  assert.match(compose.services.temporal.image, /^temporalio\/auto-setup:1\.(29|[3-9]\d)\./);
  assert.match(compose.services['temporal-ui'].image, /^temporalio\/ui:/);
});

test('temporal uses postgres and publishes the frontend port the controller dials', () => {
  const t = compose.services.temporal;
  assert.equal(t.environment.POSTGRES_SEEDS, 'postgresql');
  assert.match(t.environment.DB, /^postgres/);
  const published = t.ports.map((p: string) => p.split(':').slice(-2).join(':'));
  const ctl = compose.services['pxeflow-controller'];
  const [, port] = ctl.environment.TEMPORAL_ADDRESS.split(':');
  assert.ok(published.includes(`${port}:7233`), `controller dials ${ctl.environment.TEMPORAL_ADDRESS}`);
  assert.equal(compose.services['temporal-ui'].environment.TEMPORAL_ADDRESS, 'temporal:7233');
});

test('the controller runs on the host network with NET_ADMIN and NET_RAW, secrets as files', () => {
  const ctl = compose.services['pxeflow-controller'];
  assert.equal(ctl.network_mode, 'host');
  assert.deepEqual([...ctl.cap_add].sort(), ['NET_ADMIN', 'NET_RAW']);
  assert.equal(ctl.build, '.');
  assert.ok(ctl.secrets.includes('bmc_password'));
  // no password value anywhere in the controller's environment, only references
  for (const [k, v] of Object.entries(ctl.environment)) {
    assert.ok(!/PASSWORD$/.test(k), `${k}=${v} looks like a clear-text password`);
  }
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
  assert.match(dockerfile, /dnsmasq-base/);
  assert.match(dockerfile, /ipmitool/);
});
