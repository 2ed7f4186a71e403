#include "repo/keys.h"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <pwd.h>
#include <unistd.h>

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

Result<std::string> AddKey(storage::Storage& st, const MasterKey& master,
                           std::string_view passphrase, const crypto::KdfParams* kdf_in) {
  crypto::KdfParams kdf = kdf_in ? *kdf_in : DefaultKdfParams();
  if (kdf.salt.size() < 16) {
    kdf.salt.resize(32);
    crypto::RandomBytes(kdf.salt);
  }
  LB_ASSIGN_OR_RETURN(crypto::Key wrap, crypto::DeriveKey(passphrase, kdf));
  Bytes plain = master.Serialize();
  Bytes sealed = crypto::Seal(wrap, plain, AsBytes("lifeboat-key"));
  OPENSSL_cleanse(plain.data(), plain.size());
  json j = {{"version", 1},
            {"created", NowRfc3339()},
            {"host", HostName()},
            {"user", CurrentUser()},
            {"kdf", "scrypt"},
            {"n", kdf.n},
            {"r", kdf.r},
            {"p", kdf.p},
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
    if (j.value("kdf", "") != "scrypt")
      return Err(Code::kCorruption, "key '{}': unknown kdf", id.substr(0, 8));
    info.kdf.n = j.at("n").get<uint64_t>();
    info.kdf.r = j.at("r").get<uint32_t>();
    info.kdf.p = j.at("p").get<uint32_t>();
    if (!HexDecode(j.at("salt").get<std::string>(), info.kdf.salt))
      return Err(Code::kCorruption, "key '{}': bad salt", id.substr(0, 8));
    if (sealed_out && !HexDecode(j.at("data").get<std::string>(), *sealed_out))
      return Err(Code::kCorruption, "key '{}': bad data", id.substr(0, 8));
    // Refuse absurd parameters from a tampered file before they allocate gigabytes.
    if (info.kdf.n > (1ull << 22) || info.kdf.r > 32 || info.kdf.p > 16)
      return Err(Code::kCorruption, "key '{}': kdf parameters out of range", id.substr(0, 8));
    return info;
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "key '{}': {}", id.substr(0, 8), e.what());
  }
}
}  // namespace

Result<OpenedKey> OpenWithPassphrase(storage::Storage& st, std::string_view passphrase) {
  std::vector<std::string> ids;
  LB_RETURN_IF_ERROR(st.List("keys/", [&](const storage::ObjectInfo& o) {
    ids.push_back(o.name.substr(5));
    return Status::Ok();
  }));
  if (ids.empty())
    return Err(Code::kFailedPrecondition, "repository '{}' has no keys", st.Location());
  Status last;
  for (const auto& id : ids) {
    auto text = st.Get(KeyName(id));
    if (!text.ok()) {
      last = text.status();
      continue;
    }
    Bytes sealed;
    auto info = ParseKeyFile(id, *text, &sealed);
    if (!info.ok()) {
      last = info.status();
      continue;
    }
    LB_ASSIGN_OR_RETURN(crypto::Key wrap, crypto::DeriveKey(passphrase, info->kdf));
    auto plain = crypto::Open(wrap, sealed, AsBytes("lifeboat-key"));
    if (!plain.ok()) continue;  // not this key
    auto master = MasterKey::Parse(*plain);
    OPENSSL_cleanse(plain->data(), plain->size());
    if (!master.ok()) return master.status();
    return OpenedKey{std::move(*master), id};
  }
  return Status(Code::kWrongKey, fmt::format("no key in '{}' opens with the given password",
                                             st.Location()))
      .WithHint("check LIFEBOAT_PASSWORD_FILE / --password-file");
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
