/** What the workflow and execution routes need: the stores and the command bus, all on NATS. */
import type { NatsConnection } from '@nats-io/transport-node';
import type { CommandBus } from '../../bus/commands.js';
import type { EventLog } from '../../log/eventLog.js';
import type { SnapshotStore } from '../../log/snapshots.js';
import type { ExecutionIndex } from '../../registry/executionIndex.js';
import type { IdempotencyStore } from '../../registry/idempotency.js';
import type { WorkflowRegistry } from '../../registry/workflows.js';
import type { PayloadStore } from '../../payloads/store.js';

export interface RouteDeps {
  nc: NatsConnection;
  log: EventLog;
  bus: CommandBus;
  index: ExecutionIndex;
  workflows: WorkflowRegistry;
  idempotency: IdempotencyStore;
  snapshots?: SnapshotStore;
  /** Large inputs and signal payloads are stored here and travel as refs (default: limits from the environment). */
  payloads?: PayloadStore;
  /** At most this many PENDING or RUNNING executions per tenant (0: no cap). Default 10000. */
  tenantMaxRunning?: number;
}
