// Shared by the reliability tests and the soak: a lab install started through the Temporal client, a seeded
// random source, and the invariants every install must keep however it was disturbed — judged from the
// evidence the real peers leave (the BMC sims' power logs, the simulated nodes' own logs), not from the
// controller's word.
import { readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { Behaviour, Lab } from '../../lab/lab.ts';
import type { ClusterReport, NodeOutcome, NodeResult } from '../../workflows/messages.ts';

/** mulberry32: random but reproducible from the seed */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A whole number from the environment, or the default (sizes and seeds of the tests and the soak). */
export function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name}=${v}: expected a whole number`);
  return n;
}

export function startInstall(client: Client, lab: Lab, taskQueue: string, spec = lab.spec) {
  return client.workflow.start('ClusterInstall', {
    taskQueue,
    workflowId: `pxeflow/${spec.name}`,
    args: [spec],
  });
}

/** What a simulated node wrote about itself over all its power-ons. */
export interface NodeEvidence {
  /** every address a DHCP exchange gave it ("DHCP: <ip> …" lines), in order */
  dhcpIps: string[];
  /** installs that ran to the end, i.e. whose success status POST the controller acknowledged */
  finished: number;
  failed: number;
}

export async function nodeEvidence(lab: Lab, i: number): Promise<NodeEvidence> {
  const text = await readFile(lab.bmcs.bmcs[i].nodeLogPath, 'utf8').catch(() => '');
  return {
    dhcpIps: [...text.matchAll(/DHCP: (\d+\.\d+\.\d+\.\d+) /g)].map((m) => m[1]),
    finished: text.match(/install finished/g)?.length ?? 0,
    failed: text.match(/install failed/g)?.length ?? 0,
  };
}

export async function powerOns(lab: Lab, i: number) {
  return (await lab.bmcs.bmcs[i].powerLog()).filter((e) => e.op === 'power' && e.value === '1');
}

/** The outcome a behaviour must end in when the node gets at least two attempts. */
export function expectedOutcome(b: Behaviour): NodeOutcome {
  if (b === 'success' || b.startsWith('fail-once:')) return 'success';
  if (b.startsWith('fail:')) return 'failure';
  return 'timeout';
}

/**
 * Every invariant of a disturbed install, as a list of violations (empty = kept):
 * right outcome per node, no more power-ons than attempts, the node kept one IP (its fixed IP when the spec
 * has one), no acknowledged status lost, no IP held by two nodes.
 */
export async function checkInstall(
  lab: Lab,
  report: ClusterReport,
  behaviour: (index: number) => Behaviour,
): Promise<string[]> {
  const bad: string[] = [];
  const byName = new Map<string, NodeResult>(report.nodes.map((n) => [n.node, n]));
  const specNodes = lab.spec.nodes as Array<{ name: string; ip?: string }>;
  const owner = new Map<string, string>();
  for (const [i, s] of specNodes.entries()) {
    const n = byName.get(s.name);
    if (!n) {
      bad.push(`${s.name}: missing from the report`);
      continue;
    }
    const want = expectedOutcome(behaviour(i + 1));
    if (n.outcome !== want) bad.push(`${s.name}: ${n.outcome} (${n.detail ?? ''}), expected ${want}`);
    const ons = (await powerOns(lab, i)).length;
    if (ons > n.attempts) bad.push(`${s.name}: powered on ${ons}× in ${n.attempts} attempt(s)`);
    const ev = await nodeEvidence(lab, i);
    const ips = new Set(ev.dhcpIps);
    if (ips.size > 1) bad.push(`${s.name}: its lease changed IP: ${[...ips].join(' → ')}`);
    if (s.ip && (n.dhcpIp !== undefined || n.outcome === 'success') && n.dhcpIp !== s.ip)
      bad.push(`${s.name}: dhcpIp ${n.dhcpIp}, reserved ${s.ip}`);
    for (const ip of ips) if (s.ip && ip !== s.ip) bad.push(`${s.name}: was given ${ip}, reserved ${s.ip}`);
    if (n.dhcpIp && ips.size && !ips.has(n.dhcpIp))
      bad.push(`${s.name}: report says ${n.dhcpIp}, node got ${[...ips]}`);
    if (ev.finished > 0 && n.outcome !== 'success')
      bad.push(`${s.name}: an acknowledged success status was lost`);
    for (const ip of ips) {
      const other = owner.get(ip);
      if (other && other !== s.name) bad.push(`${ip} leased to both ${other} and ${s.name}`);
      owner.set(ip, s.name);
    }
  }
  return bad;
}

/** Outcome counts and retries of a report, for the soak's figures. */
export function figures(report: ClusterReport) {
  const extraAttempts = report.nodes.reduce((s, n) => s + Math.max(0, n.attempts - 1), 0);
  return {
    counts: Object.fromEntries(Object.entries(report.counts).filter(([, v]) => v > 0)),
    extraAttempts,
    seconds: Math.round((report.finishedAt - report.startedAt) / 1000),
  };
}
