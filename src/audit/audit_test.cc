// Audit log tests: the chain, each kind of tampering and what verify says about it, a
// cut-off final record, concurrent appends (threads and processes), the repository copy and
// the redaction rules.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "audit/audit_log.h"
#include "audit/redact.h"
#include "audit/repository_copy.h"
#include "storage/storage.h"

namespace lb::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lb-audit-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = (dir_ / "state" / "audit.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Event Ev(int i, const std::string& op = "backup files") {
    Event e;
    SetProcessFields(e);
    e.time_ns = 1700000000000000000 + int64_t(i) * 1000000007;
    e.operation = op;
    e.argv = {"lifeboat", "backup", "files", "/srv/data/" + std::to_string(i)};
    e.repositories = {"/srv/backup/repo"};
    e.exit_code = i % 7 == 0 ? 3 : 0;
    e.result = e.exit_code == 0 ? "ok" : "some files were left out";
    e.duration_ms = 10 + i;
    return e;
  }

  std::vector<AppendedRecord> AppendN(int n, std::optional<ChainKey> key = std::nullopt) {
    auto log = AuditLog::Open(path_, std::move(key));
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    std::vector<AppendedRecord> out;
    for (int i = 1; i <= n; ++i) {
      auto r = (*log)->Append(Ev(i));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) out.push_back(*r);
    }
    return out;
  }

  std::string ReadFile() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    std::stringstream ss(ReadFile());
    for (std::string l; std::getline(ss, l);) out.push_back(l);
    return out;
  }
  void WriteLines(const std::vector<std::string>& lines, bool final_newline = true) const {
    std::string text;
    for (size_t i = 0; i < lines.size(); ++i)
      text += lines[i] + (i + 1 < lines.size() || final_newline ? "\n" : "");
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
  }

  VerifyResult Verify(const ChainKey* key = nullptr) const {
    auto r = VerifyLog(path_, key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyResult{};
  }

  // Replaces `from` by `to` in line `k` (1-based), optionally recomputing the record's hash
  // (what an attacker without the key can do to a plain chain).
  void EditLine(size_t k, const std::string& from, const std::string& to, bool rehash = false,
                const ChainKey* key = nullptr) {
    auto lines = Lines();
    std::string& l = lines.at(k - 1);
    const size_t pos = l.find(from);
    ASSERT_NE(pos, std::string::npos) << l;
    l.replace(pos, from.size(), to);
    if (rehash) {
      json j = json::parse(l);
      j["hash"] = RecordHash(j, key);
      l = j.dump();
    }
    WriteLines(lines);
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(AuditTest, AppendsAChainThatVerifies) {
  auto recs = AppendN(7);
  ASSERT_EQ(recs.size(), 7u);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 7u);
  std::string prev = GenesisHash(recs[0].log_id);
  for (size_t i = 0; i < lines.size(); ++i) {
    json j = json::parse(lines[i]);
    EXPECT_EQ(j["seq"], i + 1);
    EXPECT_EQ(j["log"], recs[0].log_id);
    EXPECT_EQ(j["prev"], prev);
    EXPECT_EQ(j["hash"], RecordHash(j, nullptr));
    EXPECT_EQ(j["alg"], "sha256");
    EXPECT_EQ(j["operation"], "backup files");
    EXPECT_EQ(j["repositories"][0], "/srv/backup/repo");
    EXPECT_TRUE(j.contains("user") && j.contains("host") && j.contains("pid"));
    EXPECT_EQ(j["time"].get<std::string>().size(), std::string("2023-11-14T22:13:21.000000007Z").size());
    EXPECT_EQ(recs[i].line, lines[i]);
    prev = j["hash"];
  }
  EXPECT_EQ(json::parse(lines[6])["exit_code"], 3);
  auto v = Verify();
  EXPECT_FALSE(v.problem) << v.problem->message;
  EXPECT_FALSE(v.incomplete);
  EXPECT_EQ(v.records, 7u);
  EXPECT_EQ(v.last_seq, 7u);
  EXPECT_EQ(v.last_hash, recs.back().hash);
  EXPECT_EQ(fs::status(path_).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(AuditTest, EditedRecordIsNamed) {
  for (size_t k : {1u, 4u, 8u}) {
    fs::remove(path_);
    AppendN(8);
    EditLine(k, "\"exit_code\":", "\"exit_code\":1");  // 0 -> 10, 3 -> 13
    auto v = Verify();
    ASSERT_TRUE(v.problem) << "k=" << k;
    EXPECT_EQ(v.problem->kind, ProblemKind::kEdited);
    EXPECT_EQ(v.problem->line, k);
    EXPECT_EQ(v.problem->message,
              fmt::format("record {} (line {}): hash mismatch — the record was edited", k, k));
  }
}

TEST_F(AuditTest, EditedAndRehashedRecordBreaksTheNextLink) {
  AppendN(6);
  EditLine(3, "\"result\":\"ok\"", "\"result\":\"nothing happened\"", /*rehash=*/true);
  auto v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kBrokenLink);
  EXPECT_EQ(v.problem->line, 4u);
  EXPECT_EQ(v.problem->message.substr(0, 41), "prev of record 4 does not match record 3 ");
}

TEST_F(AuditTest, RemovedRecordsAreNamed) {
  struct Case {
    std::vector<size_t> remove;  // 1-based lines
    std::string message;
    uint64_t line;
  };
  const std::vector<Case> cases = {
      {{3}, "record 4 follows record 2: record 3 was removed", 3},
      {{2, 3, 4}, "record 5 follows record 1: records 2-4 were removed", 2},
      {{1}, "the log starts at record 2: record 1 was removed", 1},
  };
  for (const auto& c : cases) {
    fs::remove(path_);
    AppendN(6);
    auto lines = Lines();
    for (auto it = c.remove.rbegin(); it != c.remove.rend(); ++it)
      lines.erase(lines.begin() + long(*it - 1));
    WriteLines(lines);
    auto v = Verify();
    ASSERT_TRUE(v.problem) << c.message;
    EXPECT_EQ(v.problem->kind, ProblemKind::kRemoved);
    EXPECT_EQ(v.problem->message, c.message);
    EXPECT_EQ(v.problem->line, c.line);
  }
}

TEST_F(AuditTest, ReorderedRecordsAreNamed) {
  AppendN(6);
  auto orig = Lines();
  auto lines = orig;
  std::swap(lines[2], lines[3]);  // seq 4 before 3
  WriteLines(lines);
  auto v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kReordered);
  EXPECT_EQ(v.problem->message, "records out of order at line 3 (seq 4 before 3)");

  lines = orig;  // record 2 moved to the end
  lines.push_back(lines[1]);
  lines.erase(lines.begin() + 1);
  WriteLines(lines);
  v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->message, "records out of order at line 2 (seq 3 before 2)");

  lines = orig;  // record 2 repeated at the end
  lines.push_back(lines[1]);
  WriteLines(lines);
  v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kReordered);
  EXPECT_EQ(v.problem->message, "records out of order at line 7 (seq 2 after 6)");
}

