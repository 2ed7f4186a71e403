// The repository's master key and the key files that wrap it (docs/repository-format.md,
// "Keys"). Every passphrase gets its own key file; any one of them opens the repository.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "storage/storage.h"

namespace lb::repo {

// The secrets every repository operation needs. Never written anywhere unwrapped.
struct MasterKey {
  crypto::Key enc;       // AES-256-GCM key for every object
  crypto::Key id;        // HMAC-SHA256 key for blob ids
  uint64_t chunker_seed = 0;

  static MasterKey Random();
  Bytes Serialize() const;  // 72 bytes, wiped by the caller after use
  static Result<MasterKey> Parse(ByteSpan b);
};

struct KeyInfo {
  std::string id;        // hex SHA-256 of the key file
  std::string host;
  std::string user;
  std::string created;   // RFC 3339 UTC
  crypto::KdfParams kdf;
};

// Writes a new key file for `passphrase` wrapping `master`; returns its id.
Result<std::string> AddKey(storage::Storage& st, const MasterKey& master,
                           std::string_view passphrase, const crypto::KdfParams* kdf = nullptr);

// Tries every key file; returns the master key and the id of the key that opened it.
// kWrongKey when none opens; kFailedPrecondition when there are no key files.
struct OpenedKey {
  MasterKey master;
  std::string key_id;
};
Result<OpenedKey> OpenWithPassphrase(storage::Storage& st, std::string_view passphrase);

Result<std::vector<KeyInfo>> ListKeys(storage::Storage& st);

// Default KDF parameters; LIFEBOAT_TEST_FAST_KDF=1 selects cheap ones for tests only.
crypto::KdfParams DefaultKdfParams();

}  // namespace lb::repo
