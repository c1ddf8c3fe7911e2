// The outcomes of GitLab calls, appended to `operation.gitlabReports`. The commit status
// reporter and the review-app reporter both append to the same operations, and the store has no
// "append": each append is a read and a write, so appends of one operation go one at a time here
// (in this process: an operation's events are published by the one runner that holds it).
import type { Store } from "../store/store.js";
import type { GitlabReport } from "../store/types.js";

export interface ReportLog {
  append(operationId: string, report: GitlabReport): Promise<void>;
}

export function createReportLog(store: Store): ReportLog {
  const chains = new Map<string, Promise<void>>();
  return {
    append(operationId, report) {
      const previous = chains.get(operationId) ?? Promise.resolve();
      const next = previous.then(async () => {
        const current = await store.getOperation(operationId);
        if (!current) return;
        await store.updateOperation(operationId, {
          gitlabReports: [...(current.gitlabReports ?? []), report],
        });
      });
      // The chain goes on after a failed append; the caller still sees the failure.
      const settled = next.catch(() => undefined);
      chains.set(operationId, settled);
      void settled.then(() => {
        if (chains.get(operationId) === settled) chains.delete(operationId);
      });
      return next;
    },
  };
}
