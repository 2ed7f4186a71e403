// The plan file: one YAML document that describes a whole backup and recovery plan
// (repositories, sources, scheduled jobs, WAL retention, RPO/RTO objectives, drills, audit
// log, daemon), loaded into a model and validated with every problem located by
// file:line:column. docs/plan-reference.md specifies every key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plan/cron.h"
#include "repo/retention.h"
#include "util/status.h"

namespace lb::plan {

// A place in the plan file; line and column are 1-based, 0 when unknown.
struct Location {
  std::string file;
  int line = 0;
  int column = 0;

  // "plan.yaml:12:5" (or "plan.yaml" when the line is unknown).
  std::string ToString() const;
};

enum class Severity { kError, kWarning };

// One finding of LoadPlan/ParsePlan. Errors make a plan unusable; warnings do not.
struct Problem {
  Severity severity = Severity::kError;
  Location where;
  std::string message;  // lowercase, names quoted: "job 'pg-full': unknown source 'db'"
  std::string hint;     // a fix the user can make, or empty

  // "plan.yaml:12:5: error: <message>", then "  hint: <hint>" on its own line when set.
  std::string ToString() const;
};

// A secret reference: where lifeboat reads a repository's password or key file at run
// time. At most one field is set. Secrets themselves never appear in the plan.
struct KeySource {
  std::string key_file;       // path of a key file (lifeboat key add --generate-key-file)
  std::string password_file;  // path of a file holding the password
  std::string password_env;   // name of an environment variable holding the password

  bool IsEmpty() const { return key_file.empty() && password_file.empty() && password_env.empty(); }
};

enum class RepositoryRole { kPrimary, kSecondary, kOffsite };
std::string_view RepositoryRoleName(RepositoryRole role);

struct RepositoryPlan {
  std::string name;
  Location where;
  std::string url;                    // a path, file://..., or s3://bucket/prefix
  RepositoryRole role = RepositoryRole::kPrimary;
  int priority = 0;                   // lower first; defaults to the position in the file
  std::string region;                 // free text ("eu-west-1"), for reports
  KeySource key;                      // own key source, else the plan's encryption section
  std::string s3_credentials_file;    // AWS-style shared credentials file (s3 only)
  std::string s3_profile;             // profile in it (s3 only)
};

enum class SourceKind { kPostgres, kFiles, kCommand, kLogs };
std::string_view SourceKindName(SourceKind kind);

// What a job backs up. Fields that do not belong to the kind are empty.
struct SourcePlan {
  std::string name;
  Location where;
  SourceKind kind = SourceKind::kFiles;
  // postgres
  std::string conninfo_file;                // file holding a libpq conninfo string
  std::map<std::string, std::string> env;   // PG* variables (PGHOST, PGPORT, PGUSER, ...)
  std::string pgdata;                       // data directory (backups read it, restores write it)
  std::string wal_source;                   // source name of the WAL archive in the repository
  // files and logs
  std::vector<std::string> paths;
  std::vector<std::string> excludes;        // files: glob patterns left out
  // logs
  repo::Duration older_than;                // only files last written before this age
  std::vector<std::string> patterns;        // only names matching one of these globs
  bool remove_archived = false;             // delete originals after verifying the archive
  // command
  std::vector<std::string> command;         // argv, run without a shell
  std::string filename;                     // name of the stored file (default NAME.out)
};

enum class JobKind {
  kFull,       // pg backup --type full
  kIncr,       // pg backup --type incr
  kDump,       // pg dump (logical)
  kFiles,      // backup files
  kCommand,    // backup command
  kLogs,       // backup logs
  kWalExpire,  // pg wal-expire with wal.retention
  kWalVerify,  // pg wal-verify
  kForget,     // forget by the job's retention
  kPrune,      // prune
  kCheck,      // check
  kCopy,       // copy snapshots from one repository to others
};
std::string_view JobKindName(JobKind kind);
// The source kind a job kind needs, or nullopt when it takes no source.
std::optional<SourceKind> SourceKindFor(JobKind kind);
// Whether the job makes snapshots of its source (so it counts for RPO and drills).
bool MakesSnapshots(JobKind kind);

struct JobPlan {
  std::string name;
  Location where;
  JobKind kind = JobKind::kFull;
  std::string source;                        // required for kinds that take one
  CronSchedule schedule;
  std::string schedule_text;                 // as written
  // Retention of the snapshots this job made (forget: of the snapshots it selects).
  std::optional<repo::RetentionPolicy> retention;
  std::vector<std::string> repositories;     // targets in priority order (default: all)
  std::vector<std::string> tags;
  std::vector<std::string> databases;        // dump: databases (empty: all)
  std::string from;                          // copy: the repository copied from
  int read_data_subset = 0;                  // check: percent of packs read (0: none)
  bool read_data = false;                    // check: read every pack
};

struct WalPlan {
  bool present = false;                      // a wal section is in the plan
  Location where;
  repo::Duration retention;                  // pg wal-expire --retention
  std::optional<int64_t> archive_timeout;    // seconds; PostgreSQL's archive_timeout
  std::vector<std::string> sources;          // postgres sources archived (default: all)
  std::vector<std::string> repositories;     // where wal-push writes (default: all)
};

struct ObjectivePlan {
  std::string name;
  Location where;
  std::string description;
  std::vector<std::string> sources;          // the data this objective is about
  std::optional<int64_t> rpo;                // seconds of data loss allowed
  std::optional<int64_t> rto;                // seconds to recover
};

struct DrillQuery {
  std::string sql;
  std::string expect;                        // first column of the first row; empty: any
};

struct DrillPlan {
  std::string name;
  Location where;
  std::string source;
  CronSchedule schedule;
  std::string schedule_text;
  std::string repository;                    // restore from (default: first by priority)
  repo::Duration restore_age;                // restore the state of this long ago (0: newest)
  std::vector<DrillQuery> queries;           // postgres only
  std::optional<int64_t> rto;                // seconds; the drill fails when slower
};

struct AuditPlan {
  bool present = false;
  Location where;
  std::string log;                           // path of the audit log
  bool copy_to_repository = false;
};

struct DaemonPlan {
  bool present = false;
  Location where;
  std::string listen;                        // "127.0.0.1:9187", "[::1]:9187"
  std::string token_file;                    // bearer token for the HTTP endpoints
  std::string history;                       // job history database (SQLite); empty: default
  int64_t job_timeout = 12 * 3600;           // seconds a job may run before it is stopped
  int retries = 3;                           // retries of a failed job (0: none)
  int64_t retry_delay = 60;                  // seconds before the first retry; doubles
  int max_parallel = 2;                      // jobs running at once
  int64_t stop_grace = 60;                   // seconds running jobs get to finish on SIGTERM
};

struct Plan {
  std::string file;
  int version = 1;
  std::string timezone = "UTC";              // default zone of schedules
  KeySource encryption;                      // default key source of every repository
  std::vector<RepositoryPlan> repositories;  // sorted by priority (file order among equals)
  std::vector<SourcePlan> sources;           // file order
  std::vector<JobPlan> jobs;                 // file order
  WalPlan wal;
  std::vector<ObjectivePlan> objectives;
  std::vector<DrillPlan> drills;
  AuditPlan audit;
  DaemonPlan daemon;

