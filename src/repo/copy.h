// Copying snapshots, and named objects such as the WAL archive, from one repository to
// another (`lifeboat copy`), so that a repository in another region or offsite can restore
// on its own. Only what the target lacks is read; data is decrypted with the source's key and
// sealed again with the target's. docs/repository-format.md, "Copies", has the format of the
// id map and the crash-safety argument.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/retention.h"
#include "repo/snapshot.h"

namespace lb::repo {

// Counters a progress display reads from another thread while a copy runs.
struct CopyProgress {
  std::atomic<uint64_t> snapshots_total{0};  // snapshots to copy (known before the first)
  std::atomic<uint64_t> snapshots_done{0};
  std::atomic<uint64_t> objects_total{0};    // named objects to copy (known before the first)
  std::atomic<uint64_t> objects_done{0};
  std::atomic<uint64_t> bytes_read{0};       // from the source
  std::atomic<uint64_t> bytes_written{0};    // sealed bytes stored in the target
};

// One snapshot a copy wrote (or, in a dry run, would write).
struct CopiedSnapshot {
  Snapshot source = {};     // as the source repository has it
  crypto::Id target_id = {};  // the copy's id in the target (zero in a dry run)
  // Data and tree blobs stored. Dry run: blobs the target lacks (for translated ids, every
  // tree counts: its target id is known only after its data is translated).
  uint64_t blobs = 0;
  uint64_t bytes_read = 0;  // dry run: plaintext bytes of those blobs
  uint64_t bytes_written = 0;
};

struct CopyOptions {
  // Which source snapshots: those matching `filter`, taken at or after `since_ns` (0: any
  // time), and, when `snapshots` is not empty, only those (id, unique prefix or 'latest').
  SnapshotFilter filter = {};
  int64_t since_ns = 0;
  std::vector<std::string> snapshots = {};
  bool dry_run = false;  // read trees to count what is missing; write nothing
  size_t threads = 0;    // 0: ThreadPool::DefaultThreads()
  CopyProgress* progress = nullptr;
  // Called on the calling thread after each snapshot is written (dry run: found missing).
  std::function<void(const CopiedSnapshot&)> on_snapshot = {};
};

struct CopyResult {
  bool same_id_key = false;  // blob ids agree: blobs and trees moved as they are
  uint64_t snapshots_selected = 0;
  uint64_t snapshots_copied = 0;
  uint64_t snapshots_skipped = 0;   // the target has them already (same original)
  uint64_t snapshots_damaged = 0;   // unreadable in the source: left out, named in `damaged`
  uint64_t blobs_copied = 0;        // data and tree blobs stored (dry run: as CopiedSnapshot)
  uint64_t blobs_present = 0;       // data blobs the target had, so they were not read
  uint64_t bytes_read = 0;          // from the source (packs)
  uint64_t bytes_written = 0;       // sealed blob bytes stored in the target
  std::vector<CopiedSnapshot> copied = {};
  std::vector<Snapshot> skipped = {};  // source snapshots the target has
  std::vector<DamagedSnapshot> damaged = {};
};

// Copies the selected snapshots of `from` that `to` lacks into `to`: their data and tree
// blobs first (packs, then index), then each snapshot, so an interrupted copy leaves only
// unreferenced data the next copy reuses. A copy keeps every field of its snapshot; its
// `original` names the first snapshot it was copied from, and a source snapshot whose
// original the target already has is skipped, so copying twice copies nothing.
//
// When both repositories have the same id key (`init --copy-params-from`), blobs keep their
// ids: a blob the target's index lists is not read, and trees are stored as they are. Else
// ids are translated: each data blob the target may lack is read, given the target's id and
// recorded in a map kept in the target (copy/<source config id>/...), so later copies skip
// it without reading; trees are rewritten bottom-up with the translated ids.
//
// The caller holds a shared lock on both repositories. Errors: kInvalidArgument when both
// are the same repository; kNotFound for a named snapshot that does not exist; kCorruption
// (naming the pack and blob) for damaged source data, in which case the snapshot being copied
// is not written (those before it are complete); storage errors of either side.
// Memory: the id map of a translated copy (64 bytes per blob ever copied from this source),
// the trees of one snapshot in a bounded cache, and threads × one read range (≤ 16 MiB).
Result<CopyResult> CopySnapshots(Repository& from, Repository& to, const CopyOptions& opts);

struct NamedCopyOptions {
  bool dry_run = false;
  size_t threads = 0;  // 0: ThreadPool::DefaultThreads()
  // Only names for which this returns true (empty: every name under the prefix).
  std::function<bool(const std::string& name)> select = {};
  CopyProgress* progress = nullptr;
};

struct NamedCopyResult {
  uint64_t objects_copied = 0;   // dry run: objects that would be copied
  uint64_t objects_present = 0;  // the target has them (by name, or same content on write)
  uint64_t objects_skipped = 0;  // left out by `select`
  uint64_t bytes_read = 0;       // stored bytes read from the source (dry run: their size)
  uint64_t bytes_written = 0;
};

// Copies every named object (PutNamed) under `prefix` that `to` does not list, in parallel:
// opened with the source's key, sealed with the target's under the same name, without
// decompressing, and put exclusively. A name that appears in the target meanwhile is fine
// when its content is the same, and kAlreadyExists naming the object when it differs (two
// clusters archiving under one name). Other errors name the object; objects copied before
// an error stay (each is complete on its own). Memory: threads × two copies of one object.
Result<NamedCopyResult> CopyNamedObjects(Repository& from, Repository& to,
                                         const std::string& prefix,
                                         const NamedCopyOptions& opts);

}  // namespace lb::repo
