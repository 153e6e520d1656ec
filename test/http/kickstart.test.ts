// Kickstart rendering: valid for anaconda per the real ksvalidator (pykickstart), hostile values refused.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import {
  type KickstartRequestContext,
  type KickstartSettings,
  KickstartValueError,
  renderKickstart,
} from '../../netboot/http/kickstart.ts';

const KSVALIDATOR = new URL('../../.tools/venv/bin/ksvalidator', import.meta.url).pathname;
const HASH = `$6$rounds=5000$abcdefgh$${'B'.repeat(86)}`;
const settings: KickstartSettings = { rootPasswordHash: HASH, osDisk: 'sda' };
const ctx: KickstartRequestContext = {
  node: 'r01-n07',
  hostname: 'r01-n07.storage.example',
  mac: '52:54:00:12:34:56',
  repoUrl: 'http://10.20.0.1:8080/image/rhel-9.4',
  statusUrl: `http://10.20.0.1:8080/status/r01-n07/${'a'.repeat(64)}`,
  imageVersion: 'rhel-9.4',
  attempt: 2,
};

describe('kickstart template', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxeflow-ks-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function validate(text: string): Promise<void> {
    const file = join(dir, `ks-${Math.random().toString(36).slice(2)}.cfg`);
    await writeFile(file, text);
    const r = await execa(KSVALIDATOR, ['-e', '-v', 'RHEL9', file], { reject: false });
    assert.equal(r.exitCode, 0, `ksvalidator: ${r.stdout}${r.stderr}\n---\n${text}`);
  }

  it('without a root password hash the root account is locked (and still valid)', async () => {
    const text = await renderKickstart({ ...settings, rootPasswordHash: '' }, ctx);
    await validate(text);
    assert.match(text, /^rootpw --lock$/m);
    assert.doesNotMatch(text, /--iscrypted/);
  });

  it('renders a kickstart that ksvalidator accepts for RHEL9', async () => {
    const text = await renderKickstart(
      {
        ...settings,
        extraPackages: ['ceph-osd', '@storage-server', '-firewalld', 'kernel-tools*'],
        timezone: 'Europe/Paris',
      },
      ctx,
    );
    await validate(text);
    assert.match(text, /^url --url=http:\/\/10\.20\.0\.1:8080\/image\/rhel-9\.4$/m);
    assert.match(text, /^text$/m);
    assert.match(
      text,
      /^network --bootproto=dhcp --device=52:54:00:12:34:56 --hostname=r01-n07\.storage\.example --activate$/m,
    );
    assert.match(text, /^rootpw --iscrypted \$6\$rounds=5000\$abcdefgh\$B+$/m);
    assert.match(text, /^timezone Europe\/Paris --utc$/m);
    assert.match(text, /^ignoredisk --only-use=sda$/m);
    assert.match(text, /^clearpart --all --initlabel --drives=sda$/m);
    assert.match(text, /^autopart$/m);
    assert.match(text, /^bootloader --boot-drive=sda$/m);
    assert.match(text, /^reboot$/m);
    assert.match(
      text,
      /^%packages\n@\^minimal-environment\ncurl\nceph-osd\n@storage-server\n-firewalld\nkernel-tools\*\n%end$/m,
    );
    const post = `curl -fsS --retry 30 --retry-delay 2 --retry-connrefused -X POST -H 'Content-Type: application/json' --data '{"outcome":"success","detail":"installed"}' '${ctx.statusUrl}'`;
    assert.ok(text.includes(`%post --nochroot\n${post}\n%end`), text);
    assert.match(
      text,
      /^%onerror\n(#.*\n)?reason=.*PXEFLOW_FAIL_REASON.*\ncurl -fsS --retry 30 --retry-delay 2 --retry-connrefused -X POST -H 'Content-Type: application\/json' --data "\{\\"outcome\\":\\"failure\\",\\"detail\\":\\"\$reason\\"\}" 'http:\/\/10\.20\.0\.1:8080\/status\/r01-n07\/a{64}'\n%end$/m,
    );
  });

  it('is valid without a known MAC and with a by-id disk', async () => {
    const text = await renderKickstart(
      { ...settings, osDisk: 'disk/by-id/wwn-0x5000c500a1b2c3d4' },
      { ...ctx, mac: undefined },
    );
    await validate(text);
    assert.match(text, /--device=link /);
    assert.match(text, /--only-use=disk\/by-id\/wwn-0x5000c500a1b2c3d4$/m);
  });

  it('refuses values that could break out of a kickstart line, naming the field', async () => {
    const cases: [string, Partial<KickstartSettings>, Partial<KickstartRequestContext>][] = [
      ['hostname', {}, { hostname: 'a.b\n%pre\nrm -rf /\n%end' }],
      ['hostname', {}, { hostname: 'bad name' }],
      ['hostname', {}, { hostname: '-leading' }],
      ['osDisk', { osDisk: 'sda --drives=sdb' }, {}],
      ['osDisk', { osDisk: 'sda\nrootpw x' }, {}],
      ['osDisk', { osDisk: '../../dev/sdb' }, {}],
      ['packages[3]', { extraPackages: ['ok', 'evil\n%end\n%post\nreboot'] }, {}],
      ['packages[2]', { extraPackages: ["pkg'quote"] }, {}],
      ['mac', {}, { mac: '52:54:00:12:34:56 --bootproto=static' }],
      ['repoUrl', {}, { repoUrl: "http://x/' ; reboot ; '" }],
      ['repoUrl', {}, { repoUrl: 'ftp://x/' }],
      ['statusUrl', {}, { statusUrl: "http://x/status/n/t' --data 'x" }],
      ['timezone', { timezone: 'UTC; reboot' }, {}],
      ['rootPasswordHash', { rootPasswordHash: 'plaintext-password' }, {}],
      ['rootPasswordHash', { rootPasswordHash: `${HASH}\nsshkey x` }, {}],
    ];
    for (const [field, s, c] of cases) {
      await assert.rejects(
        renderKickstart({ ...settings, ...s }, { ...ctx, ...c }),
        (err: unknown) => {
          assert.ok(err instanceof KickstartValueError, String(err));
          assert.equal(err.field, field);
          assert.match(err.message, new RegExp(`^kickstart ${field.replace(/[[\]]/g, '\\$&')}: `));
          return true;
        },
        `${field}: ${JSON.stringify({ ...s, ...c })}`,
      );
    }
  });

  it('never puts the root hash or the status URL into an error message', async () => {
    const secret = '$6$notreally';
    await assert.rejects(
      renderKickstart({ ...settings, rootPasswordHash: `${secret} x` }, ctx),
      (err: Error) => {
        assert.ok(!err.message.includes(secret), err.message);
        return true;
      },
    );
    await assert.rejects(
      renderKickstart(settings, { ...ctx, statusUrl: `http://x/${'c'.repeat(64)} x` }),
      (err: Error) => {
        assert.ok(!err.message.includes('c'.repeat(64)), err.message);
        return true;
      },
    );
  });

  it('renders a custom template with the same variables', async () => {
    const path = join(dir, 'custom.ks.eta');
    await writeFile(
      path,
      [
        'text',
        'url --url=<%= it.repoUrl %>',
        'network --bootproto=dhcp --device=<%= it.device %> --hostname=<%= it.hostname %>',
        'rootpw --iscrypted <%= it.rootPasswordHash %>',
        'timezone <%= it.timezone %> --utc',
        'ignoredisk --only-use=<%= it.osDisk %>',
        'clearpart --all --initlabel',
        'part / --fstype=xfs --grow --ondisk=<%= it.osDisk %>',
        'bootloader --boot-drive=<%= it.osDisk %>',
        'poweroff',
        '%packages',
        '<%= it.packages.join("\\n") %>',
        '%end',
        '%post --nochroot',
        "curl -fsS --retry 5 -X POST -H 'Content-Type: application/json' --data '{\"outcome\":\"success\"}' '<%= it.statusUrl %>'",
        '%end',
        '# <%= it.node %> attempt <%= it.attempt %>',
        '',
      ].join('\n'),
    );
    const text = await renderKickstart({ ...settings, templatePath: path, extraPackages: ['jq'] }, ctx);
    await validate(text);
    assert.match(text, /^part \/ --fstype=xfs --grow --ondisk=sda$/m);
    assert.match(text, /^poweroff$/m);
    assert.match(text, /^# r01-n07 attempt 2$/m);
    assert.match(text, /^jq$/m);
    await assert.rejects(
      renderKickstart({ ...settings, templatePath: join(dir, 'missing.eta') }, ctx),
      /kickstart templatePath: cannot read/,
    );
  });
});
