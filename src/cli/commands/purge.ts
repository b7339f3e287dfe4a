/** `smartspec purge --older-than 30d`: executions that ended before then go, with their values and snapshots. */
import { InvalidInputError } from '../../errors.js';
import { parseDuration } from '../../limits.js';
import { purgeEndedExecutions } from '../../retention/purge.js';
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { out } from '../io.js';

export const purge: CommandRun = async ({ opts }) => {
  const olderThan = opts['older-than'] as string | undefined;
  if (olderThan === undefined) throw new InvalidInputError('usage: smartspec purge --older-than DURATION (e.g. 30d, 12h, 90m) [--dry-run] [--json]');
  const olderThanMs = parseDuration(olderThan);
  if (olderThanMs === undefined) throw new InvalidInputError(`--older-than must be a duration such as 30d, 12h, 90m or 45s, got '${olderThan}'`);
  const dryRun = opts['dry-run'] === true;
  return withNats(async ({ nc }) => {
    const verb = dryRun ? 'would purge' : 'purged';
    const report = await purgeEndedExecutions(nc, {
      olderThanMs,
      dryRun,
      onPurged: (p) => { if (!opts.json) out(`${verb} ${p.executionId}  ${p.status}  ended ${p.endedAt}  (${p.records} records)`); },
    });
    if (opts.json) out(JSON.stringify(report, null, 2));
    else out(`${verb} ${report.purged.length} execution${report.purged.length === 1 ? '' : 's'} that ended before ${report.cutoff}; ${report.kept} kept (not ended, or more recent)`);
    return 0;
  });
};
