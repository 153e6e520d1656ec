// Shared helpers for the config tests: a valid raw spec to mutate, and assertions on SpecError issues.
import assert from 'node:assert/strict';
import { type ClusterSpec, safeParseClusterSpec, type SpecIssue } from '../../config/schema.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests mutate raw specs freely, like an operator editing YAML
export type RawSpec = Record<string, any>;

/** A minimal valid spec with a node list (fresh object each call). */
export function validSpec(): RawSpec {
  return {
    apiVersion: 'pxeflow/v1',
    name: 'ceph-a',
    iso: { version: 'storageos-7.9' },
    ipmi: { subnet: '10.10.0.0/24', username: 'admin', passwordEnv: 'PXEFLOW_BMC_PASSWORD' },
    network: {
      interface: 'br-prov',
      subnet: '10.20.0.0/24',
      controller: '10.20.0.1',
      range: { start: '10.20.0.100', end: '10.20.0.199' },
    },
    nodes: [
      { name: 'stor-001', bmc: '10.10.0.11', mac: '52:54:00:00:00:01', ip: '10.20.0.11' },
      { name: 'stor-002', bmc: '10.10.0.12', mac: '52:54:00:00:00:02', ip: '10.20.0.12' },
    ],
  };
}

/** A valid spec of n listed nodes on /16 networks (the shape of the 2,000-node bench). */
export function bigSpec(n: number) {
  const host = (i: number) => `${(i + 1) >> 8}.${(i + 1) & 255}`;
  return {
    apiVersion: 'pxeflow/v1',
    name: 'ceph-a',
    iso: { version: 'storageos-7.9' },
    ipmi: { subnet: '10.10.0.0/16', username: 'admin', passwordEnv: 'PXEFLOW_BMC_PASSWORD' },
    network: {
      interface: 'br-prov',
      subnet: '10.20.0.0/16',
      controller: '10.20.255.254',
      range: { start: '10.20.100.0', end: '10.20.200.0' },
    },
    nodes: Array.from({ length: n }, (_, i) => ({
      name: `stor-${String(i + 1).padStart(4, '0')}`,
      bmc: `10.10.${host(i)}`,
      mac: `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    })),
  };
}

/** The same spec without a node list (discovery). */
export function discoverySpec(): RawSpec {
  const spec = validSpec();
  delete spec.nodes;
  // 255 range addresses for the 254 possible BMCs of a /24
  spec.network.subnet = '10.20.0.0/23';
  spec.network.range = { start: '10.20.1.0', end: '10.20.1.254' };
  return spec;
}

export function expectValid(raw: unknown): ClusterSpec {
  const result = safeParseClusterSpec(raw);
  if (!result.success) assert.fail(`expected a valid spec, got:\n${result.error.message}`);
  return result.spec;
}

export function issuesOf(raw: unknown): SpecIssue[] {
  const result = safeParseClusterSpec(raw);
  if (result.success) assert.fail('expected the spec to be rejected, but it parsed');
  return result.error.issues;
}

/** Asserts that an issue at `path` has a message matching `message`. */
export function expectIssue(raw: unknown, path: string, message: RegExp): SpecIssue[] {
  const issues = issuesOf(raw);
  const found = issues.find((issue) => issue.path === path && message.test(issue.message));
  if (!found) {
    assert.fail(
      `expected an issue at ${path} matching ${message}, got:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`,
    );
  }
  return issues;
}
