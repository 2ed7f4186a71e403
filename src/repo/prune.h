// Prune: removes data no snapshot references and repacks packs that are mostly garbage,
// while backups and wal-push keep appending. Deletion is two-phase: packs are first
// condemned (listed in a condemned/ object, dropped from the live index), and deleted only
// once every process that could still have deduplicated against them has finished.
// docs/repository-format.md, "Prune", has the protocol and its crash-safety argument.
#pragma once

#include <string>
#include <vector>

#include "repo/id_spill.h"
#include "repo/repository.h"

namespace lb::repo {

struct PruneOptions {
  // Packs whose unreferenced bytes are at least this fraction of the pack are repacked:
  // their live blobs are copied into new packs and the old pack is condemned.
  double max_unused = 0.3;
  bool dry_run = false;
  size_t threads = 0;
  // Memory bounds (tests make them tiny to exercise the spilling paths): entries per run
  // prune writes (index files, condemned lists), and referenced ids held in memory before
  // they spill to sorted scratch files.
  size_t run_entries = 65536;
  size_t spill_batch = size_t(1) << 17;
};

struct PruneResult {
  uint64_t snapshots = 0;
  uint64_t packs_total = 0, packs_unused = 0, packs_repacked = 0, packs_unindexed = 0;
  uint64_t blobs_referenced = 0, blobs_unreferenced = 0;
  uint64_t bytes_total = 0, bytes_unreferenced = 0;
  uint64_t bytes_repacked = 0;           // live bytes copied into new packs
  uint64_t packs_deleted = 0, bytes_deleted = 0;  // reclaimed by this run
  uint64_t packs_resurrected = 0;        // condemned but referenced by a late snapshot: kept
  uint64_t packs_waiting = 0, bytes_waiting = 0;  // condemned; deleted by a later prune
  std::string waiting_for;               // the lock that blocks deletion, when any
  uint64_t index_files_written = 0, index_files_removed = 0;
};

// Needs the prune lock (RepoLock purpose "prune", unique) held by the caller.
Result<PruneResult> Prune(Repository& repo, const PruneOptions& opts);

}  // namespace lb::repo
