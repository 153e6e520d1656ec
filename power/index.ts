// Public surface of the power layer. Activities call createPowerDriver(); everything else is re-exported
// for tests, the lab and the CLI.
import type { BmcTarget, PowerDriver } from './driver.ts';
import { createIpmitoolDriver, type IpmitoolOptions } from './ipmitool.ts';

export type {
  BmcInfo,
  BmcTarget,
  BootDevice,
  BootDeviceOptions,
  PowerAction,
  PowerDriver,
  PowerState,
} from './driver.ts';
export { bmcName, validateTarget } from './driver.ts';
export * from './errors.ts';
export { IpmitoolDriver, type IpmitoolCallEvent, type IpmitoolOptions } from './ipmitool.ts';
export {
  type BmcResponder,
  type DiscoveredBmc,
  type DiscoverOptions,
  discoverBmcs,
  probeBmc,
  type ScanOptions,
  scanForBmcs,
} from './discovery.ts';
export {
  type BmcLimiter,
  createBmcLimiter,
  DEFAULT_BMC_CONCURRENCY,
  KeyedMutex,
  sharedBmcLimiter,
} from './limit.ts';
export { hostsInSubnet, parseSubnet, subnetContains } from './subnet.ts';

/**
 * The driver for one BMC. Only ipmitool today (Redfish would be another case here). Unless options say
 * otherwise it shares the controller-wide concurrency limit and the per-BMC lock.
 */
export function createPowerDriver(target: BmcTarget, options: IpmitoolOptions = {}): PowerDriver {
  return createIpmitoolDriver(target, options);
}