TEST_F(AuditTest, InsertedLinesAreNamed) {
  AppendN(4);
  auto lines = Lines();
  lines.insert(lines.begin() + 2, "{\"v\":1,\"note\":\"hello\"}");
  WriteLines(lines);
  auto v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kNotARecord);
  EXPECT_EQ(v.problem->line, 3u);
  EXPECT_NE(v.problem->message.find("line 3 is not a valid record"), std::string::npos);

  // A genuine record of another log, spliced in.
  const std::string mine = path_;
  path_ = (dir_ / "other.log").string();
  AppendN(3);
  const std::string foreign = Lines()[2];
  path_ = mine;
  lines = Lines();
  lines[2] = foreign;
  WriteLines(lines);
  v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kForeignLog);
  EXPECT_EQ(v.problem->line, 3u);
}

TEST_F(AuditTest, CutOffFinalRecordIsIncompleteAndTheNextAppendRepairsIt) {
  AppendN(3);
  const std::string whole = ReadFile();
  auto next = AppendN(1);
  const std::string fourth = ReadFile().substr(whole.size());
  // A crash in the middle of the fourth record's write.
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << whole << fourth.substr(0, 50);
  auto v = Verify();
  EXPECT_FALSE(v.problem) << v.problem->message;
  ASSERT_TRUE(v.incomplete);
  EXPECT_EQ(v.incomplete->kind, ProblemKind::kIncomplete);
  EXPECT_EQ(v.incomplete->line, 4u);
  EXPECT_EQ(v.incomplete->message.substr(0, 39), "incomplete final record at line 4 (50 b");
  EXPECT_EQ(v.records, 3u);

  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  auto r = (*log)->Append(Ev(9));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->seq, 4u);
  EXPECT_EQ(r->repair.substr(0, 55), "removed an incomplete final record of 50 bytes at offse");
  EXPECT_NE(r->line.find("\"repair\":"), std::string::npos);
  v = Verify();
  EXPECT_FALSE(v.problem) << v.problem->message;
  EXPECT_FALSE(v.incomplete);
  EXPECT_EQ(v.records, 4u);
  EXPECT_EQ(Lines().size(), 4u);
}

