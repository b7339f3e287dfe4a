/** `smartspec schedules …`: schedules of registered workflows (src/cli/schedulesCommand.ts parses its arguments). */
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { out } from '../io.js';
import { schedulesCommand } from '../schedulesCommand.js';

export const schedules: CommandRun = async ({ args }) => withNats(({ nc, replicas }) => schedulesCommand(args, nc, replicas, out));
