// pxeflow's search attributes: what an operator types into the Temporal web UI, e.g.
//   PxeflowCluster="ceph-a" AND PxeflowPhase="kickstart"
// Safe inside the workflow sandbox (@temporalio/common only).
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA = {
  cluster: defineSearchAttributeKey('PxeflowCluster', SearchAttributeType.KEYWORD),
  node: defineSearchAttributeKey('PxeflowNode', SearchAttributeType.KEYWORD),
  bmc: defineSearchAttributeKey('PxeflowBmc', SearchAttributeType.KEYWORD),
  mac: defineSearchAttributeKey('PxeflowMac', SearchAttributeType.KEYWORD),
  isoVersion: defineSearchAttributeKey('PxeflowIsoVersion', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('PxeflowPhase', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('PxeflowOutcome', SearchAttributeType.KEYWORD),
} as const;

/** name → type name as the `temporal` CLI spells it (all Keyword: SQLite visibility allows 10). */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword'> = Object.fromEntries(
  Object.values(SA).map((k) => [k.name, 'Keyword' as const]),
);