TEST_F(AuditTest, RecordWithoutItsNewlineIsKept) {
  AppendN(3);
  std::string text = ReadFile();
  text.pop_back();
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
  auto v = Verify();
  EXPECT_FALSE(v.problem);
  EXPECT_FALSE(v.incomplete);
  EXPECT_EQ(v.records, 3u);
  EXPECT_EQ(v.note, "the final record (line 3) has no newline");

  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  auto r = (*log)->Append(Ev(4));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq, 4u);
  EXPECT_EQ(r->repair, "completed record 3: it had no newline");
  v = Verify();
  EXPECT_FALSE(v.problem) << v.problem->message;
  EXPECT_EQ(v.records, 4u);
}

TEST_F(AuditTest, DamagedLastLineDoesNotStopAppends) {
  AppendN(3);
  auto lines = Lines();
  lines[2] = "garbage";
  WriteLines(lines);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  auto r = (*log)->Append(Ev(4));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->seq, 3u);  // after the highest seq still readable
  EXPECT_NE(r->repair.find("is not a valid record"), std::string::npos);
  auto v = Verify();
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kNotARecord);
  EXPECT_EQ(v.problem->line, 3u);
}

TEST_F(AuditTest, KeyedChain) {
  auto key = ChainKey::FromContents(std::string(64, 'a') + "\n");
  ASSERT_TRUE(key.ok());
  auto other = ChainKey::FromContents("a passphrase of some length");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(key->id, other->id);
  EXPECT_FALSE(ChainKey::FromContents("short").ok());

  AppendN(4, *key);
  EXPECT_EQ(json::parse(Lines()[0])["alg"], "hmac-sha256");
  EXPECT_EQ(json::parse(Lines()[0])["key_id"], key->id);
  auto v = Verify(&*key);
  EXPECT_FALSE(v.problem) << v.problem->message;
  EXPECT_TRUE(v.keyed);

  v = Verify();  // without the key: the order is checked, the hashes cannot be
  EXPECT_FALSE(v.problem);
  EXPECT_TRUE(v.key_needed);

  v = Verify(&*other);
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kWrongKey);

  // Without the key an edit can only be re-hashed as a plain record, which a key exposes.
  auto lines = Lines();
  EditLine(2, "\"alg\":\"hmac-sha256\"", "\"alg\":\"sha256\"", /*rehash=*/true);
  v = Verify(&*key);
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kUnkeyed);
  EXPECT_EQ(v.problem->line, 2u);

  WriteLines(lines);
  EditLine(3, "\"exit_code\":", "\"exit_code\":1", /*rehash=*/true, &*other);
  v = Verify(&*key);
  ASSERT_TRUE(v.problem);
  EXPECT_EQ(v.problem->kind, ProblemKind::kEdited);
  EXPECT_EQ(v.problem->line, 3u);
}

