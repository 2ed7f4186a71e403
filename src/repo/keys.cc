#include "repo/keys.h"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "repo/names.h"

namespace lb::repo {

using nlohmann::json;

MasterKey MasterKey::Random() {
  MasterKey m;
  m.enc = crypto::Key::Random();
  m.id = crypto::Key::Random();
  uint8_t seed[8];
  crypto::RandomBytes(seed);
  m.chunker_seed = GetU64(seed);
  return m;
}

Bytes MasterKey::Serialize() const {
  Bytes out;
  out.insert(out.end(), enc.bytes.begin(), enc.bytes.end());
  out.insert(out.end(), id.bytes.begin(), id.bytes.end());
  PutU64(out, chunker_seed);
  return out;
}

Result<MasterKey> MasterKey::Parse(ByteSpan b) {
  if (b.size() != 72) return Err(Code::kCorruption, "master key has {} bytes, expected 72", b.size());
  MasterKey m;
  std::memcpy(m.enc.bytes.data(), b.data(), 32);
  std::memcpy(m.id.bytes.data(), b.data() + 32, 32);
  m.chunker_seed = GetU64(b.data() + 64);
  return m;
}

crypto::KdfParams DefaultKdfParams() {
  crypto::KdfParams p;
  const char* fast = std::getenv("LIFEBOAT_TEST_FAST_KDF");
  if (fast && std::string_view(fast) == "1") p.n = 1u << 10;
  p.salt.resize(32);
  crypto::RandomBytes(p.salt);
  return p;
}

std::string NowRfc3339();

namespace {
std::string CurrentUser() {
  if (struct passwd* pw = getpwuid(geteuid())) return pw->pw_name;
  return std::to_string(geteuid());
}
std::string HostName() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}
}  // namespace

namespace {
// The wrapping key for a key file: its 256 random bits need no stretching, only binding to
// this key object's salt.
crypto::Key KeyFileWrap(std::string_view contents, ByteSpan salt) {
  crypto::Key k;
  crypto::Key salt_key;
  std::memcpy(salt_key.bytes.data(), salt.data(), std::min<size_t>(salt.size(), 32));
  k.bytes = crypto::ContentId(salt_key, AsBytes(contents)).bytes;
  return k;
}
}  // namespace

std::string NewKeyFileContents() {
  Bytes b(32);
  crypto::RandomBytes(b);
  std::string s = HexEncode(b) + "\n";
  OPENSSL_cleanse(b.data(), b.size());
  return s;
}

Result<std::string> AddKey(storage::Storage& st, const MasterKey& master, const Secret& secret,
                           const crypto::KdfParams* kdf_in) {
  crypto::KdfParams kdf = kdf_in ? *kdf_in : DefaultKdfParams();
  if (kdf.salt.size() < 16) {
    kdf.salt.resize(32);
    crypto::RandomBytes(kdf.salt);
  }
  if (secret.value.empty()) return Err(Code::kInvalidArgument, "the password is empty");
  crypto::Key wrap;
  if (secret.is_key_file) {
    if (secret.value.size() < 32)
      return Err(Code::kInvalidArgument, "a key file must hold at least 32 bytes");
    wrap = KeyFileWrap(secret.value, kdf.salt);
  } else {
    LB_ASSIGN_OR_RETURN(wrap, crypto::DeriveKey(secret.value, kdf));
  }
  Bytes plain = master.Serialize();
  Bytes sealed = crypto::Seal(wrap, plain, AsBytes("lifeboat-key"));
  OPENSSL_cleanse(plain.data(), plain.size());
  json j = {{"version", 1},
            {"created", NowRfc3339()},
            {"host", HostName()},
            {"user", CurrentUser()},
            {"kdf", secret.is_key_file ? "none" : "scrypt"},
            {"n", secret.is_key_file ? 0 : kdf.n},
            {"r", secret.is_key_file ? 0 : kdf.r},
            {"p", secret.is_key_file ? 0 : kdf.p},
            {"salt", HexEncode(kdf.salt)},
            {"data", HexEncode(sealed)}};
  std::string text = j.dump(2) + "\n";
  std::string id = crypto::Sha256(AsBytes(text)).Hex();
  LB_RETURN_IF_ERROR(st.Put(KeyName(id), AsBytes(text), {.exclusive = true})
                         .WithContext(fmt::format("write key '{}'", id.substr(0, 8))));
  return id;
}

