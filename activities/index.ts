// The controller's activities: thin adapters from workflow calls to image/, power/, netboot/ and Temporal.
// Secrets are resolved here, on the controller, and never returned.
import { activityInfo, ApplicationFailure, heartbeat } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from 'pino';
import { resolveSecretRef } from '../config/load.ts';
import { ImageError, IsoLibrary } from '../image/library.ts';
import { createPowerDriver, discoverBmcs as discover, isBmcError } from '../power/index.ts';
import {
  PowerSequencer,
  releaseTurnSignal,
  requestTurnSignal,
  sequencerWorkflowId,
} from '../workflows/power-sequencer.ts';
import type { NodeResult } from '../workflows/messages.ts';
import type { ControllerActivities, PowerTarget } from './types.ts';
import type { NetbootControl } from './netboot-control.ts';

export type { ControllerActivities } from './types.ts';

export interface ControllerDeps {
  logger: Logger;
  /** Temporal client of the controller (sequencer signals, workflow checks) */
  client?: Client;
  taskQueue: string;
  /** the netboot services of this controller; absent on a worker that serves no provisioning network */
  netboot?: NetbootControl;
  /** overrides the spec's iso.library (e.g. the lab's library) */
  isoLibrary?: string;
  env?: NodeJS.ProcessEnv;
}

/** A BMC error crosses into Temporal as an ApplicationFailure typed by class; auth/command errors never retry. */
function powerFailure(err: unknown): never {
  if (isBmcError(err)) {
    throw ApplicationFailure.create({ message: err.message, type: err.name, nonRetryable: !err.retryable });
  }
  throw err;
}

export function createActivities(deps: ControllerDeps): ControllerActivities {
  const { logger } = deps;
  const env = deps.env ?? process.env;
  const needClient = () => {
    if (!deps.client) throw new Error('this worker has no Temporal client (power sequencing needs one)');
    return deps.client;
  };
  const needNetboot = () => {
    if (!deps.netboot) {
      throw ApplicationFailure.nonRetryable(
        'this controller runs no netboot services',
        'NetbootNotConfigured',
      );
    }
    return deps.netboot;
  };
  const library = (dir: string) => new IsoLibrary(deps.isoLibrary ?? dir);
  const driverFor = (t: PowerTarget) =>
    createPowerDriver(
      {
        address: t.bmc,
        port: t.port,
        username: t.username,
        password: resolveSecretRef(t.passwordRef, 'ipmi password', env),
      },
      { timeoutSeconds: t.timeoutSeconds, retries: t.retries, cipherSuite: t.cipherSuite },
    );

  return {
    async checkSecrets(refs) {
      const missing: string[] = [];
      for (const { what, ref } of refs) {
        try {
          resolveSecretRef(ref, what, env);
        } catch (err) {
          missing.push(err instanceof Error ? err.message : String(err));
        }
      }
      if (missing.length) throw ApplicationFailure.nonRetryable(missing.join('; '), 'SecretMissing');
    },

    async prepareImage({ version, library: dir }) {
      const beat = setInterval(() => heartbeat({ version }), 5000);
      try {
        const d = await library(dir).prepareImage(version);
        return {
          version: d.version,
          sha256: d.sha256,
          kernel: d.kernel,
          initrd: d.initrd,
          repoRoot: d.repoRoot,
        };
      } catch (err) {
        if (err instanceof ImageError) throw ApplicationFailure.nonRetryable(err.message, 'ImageError');
        throw err;
      } finally {
        clearInterval(beat);
      }
    },

    async configureNetboot({ clusterId, spec, image }) {
      const description = await library(spec.iso.library).prepareImage(image.version);
      try {
        await needNetboot().configureCluster({ clusterId, spec, image: description });
      } catch (err) {
        if (err instanceof Error && err.name === 'NetbootConfigError')
          throw ApplicationFailure.nonRetryable(err.message, 'NetbootNotConfigured');
        throw err;
      }
      logger.info({ clusterId, image: image.version }, 'netboot configured');
    },

    async discoverBmcs({ subnet, port, maxNodes, username, passwordRef }) {
      const password = resolveSecretRef(passwordRef, 'ipmi password', env);
      const found = await discover({ subnet, ports: [port], credentials: () => ({ username, password }) });
      return found.slice(0, maxNodes).map((b) => ({
        address: b.address,
        port: b.port,
        powerState: b.powerState,
        product: b.info?.productName,
      }));
    },

    async requestPowerTurn({ requester }) {
      await needClient().workflow.signalWithStart(PowerSequencer, {
        workflowId: sequencerWorkflowId(deps.taskQueue),
        taskQueue: deps.taskQueue,
        args: [{ queue: [] }],
        signal: requestTurnSignal,
        signalArgs: [{ requester }],
        staticSummary: 'power-on turns, in submission order',
      });
    },

    async releasePowerTurn({ requester }) {
      try {
        await needClient()
          .workflow.getHandle(sequencerWorkflowId(deps.taskQueue))
          .signal(releaseTurnSignal, { requester });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err; // no sequencer: nothing to release
      }
    },

    async workflowIsRunning(workflowId) {
      try {
        const d = await needClient().workflow.getHandle(workflowId).describe();
        return d.status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    async nodeResults({ workflowIds }) {
      const client = needClient();
      return await Promise.all(
        workflowIds.map(async (workflowId) => {
          const handle = client.workflow.getHandle<(...args: unknown[]) => Promise<NodeResult>>(workflowId);
          try {
            const d = await handle.describe();
            if (d.status.name === 'RUNNING') return { workflowId, running: true };
            return { workflowId, running: false, result: await handle.result() };
          } catch (err) {
            return { workflowId, running: false, error: err instanceof Error ? err.message : String(err) };
          }
        }),
      );
    },

    async registerNodeBoot({ clusterId, node, attempt }) {
      await needNetboot().registerNodeBoot({ clusterId, node, attempt });
    },

    async powerOnForPxe(target) {
      const driver = driverFor(target);
      try {
        if (activityInfo().attempt > 1) {
          // A retry may follow a power-on that happened but was never reported: make sure it is on, never cycle
          // a node that may already be walking the boot chain.
          await driver.setBootDevice('pxe', { once: true, uefi: target.uefi });
          await driver.powerOn();
          return 'powered-on';
        }
        const action = await driver.powerOnForPxe({ uefi: target.uefi });
        logger.info({ node: target.node, bmc: driver.name, action }, 'power on for PXE');
        return action === 'cycle' ? 'power-cycled' : 'powered-on';
      } catch (err) {
        powerFailure(err);
      }
    },

    async releaseNode({ clusterId, node }) {
      await deps.netboot?.releaseNode({ clusterId, node });
    },

    async finishNode({ clusterId, node, outcome, power }) {
      if (outcome !== 'success') return;
      await needNetboot().setLocalBoot({ clusterId, node });
      try {
        await driverFor(power).setBootDevice('disk', { once: false, uefi: power.uefi });
      } catch (err) {
        powerFailure(err);
      }
    },
  };
}
