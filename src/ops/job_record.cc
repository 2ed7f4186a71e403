#include "ops/job_record.h"

namespace lb::ops {

// The audit trail needs nothing here: every step of a job is a child lifeboat process, and
// main's audit hook records each of those (operation, redacted command line, repository,
// result) in the log the daemon exports to them (LIFEBOAT_AUDIT_LOG).
Status RecordJobRun(History& history, const JobRunRecord& record) {
  return history.Finish(record.history_id, record.outcome, record.ended);
}

}  // namespace lb::ops
