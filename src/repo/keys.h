// The repository's master key and the key files that wrap it (docs/repository-format.md,
// "Keys"). Every passphrase gets its own key file; any one of them opens the repository.
#pragma once

#include <functional>
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
  bool key_file = false;  // kdf "none": opened by a key file
};

// What opens a repository: a passphrase (stretched with scrypt, slow on purpose) or the
// contents of a key file (256 random bits; no stretching needed, so opening costs
// microseconds: what wal-push and wal-get, started once per WAL segment, rely on).
struct Secret {
  std::string value;
  bool is_key_file = false;
};

// Writes a new key object for `secret` wrapping `master`; returns its id.
Result<std::string> AddKey(storage::Storage& st, const MasterKey& master, const Secret& secret,
                           const crypto::KdfParams* kdf = nullptr);
inline Result<std::string> AddKey(storage::Storage& st, const MasterKey& master,
                                  std::string_view passphrase,
                                  const crypto::KdfParams* kdf = nullptr) {
  return AddKey(st, master, Secret{std::string(passphrase), false}, kdf);
}

// Tries every key object of the secret's kind; returns the master key and the id of the key
// that opened it. `verify`, when given, must accept the master key (Open checks it against
// the config, so a stray key left by an interrupted init is skipped). kWrongKey when none
// opens; kFailedPrecondition when there are no keys.
struct OpenedKey {
  MasterKey master;
  std::string key_id;
};
Result<OpenedKey> OpenWithSecret(storage::Storage& st, const Secret& secret,
                                 const std::function<bool(const MasterKey&)>& verify = {});
inline Result<OpenedKey> OpenWithPassphrase(storage::Storage& st, std::string_view passphrase) {
  return OpenWithSecret(st, Secret{std::string(passphrase), false});
}

// A new key file's contents: 64 hex digits of randomness and a newline.
std::string NewKeyFileContents();

Result<std::vector<KeyInfo>> ListKeys(storage::Storage& st);

// Default KDF parameters; LIFEBOAT_TEST_FAST_KDF=1 selects cheap ones for tests only.
crypto::KdfParams DefaultKdfParams();

}  // namespace lb::repo