TEST_F(AuditTest, ConcurrentAppendsFromThreadsKeepOneChain) {
  constexpr int kThreads = 6, kEach = 30;
  auto shared = AuditLog::Open(path_);
  ASSERT_TRUE(shared.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half share one AuditLog (its mutex orders them), half open their own (flock does).
      std::unique_ptr<AuditLog> own;
      if (t % 2) own = std::move(AuditLog::Open(path_).value());
      AuditLog& log = own ? *own : **shared;
      for (int i = 0; i < kEach; ++i) ASSERT_TRUE(log.Append(Ev(t * 100 + i)).ok());
    });
  }
  for (auto& t : threads) t.join();
  auto v = Verify();
  EXPECT_FALSE(v.problem) << v.problem->message;
  EXPECT_EQ(v.records, uint64_t(kThreads * kEach));
  EXPECT_EQ(v.last_seq, uint64_t(kThreads * kEach));
}

TEST_F(AuditTest, ConcurrentAppendsFromProcessesKeepOneChain) {
  constexpr int kProcs = 4, kEach = 40;
  AppendN(1);  // the file exists: children race on appends, not on creating it
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::Open(path_);
      if (!log.ok()) _exit(2);
      for (int i = 0; i < kEach; ++i)
        if (!(*log)->Append(Ev(p * 100 + i)).ok()) _exit(3);
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto v = Verify();
  EXPECT_FALSE(v.problem) << v.problem->message;
  EXPECT_EQ(v.records, uint64_t(1 + kProcs * kEach));
  std::set<int64_t> pids_seen;
  for (const auto& l : Lines()) pids_seen.insert(json::parse(l)["pid"].get<int64_t>());
  EXPECT_EQ(pids_seen.size(), size_t(kProcs + 1));
}

TEST_F(AuditTest, HugeCommandLineIsCut) {
  Event e = Ev(1);
  e.argv.assign(5000, std::string(100, 'x'));
  e.argv.push_back("\xff\xfe not utf-8");
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  auto r = (*log)->Append(e);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(r->line.size(), kMaxRecordBytes);
  json j = json::parse(r->line);
  EXPECT_NE(j["argv"].back().get<std::string>().find("more arguments)"), std::string::npos);
  ASSERT_TRUE((*log)->Append(Ev(2)).ok());
  EXPECT_FALSE(Verify().problem);
}

TEST_F(AuditTest, BytesThatAreNotUtf8AreEscaped) {
  Event e = Ev(1);
  e.argv = {"lifeboat", "backup", "files", "/srv/bad\xff\xfename", "/srv/caf\xc3\xa9",
            "/srv/overlong\xc0\xaf"};
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  auto r = (*log)->Append(e);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json j = json::parse(r->line);
  EXPECT_EQ(j["argv"][3], "/srv/bad\\xff\\xfename");
  EXPECT_EQ(j["argv"][4], "/srv/caf\xc3\xa9");
  EXPECT_EQ(j["argv"][5], "/srv/overlong\\xc0\\xaf");
  EXPECT_FALSE(Verify().problem);
}

TEST_F(AuditTest, ReadLogKeepsTheLastLines) {
  AppendN(5);
  auto all = ReadLog(path_);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 5u);
  auto last = ReadLog(path_, 2);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->size(), 2u);
  EXPECT_EQ((*last)[0].line, 4u);
  EXPECT_EQ((*(*last)[1].record)["seq"], 5);
  EXPECT_EQ(ReadLog(path_ + ".missing").status().code(), Code::kNotFound);
  EXPECT_EQ(VerifyLog(path_ + ".missing").status().code(), Code::kNotFound);
}

class AuditCopyTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    setenv("LIFEBOAT_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    url_ = "mem:audit-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto st = storage::OpenStorage(url_);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(repo::Repository::Init(**st, "pw").ok());
    auto r = repo::Repository::Open(std::move(storage::OpenStorage(url_).value()), "pw");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
  }
  CopyComparison Compare(const VerifyResult& v) {
    auto c = CompareWithCopy(*repo_, v);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : CopyComparison{};
  }
  std::string url_;
  std::unique_ptr<repo::Repository> repo_;
};

TEST_F(AuditCopyTest, IntactLogMatchesItsCopy) {
  auto recs = AppendN(5);
  for (const auto& r : recs) ASSERT_TRUE(PutCopy(*repo_, r).ok());
  ASSERT_TRUE(PutCopy(*repo_, recs[2]).ok()) << "a retry of the same record is fine";
  auto raw = repo_->storage().Get(CopyName(recs[0].log_id, 1));
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(AsString(*raw).find("backup files"), std::string::npos) << "copies are sealed";
  EXPECT_EQ(CopyName(recs[0].log_id, 12), "audit/" + recs[0].log_id + "/00000000000000000012");

  auto c = Compare(Verify());
  EXPECT_FALSE(c.problem) << c.problem->message;
  EXPECT_EQ(c.copies, 5u);
  EXPECT_EQ(c.not_copied, 0u);

  // One record whose copy failed, and a second log in the same repository.
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE((*log)->Append(Ev(6)).ok());
  const std::string mine = path_;
  path_ = (dir_ / "other.log").string();
  for (const auto& r : AppendN(2)) ASSERT_TRUE(PutCopy(*repo_, r).ok());
  path_ = mine;
  c = Compare(Verify());
  EXPECT_FALSE(c.problem);
  EXPECT_EQ(c.not_copied, 1u);
  EXPECT_EQ(c.first_not_copied, 6u);
  ASSERT_EQ(c.other_logs.size(), 1u);
  EXPECT_EQ(c.other_logs.begin()->second, 2u);
}

TEST_F(AuditCopyTest, TruncatedTailIsFoundThroughTheCopy) {
  auto recs = AppendN(5);
  for (const auto& r : recs) ASSERT_TRUE(PutCopy(*repo_, r).ok());
  auto lines = Lines();
  lines.resize(3);
  WriteLines(lines);
  auto v = Verify();
  EXPECT_FALSE(v.problem) << "the file alone cannot show a removed tail";
  auto c = Compare(v);
  ASSERT_TRUE(c.problem);
  EXPECT_EQ(c.problem->kind, ProblemKind::kTruncated);
  EXPECT_EQ(c.problem->message,
            "log truncated: the repository copy has records up to 5 but the file ends at 3");

  // The next append reuses seq 4; its copy collides with the old record 4.
  auto log = AuditLog::Open(path_);
  auto r = (*log)->Append(Ev(7));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq, 4u);
  Status s = PutCopy(*repo_, *r);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("lost records"), std::string::npos);
}

TEST_F(AuditCopyTest, RewrittenLastRecordIsFoundThroughTheCopy) {
  auto recs = AppendN(4);
  for (const auto& r : recs) ASSERT_TRUE(PutCopy(*repo_, r).ok());
  EditLine(4, "\"result\":\"ok\"", "\"result\":\"nothing\"", /*rehash=*/true);
  auto v = Verify();
  EXPECT_FALSE(v.problem);
  auto c = Compare(v);
  ASSERT_TRUE(c.problem);
  EXPECT_EQ(c.problem->kind, ProblemKind::kDiffersFromCopy);
  EXPECT_EQ(c.problem->seq, 4u);
}

TEST(Redact, SecretNames) {
  for (const char* n : {"--password", "password", "--PGPASSWORD", "--new-password", "secret_key",
                        "--token", "--api-key", "access_key", "--auth", "X-Amz-Signature",
                        "X-Amz-Credential", "sslpassword", "--passphrase", "pwd"}) {
    EXPECT_TRUE(IsSecretName(n)) << n;
  }
  for (const char* n : {"--password-file", "--key-file", "--new-key-file",
                        "--generate-key-file", "--audit-key-file", "--repo", "--keep-last",
                        "--target", "host", "user", "--secret-dir", "token_path"}) {
    EXPECT_FALSE(IsSecretName(n)) << n;
  }
}

