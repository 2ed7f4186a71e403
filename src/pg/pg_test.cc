// Unit tests of the PostgreSQL layer's pure parts: page checksums, WAL names and LSNs,
// target times, relation file names; copying a WAL archive between memory repositories. The
// real-cluster tests are in tests/pg/.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "pg/base_backup.h"
#include "pg/checksum.h"
#include "pg/pg_restore.h"
#include "pg/wal.h"
#include "pg/wal_copy.h"
#include "repo/names.h"
#include "storage/storage.h"

namespace lb::pg {
namespace {

TEST(WalNames, ParseFormatAndNext) {
  SegmentName s;
  ASSERT_TRUE(ParseSegmentName("00000001000000A2000000FF", s));
  EXPECT_EQ(s.tli, 1u);
  EXPECT_EQ(s.log, 0xA2u);
  EXPECT_EQ(s.seg, 0xFFu);
  EXPECT_EQ(FormatSegmentName(NextSegment(s, 16u << 20)), "00000001000000A300000000");
  EXPECT_EQ(FormatSegmentName(NextSegment(s, 1u << 30)), "00000001000000A300000000");
  SegmentName small{2, 0, 0x3F};
  EXPECT_EQ(FormatSegmentName(NextSegment(small, 64u << 20)), "000000020000000100000000");
  EXPECT_FALSE(ParseSegmentName("00000001000000A2000000F", s));
  EXPECT_FALSE(ParseSegmentName("00000001000000a2000000FF", s));
  EXPECT_FALSE(ParseSegmentName("00000002.history", s));
}

TEST(WalNames, LsnArithmetic) {
  uint64_t lsn = 0;
  ASSERT_TRUE(ParseLsn("16/B374D848", lsn));
  EXPECT_EQ(lsn, 0x16B374D848ull);
  EXPECT_EQ(FormatLsn(lsn), "16/B374D848");
  SegmentName s = SegmentOfLsn(3, lsn, 16u << 20);
  EXPECT_EQ(FormatSegmentName(s), "0000000300000016000000B3");
  EXPECT_EQ(SegmentStartLsn(s, 16u << 20), 0x16B3000000ull);
  EXPECT_FALSE(ParseLsn("16B374D848", lsn));
  EXPECT_FALSE(ParseLsn("1/2/3", lsn));
  EXPECT_FALSE(ParseLsn("100000000/0", lsn));
}

TEST(WalNames, ObjectNames) {
  EXPECT_EQ(WalObjectName("main", "000000010000000000000002"),
            "wal/main/0000000100000000/000000010000000000000002");
  EXPECT_EQ(WalObjectName("main", "00000002.history"), "wal/main/meta/00000002.history");
}

TEST(TargetTime, Formats) {
  int64_t a = 0, b = 0, c = 0, d = 0;
  ASSERT_TRUE(ParseTargetTime("2026-11-24 20:40:01.123456+00", a));
  ASSERT_TRUE(ParseTargetTime("2026-11-24T20:40:01.123456Z", b));
  ASSERT_TRUE(ParseTargetTime("2026-11-24 22:40:01.123456+02:00", c));
  ASSERT_TRUE(ParseTargetTime("2026-11-24 20:40:01.123456", d));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, d);
  EXPECT_EQ(a % 1000000000, 123456000);
  EXPECT_FALSE(ParseTargetTime("yesterday", a));
  EXPECT_FALSE(ParseTargetTime("2026-11-24 20:40:01 CEST", a));
}

TEST(RelationFiles, Names) {
  uint32_t seg = 9;
  EXPECT_TRUE(IsRelationFile("base/5/1259", &seg));
  EXPECT_EQ(seg, 0u);
  EXPECT_TRUE(IsRelationFile("base/16384/16390.12", &seg));
  EXPECT_EQ(seg, 12u);
  EXPECT_TRUE(IsRelationFile("base/16384/16390_fsm"));
  EXPECT_TRUE(IsRelationFile("base/16384/16390_vm.1"));
  EXPECT_TRUE(IsRelationFile("global/1262"));
  EXPECT_TRUE(IsRelationFile("pg_tblspc/16400/PG_15_202209061/16384/16401"));
  EXPECT_TRUE(IsRelationFile("PG_15_202209061/16384/16401"));
  EXPECT_FALSE(IsRelationFile("base/5/pg_filenode.map"));
  EXPECT_FALSE(IsRelationFile("global/pg_control"));
  EXPECT_FALSE(IsRelationFile("base/5/PG_VERSION"));
  EXPECT_FALSE(IsRelationFile("pg_xact/0000"));
  EXPECT_FALSE(IsRelationFile("base/16384/16390.x"));
}

TEST(PageChecksum, NewPagesAndRecentPagesAreNotChecked) {
  uint8_t page[kPageSize] = {};
  EXPECT_EQ(VerifyPage(page, 0, 100, nullptr, nullptr), PageVerdict::kNew);
  page[4] = 200;  // lsn lo = 200 >= start 100
  EXPECT_EQ(VerifyPage(page, 0, 100, nullptr, nullptr), PageVerdict::kSkippedLsn);
}

TEST(PageChecksum, DetectsAFlippedBitAndDependsOnBlock) {
  uint8_t page[kPageSize];
  for (size_t i = 0; i < kPageSize; ++i) page[i] = uint8_t(i * 7 + 3);
  std::memset(page, 0, 8);  // lsn 0
  uint16_t c = PageChecksum(page, 7);
  std::memcpy(page + 8, &c, 2);
  EXPECT_EQ(VerifyPage(page, 7, 1000, nullptr, nullptr), PageVerdict::kOk);
  EXPECT_EQ(VerifyPage(page, 8, 1000, nullptr, nullptr), PageVerdict::kBad);
  page[5000] ^= 1;
  EXPECT_EQ(VerifyPage(page, 7, 1000, nullptr, nullptr), PageVerdict::kBad);
  EXPECT_NE(c, 0);  // PostgreSQL never stores 0
}

// The WAL part of `lifeboat copy`, on memory repositories holding WAL-like named objects.
class WalCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    from_ = NewRepo("from", "pw1");
    ASSERT_TRUE(RegisterCluster(*from_, "main", {7001, kSeg, 1500}).ok());
    for (uint32_t i = 1; i <= 10; ++i) Push(*from_, "main", {1, 0, i});
    ASSERT_TRUE(from_->PutNamed(WalObjectName("main", "00000002.history"), Bytes{1, 2, 3}, 1, true).ok());
    // A second cluster, and a source whose name extends "main".
    ASSERT_TRUE(RegisterCluster(*from_, "other", {7002, kSeg, 1500}).ok());
    Push(*from_, "other", {1, 0, 1});
    Push(*from_, "main/x", {1, 0, 1});
  }

  static constexpr uint32_t kSeg = 16u << 20;

  std::unique_ptr<repo::Repository> NewRepo(const std::string& which, const std::string& pw) {
    std::string url = "mem:walcopy-" + which + "-" + name_;
    auto st = storage::OpenStorage(url);
    EXPECT_TRUE(repo::Repository::Init(**st, pw).ok());
    auto opened = storage::OpenStorage(url);
    auto r = repo::Repository::Open(std::move(*opened), pw);
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  static Bytes Segment(const SegmentName& s) {
    Bytes b(4096, uint8_t(s.seg));
    b[0] = uint8_t(s.tli);
    return b;
  }
  static void Push(repo::Repository& r, const std::string& source, SegmentName s) {
    ASSERT_TRUE(r.PutNamed(WalObjectName(source, FormatSegmentName(s)), Segment(s), 1, true).ok());
  }
  // A base backup snapshot of "main" starting inside segment `seg` (its tree is not needed).
  static void BaseBackup(repo::Repository& r, uint32_t seg) {
    repo::Snapshot s;
    s.kind = kBaseKind;
    s.source = "main";
    s.extra = {{"start_lsn", FormatLsn(SegmentStartLsn({1, 0, seg}, kSeg) + 100)}};
    ASSERT_TRUE(repo::SaveSnapshot(r, s).ok());
  }
  static std::vector<std::string> Names(repo::Repository& r, const std::string& prefix) {
    std::vector<std::string> out;
    EXPECT_TRUE(r.storage().List(prefix, [&](const storage::ObjectInfo& o) {
      out.push_back(o.name);
      return Status::Ok();
    }).ok());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string name_;
  std::unique_ptr<repo::Repository> from_;
};

TEST_F(WalCopyTest, CopiesTheArchiveAndTheClusterFacts) {
  auto to = NewRepo("to", "pw2");
  EXPECT_EQ(ListWalSources(*from_).value(), (std::vector<std::string>{"main", "other"}));
  auto dry = CopyWalArchive(*from_, *to, "main", {.dry_run = true});
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->objects_copied, 11u);
  EXPECT_TRUE(Names(*to, "").size() > 0 && Names(*to, "wal/").empty());
  auto res = CopyWalArchive(*from_, *to, "main", {.threads = 3});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->objects_copied, 11u);
  EXPECT_EQ(res->objects_skipped, 1u);  // wal/main/x/...
  auto info = LoadClusterInfo(*to, "main").value();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->system_id, 7001u);
  EXPECT_EQ(info->version, 1500);
  for (uint32_t i = 1; i <= 10; ++i) {
    SegmentName s{1, 0, i};
    auto got = to->GetNamed(WalObjectName("main", FormatSegmentName(s)));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, Segment(s));
  }
  EXPECT_TRUE(Names(*to, "wal/other/").empty());
  EXPECT_TRUE(Names(*to, "wal/main/x/").empty());
  auto again = CopyWalArchive(*from_, *to, "main", {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->objects_copied, 0u);
  EXPECT_EQ(again->objects_present, 11u);
  Push(*from_, "main", {1, 0, 11});
  again = CopyWalArchive(*from_, *to, "main", {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->objects_copied, 1u);
}

// Segments that end before the target's oldest base backup starts are left out; the
// history file is not.
TEST_F(WalCopyTest, LeavesOutWalNoBaseBackupOfTheTargetNeeds) {
  auto to = NewRepo("to", "pw2");
  BaseBackup(*to, 6);
  auto res = CopyWalArchive(*from_, *to, "main", {});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->objects_copied, 5u + 1);
  EXPECT_EQ(res->objects_skipped, 5u + 1);
  EXPECT_EQ(to->GetNamed(WalObjectName("main", "000000010000000000000005")).status().code(),
            Code::kNotFound);
  EXPECT_TRUE(to->GetNamed(WalObjectName("main", "000000010000000000000006")).ok());
  EXPECT_TRUE(to->GetNamed(WalObjectName("main", "00000002.history")).ok());
  // A dry run counts a base backup about to be copied as the target's.
  auto other = NewRepo("other", "pw3");
  repo::Snapshot incoming;
  incoming.kind = kBaseKind;
  incoming.source = "main";
  incoming.extra = {{"start_lsn", FormatLsn(SegmentStartLsn({1, 0, 9}, kSeg))}};
  auto dry = CopyWalArchive(*from_, *other, "main", {.dry_run = true, .incoming_backups = {incoming}});
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->objects_copied, 2u + 1);
}

TEST_F(WalCopyTest, RefusesATargetWhoseSourceIsAnotherCluster) {
  auto to = NewRepo("to", "pw2");
  ASSERT_TRUE(RegisterCluster(*to, "main", {9999, kSeg, 1500}).ok());
  auto res = CopyWalArchive(*from_, *to, "main", {});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Names(*to, "wal/").empty());
}

}  // namespace
}  // namespace lb::pg
