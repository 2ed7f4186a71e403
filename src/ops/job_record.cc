#include "ops/job_record.h"

namespace lb::ops {

namespace {

// Audit hook: append {job, kind, scheduled, attempt, started, ended, result, exit code,
// bytes, snapshot, error} to the hash-chained audit log (plan.audit.log) once audit/
// exists. Until then runs are recorded in the history only.
Status AuditJobRun(const JobRunRecord& /*record*/) { return Status::Ok(); }

}  // namespace

Status RecordJobRun(History& history, const JobRunRecord& record) {
  Status s = history.Finish(record.history_id, record.outcome, record.ended);
  Status a = AuditJobRun(record);
  return s.ok() ? a : s;
}

}  // namespace lb::ops