TEST(Redact, Text) {
  const std::vector<std::string> secrets = {"hunter2-swordfish", "abc"};
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"s3://AKIA123:wJalrXUtnFEMI@s3.example.net/bucket",
       "s3://AKIA123:<redacted>@s3.example.net/bucket"},
      {"postgresql://app:pa55@db:5432/app?sslmode=require",
       "postgresql://app:<redacted>@db:5432/app?sslmode=require"},
      {"postgresql://app@db/app", "postgresql://app@db/app"},
      {"s3://bucket/prefix?region=x&secret=abc123&x=1",
       "s3://bucket/prefix?region=x&secret=<redacted>&x=1"},
      {"https://h/p?X-Amz-Credential=AK%2F1&X-Amz-Signature=deadbeef",
       "https://h/p?X-Amz-Credential=<redacted>&X-Amz-Signature=<redacted>"},
      {"host=db port=5432 password='a b\\' c' user=app",
       "host=db port=5432 password=<redacted> user=app"},
      {"host=db password=plain user=app", "host=db password=<redacted> user=app"},
      {"Server=x;Password=y;Uid=z", "Server=x;Password=<redacted>;Uid=z"},
      {"PGPASSWORD=xyz", "PGPASSWORD=<redacted>"},
      {"/srv/data/key=value.txt", "/srv/data/key=value.txt"},
      {"the password is hunter2-swordfish!", "the password is <redacted>!"},
      {"abc stays (too short to be a known secret)", "abc stays (too short to be a known secret)"},
      {"/srv/backup/repo", "/srv/backup/repo"},
  };
  for (const auto& c : cases) EXPECT_EQ(RedactText(c.in, secrets), c.out) << c.in;
}

TEST(Redact, Argv) {
  const std::vector<std::string> secrets = {"sup3r-secret"};
  struct Case {
    std::vector<std::string> in, out;
  };
  const std::vector<Case> cases = {
      {{"lifeboat", "--password-file", "/etc/lb/pw", "init"},
       {"lifeboat", "--password-file", "/etc/lb/pw", "init"}},
      {{"lifeboat", "--key-file=/etc/lb/key", "pg", "wal-get", "x", "y"},
       {"lifeboat", "--key-file=/etc/lb/key", "pg", "wal-get", "x", "y"}},
      {{"lifeboat", "--password", "sup3r-secret", "init"},
       {"lifeboat", "--password", "<redacted>", "init"}},
      {{"lifeboat", "--password=hunter2", "init"}, {"lifeboat", "--password=<redacted>", "init"}},
      {{"tool", "--token", "--weird-but-secret"}, {"tool", "--token", "<redacted>"}},
      {{"lifeboat", "pg", "backup", "--dbname", "host=db password=pw1 user=u"},
       {"lifeboat", "pg", "backup", "--dbname", "host=db password=<redacted> user=u"}},
      {{"lifeboat", "--repo", "s3://K:S@h/b", "snapshots"},
       {"lifeboat", "--repo", "s3://K:<redacted>@h/b", "snapshots"}},
      {{"lifeboat", "backup", "command", "--name", "db", "--", "mysqldump", "--api-key",
        "k1", "sup3r-secret"},
       {"lifeboat", "backup", "command", "--name", "db", "--", "mysqldump", "--api-key",
        "<redacted>", "<redacted>"}},
      {{"lifeboat", "key", "remove", "ab12cd34"}, {"lifeboat", "key", "remove", "ab12cd34"}},
      {{"lifeboat", "forget", "--keep-last", "3", "--password"},
       {"lifeboat", "forget", "--keep-last", "3", "--password"}},
  };
  for (const auto& c : cases) EXPECT_EQ(RedactArgv(c.in, secrets), c.out) << c.in[1];
}

}  // namespace
}  // namespace lb::audit