namespace {
Result<KeyInfo> ParseKeyFile(const std::string& id, ByteSpan text, Bytes* sealed_out) {
  try {
    json j = json::parse(AsString(text));
    KeyInfo info;
    info.id = id;
    info.host = j.value("host", "");
    info.user = j.value("user", "");
    info.created = j.value("created", "");
    std::string kdf = j.value("kdf", "");
    if (kdf != "scrypt" && kdf != "none")
      return Err(Code::kCorruption, "key '{}': unknown kdf", id.substr(0, 8));
    info.key_file = kdf == "none";
    info.kdf.n = j.at("n").get<uint64_t>();
    info.kdf.r = j.at("r").get<uint32_t>();
    info.kdf.p = j.at("p").get<uint32_t>();
    if (!HexDecode(j.at("salt").get<std::string>(), info.kdf.salt) || info.kdf.salt.size() < 16)
      return Err(Code::kCorruption, "key '{}': bad salt", id.substr(0, 8));
    if (sealed_out && !HexDecode(j.at("data").get<std::string>(), *sealed_out))
      return Err(Code::kCorruption, "key '{}': bad data", id.substr(0, 8));
    // Refuse parameters from a tampered file before they allocate gigabytes: at most 1 GiB.
    if (!info.key_file &&
        (info.kdf.n < 2 || (info.kdf.n & (info.kdf.n - 1)) || info.kdf.r == 0 ||
         info.kdf.p == 0 || info.kdf.n > (1ull << 22) || info.kdf.r > 32 || info.kdf.p > 16 ||
         128ull * info.kdf.n * info.kdf.r * info.kdf.p > (1ull << 30)))
      return Err(Code::kCorruption, "key '{}': kdf parameters out of range", id.substr(0, 8));
    return info;
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "key '{}': {}", id.substr(0, 8), e.what());
  }
}
}  // namespace

Result<OpenedKey> OpenWithSecret(storage::Storage& st, const Secret& secret,
                                 const std::function<bool(const MasterKey&)>& verify) {
  std::vector<std::string> ids;
  LB_RETURN_IF_ERROR(st.List("keys/", [&](const storage::ObjectInfo& o) {
    ids.push_back(o.name.substr(5));
    return Status::Ok();
  }));
  if (ids.empty())
    return Err(Code::kFailedPrecondition, "repository '{}' has no keys", st.Location());
  std::sort(ids.begin(), ids.end());  // a stable order, whatever the backend lists
  for (const auto& id : ids) {
    auto text = st.Get(KeyName(id));
    if (!text.ok()) continue;
    Bytes sealed;
    auto info = ParseKeyFile(id, *text, &sealed);
    // One damaged or foreign key object must not stop the others from opening.
    if (!info.ok() || info->key_file != secret.is_key_file) continue;
    crypto::Key wrap;
    if (secret.is_key_file) {
      wrap = KeyFileWrap(secret.value, info->kdf.salt);
    } else {
      auto derived = crypto::DeriveKey(secret.value, info->kdf);
      if (!derived.ok()) continue;
      wrap = *derived;
    }
    auto plain = crypto::Open(wrap, sealed, AsBytes("lifeboat-key"));
    if (!plain.ok()) continue;  // not this key
    auto master = MasterKey::Parse(*plain);
    OPENSSL_cleanse(plain->data(), plain->size());
    if (!master.ok()) continue;
    if (verify && !verify(*master)) continue;  // e.g. left by an interrupted init
    return OpenedKey{std::move(*master), id};
  }
  return Status(Code::kWrongKey, fmt::format("no key in '{}' opens with the given {}",
                                             st.Location(),
                                             secret.is_key_file ? "key file" : "password"))
      .WithHint(secret.is_key_file ? "check LIFEBOAT_KEY_FILE / --key-file"
                                   : "check LIFEBOAT_PASSWORD_FILE / --password-file");
}

Result<std::vector<KeyInfo>> ListKeys(storage::Storage& st) {
  std::vector<KeyInfo> out;
  LB_RETURN_IF_ERROR(st.List("keys/", [&](const storage::ObjectInfo& o) -> Status {
    std::string id = o.name.substr(5);
    LB_ASSIGN_OR_RETURN(Bytes text, st.Get(o.name));
    LB_ASSIGN_OR_RETURN(KeyInfo info, ParseKeyFile(id, text, nullptr));
    out.push_back(std::move(info));
    return Status::Ok();
  }));
  return out;
}

}  // namespace lb::repo
