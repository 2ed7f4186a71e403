// What running a plan job means: the lifeboat commands it is made of, in order, each with
// its arguments and environment (the repository, its secret by file reference, the
// PostgreSQL connection). A backup writes to the job's first repository, is copied to the
// others and then the job's retention is applied in each. Pure: the daemon runs the steps
// (ops/job_runner.h), tests look at them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "util/status.h"

namespace lb::ops {

enum class StepRole {
  kBackup,       // makes a snapshot; its --json output has the snapshot id and sizes
  kCopy,         // copy of the backup to another repository
  kForget,       // retention after the backup
  kMaintenance,  // every other kind of job
};

struct JobStep {
  StepRole role = StepRole::kMaintenance;
  std::string repository;                  // the plan repository it works on (copy: the target)
  std::vector<std::string> args;           // lifeboat's arguments (no program name)
  std::map<std::string, std::string> env;  // variables set for the child
  std::string Display() const;             // "lifeboat --repo ... pg backup --type full ..."
};

// The environment variables of ours never inherited by a job's child: each step says which
// repository and secret it uses, so a LIFEBOAT_PASSWORD or LIFEBOAT_REPO of the daemon's
// environment cannot pick another. Settings such as LIFEBOAT_CACHE_DIR pass through.
inline const std::vector<std::string> kJobEnvUnset = {"LIFEBOAT_REPO", "LIFEBOAT_PASSWORD",
                                                      "LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_KEY_FILE",
                                                      "LIFEBOAT_PG_SOURCE"};
inline const std::vector<std::string> kJobEnvPrefixesUnset = {"LIFEBOAT_FROM_"};

// The tags every snapshot a job makes carries: "job:NAME" (its retention applies to these
// only) and "source:NAME" (what `status` reads as a recovery point of that source).
std::string JobTag(const std::string& job);
std::string SourceTag(const std::string& source);

// The repositories a job works on: its own list, else every repository by priority.
std::vector<const plan::RepositoryPlan*> JobRepositories(const plan::Plan& plan,
                                                         const plan::JobPlan& job);

// The commands of one run of `job`. Errors: kInvalidArgument for a job the plan does not
// describe completely (unknown source or repository), kNotFound / kIo when the source's
// conninfo_file cannot be read.
Result<std::vector<JobStep>> JobSteps(const plan::Plan& plan, const plan::JobPlan& job);

// The secret and storage settings of a repository as environment variables and options:
// --repo URL and --key-file / --password-file (password_env: LIFEBOAT_PASSWORD from that
// variable), AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE for s3.
struct RepositoryAccess {
  std::vector<std::string> args;  // global options
  std::map<std::string, std::string> env;
};
RepositoryAccess AccessFor(const plan::Plan& plan, const plan::RepositoryPlan& repo);

// "copy --from URL" with the secret options of `from`, and the variables that secret needs
// when it is in the environment (LIFEBOAT_FROM_PASSWORD). A copy between two s3
// repositories with different credentials files uses the target's file.
std::vector<std::string> CopyArgs(const plan::Plan& plan, const plan::RepositoryPlan& from);
std::map<std::string, std::string> FromEnv(const plan::Plan& plan,
                                           const plan::RepositoryPlan& from);

}  // namespace lb::ops
