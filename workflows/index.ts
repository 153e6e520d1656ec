// Every workflow type the controller worker registers.
export { ClusterInstall } from './cluster-install.ts';
export { NodeInstall } from './node-install.ts';
export { PowerSequencer } from './power-sequencer.ts';
