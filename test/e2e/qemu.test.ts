// Real firmware end to end: a qemu VM (SeaBIOS + the iPXE option ROM of its virtio NIC, TCG) is a lab node,
// powered by its ipmi_sim BMC through ipmitool, installed by the real controller (dnsmasq, TFTP, HTTP) under a
// real Temporal dev server. Judged by the status callback and the workflow result, never by qemu's exit code.
//  (b) iPXE path: DHCP → per-node HTTP iPXE script → kernel + initrd over HTTP → kickstart → packages → status
//  (c) legacy path: pxelinux.0 → pxelinux.cfg/01-<mac> → kernel + initrd over TFTP → the same installer
// After success the VM powers itself off; powered on again over IPMI, its next PXE boot must be told to boot
// locally (the iPXE script `exit`, or pxelinux LOCALBOOT), which the VM's serial console shows.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { parseIPv4 } from '../../config/ipv4.ts';
import { type Lab, type LabOptions, startLab } from '../../lab/lab.ts';
import { leftoverLabObjects } from '../../lab/network.ts';
import { consoleLogPath, haveQemu, POWER_ON_MARK } from '../../lab/qemu/vm.ts';
import { IpmitoolDriver } from '../../power/index.ts';
import type { ClusterReport, NodeResult } from '../../workflows/messages.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const qemuMissing = !(await haveQemu()) && 'qemu-system-x86_64 is not installed';
let t: TestTemporal;
let dir: string;
const logger = pino({ level: process.env.PXEFLOW_TEST_LOG ?? 'silent' });

/** Non-zombie processes whose command line names this lab (tap names, namespaces, its state dir). */
async function labProcesses(needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const text = cmd.replaceAll('\0', ' ');
    if (text && needles.some((n) => text.includes(n))) hits.push(`${pid}: ${text.slice(0, 200)}`);
  }
  return hits;
}

async function withLab(
  name: string,
  opts: Partial<LabOptions>,
  fn: (lab: Lab) => Promise<void>,
): Promise<void> {
  const stateDir = join(dir, name);
  const lab = await startLab({
    nodes: 1,
    qemu: [1],
    stateDir,
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue: `e2e-${name}`,
    logger,
    clusterName: name,
    timeouts: { install: '4m', dhcpSeen: '90s' },
    attempts: 1,
    ...opts,
  });
  try {
    await fn(lab);
  } finally {
    await lab.stop();
  }
  assert.deepEqual(await leftoverLabObjects(lab.id), [], 'the lab left namespaces, taps or links behind');
  assert.deepEqual(await labProcesses([`pxf${lab.id}`, stateDir]), [], 'the lab left processes behind');
}

async function install(lab: Lab): Promise<ClusterReport> {
  const handle = await t.client.workflow.start('ClusterInstall', {
    taskQueue: `e2e-${lab.spec.name}`,
    workflowId: `pxeflow/${lab.spec.name}`,
    args: [lab.spec],
  });
  return (await handle.result()) as ClusterReport;
}

