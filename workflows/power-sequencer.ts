// PowerSequencer: one per controller task queue. Cluster installs ask for their power-on turn when they start
// (so the queue is in submission order) and get it one at a time: install B powers nothing on until install A has
// powered on all of its nodes (the method: requests are handled in the order their configs were submitted).
import {
  condition,
  continueAsNew,
  defineSignal,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  allHandlersFinished,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControllerActivities } from '../activities/types.ts';
import { powerTurnSignal } from './messages.ts';

export const requestTurnSignal = defineSignal<[{ requester: string }]>('requestTurn');
export const releaseTurnSignal = defineSignal<[{ requester: string }]>('releaseTurn');

export interface SequencerState {
  queue: string[];
  holder?: string;
}

const { workflowIsRunning } = proxyActivities<ControllerActivities>({ startToCloseTimeout: '30s' });

export const sequencerWorkflowId = (taskQueue: string) => `pxeflow/power-sequencer/${taskQueue}`;

const IDLE_MS = 10 * 60_000;
const HOLDER_CHECK_MS = 60_000;

export async function PowerSequencer(state: SequencerState = { queue: [] }): Promise<void> {
  const queue = [...state.queue];
  let holder = state.holder;
  let granted = false;

  setHandler(requestTurnSignal, ({ requester }) => {
    if (holder !== requester && !queue.includes(requester)) queue.push(requester);
  });
  setHandler(releaseTurnSignal, ({ requester }) => {
    if (holder === requester) holder = undefined;
    else if (queue.includes(requester)) queue.splice(queue.indexOf(requester), 1);
  });

  for (;;) {
    if (holder === undefined && queue.length > 0) {
      holder = queue.shift()!;
      try {
        await getExternalWorkflowHandle(holder).signal(powerTurnSignal, { grantedAt: Date.now() });
        granted = true;
      } catch {
        holder = undefined; // the requester is gone (completed, cancelled, terminated)
      }
      continue;
    }
    if (workflowInfo().continueAsNewSuggested || (granted && workflowInfo().historyLength > 2000)) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof PowerSequencer>({ queue, holder });
    }
    const woke = await condition(
      () => (holder === undefined && queue.length > 0) || workflowInfo().continueAsNewSuggested,
      holder ? HOLDER_CHECK_MS : IDLE_MS,
    );
    if (woke) continue;
    if (holder) {
      // a holder that vanished without releasing (terminated) must not block every later install
      if (!(await workflowIsRunning(holder))) holder = undefined;
    } else if (queue.length === 0) {
      await condition(allHandlersFinished);
      return; // idle: the next install's signal-with-start begins a new run
    }
  }
}