  const RepositoryPlan* FindRepository(std::string_view name) const;
  const SourcePlan* FindSource(std::string_view name) const;
  const JobPlan* FindJob(std::string_view name) const;
  const DrillPlan* FindDrill(std::string_view name) const;
  // The key source that opens `repo`: its own, else the encryption section.
  KeySource KeyFor(const RepositoryPlan& repo) const;
};

struct LoadOptions {
  // "Now" for the checks that look at future runs (RPO from schedules); unix seconds.
  // 0: the current time.
  UnixSeconds now = 0;
};

// A plan and what is wrong with it. The model is filled as far as the file allowed; use it
// only when ok().
struct LoadedPlan {
  Plan plan;
  std::vector<Problem> problems;  // in file order (line, column), errors and warnings

  bool ok() const;  // no errors (warnings allowed)
  size_t ErrorCount() const;
  size_t WarningCount() const;
};

// Parses and validates a plan held in memory; `file` names it in the problems. Never
// fails: every YAML syntax error, unknown key, bad value and broken reference becomes a
// Problem; all of them are reported, not only the first.
LoadedPlan ParsePlan(std::string_view text, std::string_view file, const LoadOptions& opts = {});

// Reads `path` and parses it. Errors: kNotFound / kPermissionDenied / kIo when the file
// cannot be read (problems in its content are Problems, not errors).
Result<LoadedPlan> LoadPlanFile(const std::string& path, const LoadOptions& opts = {});

// Parses an elapsed time as objectives use it: one or more <number><unit>, units s, m
// (minutes), h, d, w; "15m", "1h30m", "90s". kInvalidArgument for anything else, also a
// zero duration.
Result<int64_t> ParseElapsed(std::string_view text);
// "15m", "1h30m", "2d": the canonical spelling of ParseElapsed's units.
std::string FormatElapsed(int64_t seconds);

// One run of a job or drill.
struct ScheduledRun {
  enum class Kind { kJob, kDrill };
  Kind kind = Kind::kJob;
  std::string name;
  UnixSeconds time = 0;
};

// The next `count` runs of every job and drill after `after`, ordered by time, then jobs
// before drills, then by name. What the daemon's timer and `plan next` use.
std::vector<ScheduledRun> NextRuns(const Plan& plan, UnixSeconds after, size_t count);

}  // namespace lb::plan