const consoleOf = (lab: Lab) => consoleLogPath(join(dir, lab.spec.name, 'nodes', `${lab.spec.name}-001`));
/** The serial console of the latest power-on only. */
async function lastBoot(lab: Lab): Promise<string> {
  const text = await readFile(consoleOf(lab), 'utf8').catch(() => '');
  return text.slice(text.lastIndexOf(POWER_ON_MARK));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The operator's ipmitool, with the lab's credentials (password through the environment, never argv). */
function driverFor(lab: Lab, index = 0): IpmitoolDriver {
  const bmc = lab.bmcs.bmcs[index];
  return new IpmitoolDriver({
    address: bmc.address,
    port: bmc.port,
    username: bmc.username,
    password: process.env[lab.secretEnv.bmcPassword]!,
  });
}

/** The phases of an install over iPXE: HTTP script, kernel and initrd over HTTP (no TFTP bootloader). */
const IPXE_CHAIN = ['power-on', 'dhcp', 'pxe-config', 'kernel', 'initrd', 'kickstart', 'packages', 'success'];

function assertInstalled(lab: Lab, report: ClusterReport, phases: string[]): NodeResult {
  const n = report.nodes.find((r) => r.node === `${lab.spec.name}-001`)!;
  assert.equal(n.outcome, 'success', JSON.stringify(n));
  assert.equal(n.attempts, 1);
  assert.equal(n.mac, lab.network.nodes[0].mac);
  assert.equal(n.bmcIp, lab.bmcs.bmcs[0].address);
  assert.match(n.dhcpIp ?? '', /^10\./);
  for (const p of phases) assert.ok(p in n.phases, `never reached ${p}: ${Object.keys(n.phases).join(',')}`);
  return n;
}

/** IPMI power-on (as the install does: PXE next boot) → the VM boots, gets its answer and powers off again. */
async function bootAgainOverIpmi(lab: Lab): Promise<string> {
  const bmc = lab.bmcs.bmcs[0];
  await waitFor('the installed VM to power itself off', async () => !(await bmc.isOn()), 60_000);
  assert.equal(await driverFor(lab).powerOnForPxe({ uefi: false }), 'on');
  // no disk: after the local-boot answer the BIOS finds nothing to boot and qemu (-no-reboot) exits
  await waitFor('the second boot to end', async () => !(await bmc.isOn()), 90_000);
  return await lastBoot(lab);
}

async function timings(lab: Lab, n: NodeResult): Promise<string> {
  // the install's power-on: the last one before DHCP was seen
  const on = (await lab.bmcs.bmcs[0].powerLog())
    .filter((e) => e.op === 'power' && e.value === '1' && e.at <= n.phases.dhcp)
    .at(-1)!.at;
  const rel = Object.entries(n.phases)
    .sort((a, b) => a[1] - b[1])
    .map(([p, at]) => `${p} +${((at - on) / 1000).toFixed(1)}s`);
  return `from IPMI power-on: ${rel.join(', ')}`;
}

before(async () => {
  if (qemuMissing) return;
  t = await startTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-e2e-qemu-'));
  await chmod(dir, 0o711); // dnsmasq (unprivileged) must reach its files below
});
after(async () => {
  await t?.close();
  // PXEFLOW_TEST_KEEP=1 keeps the state dirs (serial consoles, controller state) for a look afterwards
  if (dir && !process.env.PXEFLOW_TEST_KEEP) await rm(dir, { recursive: true, force: true });
});

describe('qemu nodes (real firmware)', { skip: qemuMissing }, () => {
  test('iPXE path: IPMI power-on → DHCP → HTTP script → kernel/initrd → kickstart → packages → success; next boot is local', async (c) => {
    await withLab('qipxe', { mode: 'ipxe' }, async (lab) => {
      const bmc = lab.bmcs.bmcs[0];
      // IPMI power really is the VM: on starts qemu, off stops it (before the install: no DHCP answers yet)
      const ipmi = driverFor(lab);
      assert.equal(await ipmi.powerOn(), 'on');
      await waitFor('iPXE on the serial console', async () => /iPXE/.test(await lastBoot(lab)), 30_000);
      const pid = await bmc.nodePid();
      assert.ok(pid, 'a qemu process runs while the node is on');
      assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /qemu-system-x86_64/);
      assert.equal(await ipmi.powerState(), 'on');
      assert.equal(await ipmi.powerOff(), 'off');
      await waitFor(
        'qemu to stop after IPMI power off',
        async () => (await bmc.nodePid()) === undefined,
        5000,
      );
      assert.equal(await ipmi.powerState(), 'off');

      const report = await install(lab);
      const n = assertInstalled(lab, report, IPXE_CHAIN);
      const install1 = await lastBoot(lab);
      assert.match(install1, /pxeflow-install: [1-9][0-9]* packages installed/);
      // iPXE took an address from the controller's IPv6 router advertisement (else it waits ~13 s for one)
      assert.match(install1, /net0: fd00:[0-9a-f:]+\/64/, install1.slice(0, 3000));
      c.diagnostic(await timings(lab, n));

      const second = await bootAgainOverIpmi(lab);
      assert.match(second, /pxeflow: installed, booting from local disk/, second.slice(-3000));
      assert.doesNotMatch(second, /pxeflow test installer/, 'the installed node must not install again');
    });
  });

  test('proxyDHCP: the site DHCP server gives the address, pxeflow the boot file by MAC → success; next boot is local', async (c) => {
    // node 2 is a PXE client on the same network that is not in the install: it must get nothing from pxeflow
    await withLab('qproxy', { mode: 'ipxe', dhcpMode: 'proxy', nodes: 2, qemu: [1, 2] }, async (lab) => {
      const site = lab.siteDhcp!;
      const handle = await t.client.workflow.start('ClusterInstall', {
        taskQueue: `e2e-${lab.spec.name}`,
        workflowId: `pxeflow/${lab.spec.name}`,
        args: [lab.specFor(lab.spec.name, [1])],
      });
      const report = (await handle.result()) as ClusterReport;
      const n = assertInstalled(lab, report, IPXE_CHAIN);
      // the address is the site server's lease, not pxeflow's (pxeflow's dnsmasq has no range in proxy mode)
      const ip = parseIPv4(n.dhcpIp!)!;
      assert.ok(
        ip >= parseIPv4(site.range.start)! && ip <= parseIPv4(site.range.end)!,
        `${n.dhcpIp} in ${site.range.start}–${site.range.end}`,
      );
      assert.match(
        await readFile(site.logFile, 'utf8'),
        new RegExp(`DHCPACK\\(eth0\\) ${n.dhcpIp} ${n.mac}`),
      );
      c.diagnostic(await timings(lab, n));

      // the stranger: an address from the site server, no boot file from pxeflow (its dnsmasq still runs)
      const stranger = lab.bmcs.bmcs[1];
      const strangerConsole = consoleLogPath(join(dir, lab.spec.name, 'nodes', `${lab.spec.name}-002`));
      const strangerMac = lab.network.nodes[1].mac;
      assert.equal(await driverFor(lab, 1).powerOnForPxe({ uefi: false }), 'on');
      await waitFor('the stranger to give up network boot', async () => !(await stranger.isOn()), 90_000);
      const text = await readFile(strangerConsole, 'utf8');
      assert.match(await readFile(site.logFile, 'utf8'), new RegExp(`DHCPACK\\(eth0\\) \\S+ ${strangerMac}`));
      assert.match(text, /Nothing to boot|No more network devices/, text.slice(-2000));
      assert.doesNotMatch(
        text,
        /boot-by-mac|Filename:|pxeflow test installer/,
        'pxeflow answered a machine that is not in the install',
      );

      const second = await bootAgainOverIpmi(lab);
      assert.match(second, /pxeflow: installed, booting from local disk/, second.slice(-3000));
      assert.doesNotMatch(second, /pxeflow test installer/, 'the installed node must not install again');
    });
  });

  test('legacy path: pxelinux.0 → pxelinux.cfg/01-<mac> → kernel/initrd over TFTP → success; next boot is local', async (c) => {
    // node 2 is a simulated node whose PXE ROM is not iPXE: the legacy path still serves it as before
    await withLab('qpxelinux', { mode: 'pxelinux', nodes: 2 }, async (lab) => {
      const report = await install(lab);
      const n = assertInstalled(lab, report, [
        'power-on',
        'dhcp',
        'bootloader',
        'pxe-config',
        'kernel',
        'initrd',
        'kickstart',
        'packages',
        'success',
      ]);
      const sim = report.nodes.find((r) => r.node === 'qpxelinux-002');
      assert.equal(sim?.outcome, 'success', JSON.stringify(sim));
      assert.match(
        await readFile(lab.bmcs.bmcs[1].nodeLogPath, 'utf8'),
        /installed; rebooting[\s\S]*local boot/,
      );
      const log = await readFile(consoleOf(lab), 'utf8');
      assert.match(log, /PXELINUX/, 'pxelinux ran');
      assert.match(log, /pxeflow-install: [1-9][0-9]* packages installed/);
      c.diagnostic(await timings(lab, n));

      const second = await bootAgainOverIpmi(lab);
      assert.match(second, /PXELINUX/, second.slice(-3000));
      assert.doesNotMatch(second, /pxeflow test installer/, 'the installed node must not install again');
    });
  });
});
