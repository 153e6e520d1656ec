import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { type DhcpConfigInput, DhcpConfigError, renderDnsmasqConfig } from '../../netboot/dhcp/config.ts';

const base: DhcpConfigInput = {
  stateDir: '/var/lib/pxeflow/dhcp',
  interface: 'br-prov',
  controllerAddress: '10.20.0.1',
  subnet: '10.20.0.0/24',
  range: { start: '10.20.0.100', end: '10.20.0.199' },
};

const lines = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

describe('dnsmasq config rendering', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(`${tmpdir()}/pxf-dhcpconf-`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** dnsmasq's own syntax check (`--test`) must accept every rendering. */
  async function dnsmasqAccepts(text: string): Promise<void> {
    const file = `${dir}/dnsmasq.conf`;
    await writeFile(file, text);
    const r = await execa('dnsmasq', ['--test', `--conf-file=${file}`], { reject: false });
    assert.equal(r.exitCode, 0, `dnsmasq --test rejected the config: ${r.stderr}\n${text}`);
  }

  test('authoritative mode: DHCP only, bound to the interface, unknown MACs ignored, boot files by class', async () => {
    const text = renderDnsmasqConfig(base);
    const l = lines(text);
    for (const want of [
      'port=0',
      'interface=br-prov',
      'bind-interfaces',
      'except-interface=lo',
      'dhcp-authoritative',
      'no-ping',
      'log-dhcp',
      'log-facility=-',
      'keep-in-foreground',
      'dhcp-leasefile=/var/lib/pxeflow/dhcp/leases',
      'dhcp-hostsdir=/var/lib/pxeflow/dhcp/hosts',
      'dhcp-optsdir=/var/lib/pxeflow/dhcp/opts',
      'dhcp-ignore=tag:!known',
      'dhcp-range=set:prov,10.20.0.100,10.20.0.199,255.255.255.0,3600',
      'dhcp-match=set:ipxe,175',
      'dhcp-userclass=set:ipxe,iPXE',
      'dhcp-match=set:efi64,option:client-arch,7',
      'dhcp-match=set:efi64,option:client-arch,9',
      'dhcp-match=set:bios,option:client-arch,0',
      'dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,10.20.0.1',
      'dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe,,10.20.0.1',
      'dhcp-option=tag:ipxe,encap:175,176,1b',
      'dhcp-option=option:router',
      'enable-ra',
      'dhcp-range=::,constructor:br-prov,ra-only',
    ]) {
      assert.ok(l.includes(want), `missing line ${want}`);
    }
    assert.ok(!l.some((x) => x.startsWith('enable-tftp')), 'TFTP must be off');
    await dnsmasqAccepts(text);
  });

  test('options: pxelinux path, gateway, DNS, domain, lease time, no RA, discovery URL', async () => {
    const text = renderDnsmasqConfig({
      ...base,
      biosBootFile: 'pxelinux.0',
      gateway: '10.20.0.254',
      dns: ['10.20.0.53', '10.20.0.54'],
      domain: 'cluster.example',
      leaseTimeSeconds: 7200,
      leaseMax: 5000,
      routerAdvertisement: false,
      discoveryIpxeUrl: 'http://10.20.0.1:8080/ipxe/discover',
    });
    const l = lines(text);
    assert.ok(l.includes('dhcp-boot=tag:!ipxe,tag:!efi,pxelinux.0,,10.20.0.1'));
    assert.ok(l.includes('dhcp-option=option:router,10.20.0.254'));
    assert.ok(l.includes('dhcp-option=option:dns-server,10.20.0.53,10.20.0.54'));
    assert.ok(l.includes('dhcp-option=option:domain-name,cluster.example'));
    assert.ok(l.includes('dhcp-lease-max=5000'));
    assert.ok(l.includes('dhcp-range=set:prov,10.20.0.100,10.20.0.199,255.255.255.0,7200'));
    assert.ok(l.includes('dhcp-option=tag:ipxe,option:bootfile-name,"http://10.20.0.1:8080/ipxe/discover"'));
    assert.ok(!l.includes('enable-ra'));
    await dnsmasqAccepts(text);
  });

  test('proxyDHCP mode: no addresses; PXE services and the boot-by-MAC file for reserved MACs only', async () => {
    const { range: _r, ...rest } = base;
    const text = renderDnsmasqConfig({
      ...rest,
      mode: 'proxy',
      proxyBootUrl: 'http://10.20.0.1:8080/boot-by-mac/',
    });
    const l = lines(text);
    assert.ok(l.includes('dhcp-range=set:prov,10.20.0.0,proxy,255.255.255.0'));
    assert.ok(!l.includes('dhcp-authoritative'));
    assert.ok(l.includes('dhcp-ignore=tag:!pxeflow'));
    assert.ok(l.some((x) => x.startsWith('pxe-service=tag:!ipxe,tag:pxeflow,x86PC,')));
    assert.ok(l.some((x) => x.startsWith('pxe-service=tag:!ipxe,tag:pxeflow,X86-64_EFI,')));
    assert.ok(
      l.includes(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: iPXE's own setting syntax, filled in by iPXE
        'dhcp-boot=tag:ipxe,tag:pxeflow,http://10.20.0.1:8080/boot-by-mac/${net0/mac:hexhyp},,10.20.0.1',
      ),
    );
    await dnsmasqAccepts(text);
    assert.throws(
      () => renderDnsmasqConfig({ ...rest, mode: 'proxy' }),
      /proxyBootUrl: required in proxy mode/,
    );
  });

  test('without a range only reservations are served (static range)', async () => {
    const { range: _r, ...rest } = base;
    const text = renderDnsmasqConfig(rest);
    assert.ok(lines(text).includes('dhcp-range=set:prov,10.20.0.0,static,255.255.255.0,3600'));
    await dnsmasqAccepts(text);
  });

  test('bad input names the field; nothing can inject a config line', () => {
    const bad: [Partial<DhcpConfigInput>, RegExp][] = [
      [{ interface: 'br0\nenable-tftp' }, /interface/],
      [{ interface: 'a-very-long-interface-name' }, /interface/],
      [{ controllerAddress: '10.30.0.1' }, /controllerAddress: .*outside the subnet/],
      [{ range: { start: '10.20.0.200', end: '10.20.0.100' } }, /range: range.end is before/],
      [{ range: { start: '10.20.0.1', end: '10.20.0.100' } }, /controller address lies inside the range/],
      [{ subnet: '10.20.0.1/24' }, /subnet/],
      [{ discoveryIpxeUrl: 'http://x/"\ndhcp-range=0.0.0.0' }, /discoveryIpxeUrl/],
      [{ dns: ['8.8.8.8,9.9.9.9'] }, /dns/],
      [{ mode: 'proxy', proxyBootUrl: 'http://10.20.0.1/b/' }, /proxy mode assigns no addresses/],
      [{ mode: 'proxy', proxyBootUrl: 'http://x/\ndhcp-range=0.0.0.0' }, /proxyBootUrl/],
      [{ leaseTimeSeconds: 10 }, /leaseTimeSeconds/],
    ];
    for (const [patch, re] of bad) {
      assert.throws(
        () => renderDnsmasqConfig({ ...base, ...patch } as DhcpConfigInput),
        (e: Error) => e instanceof DhcpConfigError && re.test(e.message),
        `expected ${re} for ${JSON.stringify(patch)}`,
      );
    }
  });
});
