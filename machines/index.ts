export * from './events.js';
export * from './stages.js';
export * from './retry.js';
export * from './workflowMachine.js';
export * from './cache.js';
export * from './phases.js';
export * from './resume.js';
export * from './replay.js';
