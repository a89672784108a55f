export { startQuickstart } from './quickstart.ts';
export type { QuickstartOptions, RunningQuickstart } from './quickstart.ts';
