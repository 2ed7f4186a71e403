// IdSpill: the sorted, deduplicated id set that prune keeps on scratch files.
#include "repo/id_spill.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>

namespace lb::repo {
namespace {

namespace fs = std::filesystem;

crypto::Id RandomId(std::mt19937_64& rng) {
  crypto::Id id;
  for (auto& b : id.bytes) b = uint8_t(rng());
  return id;
}

class IdSpillTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lb-idspill-" + std::to_string(getpid()) + "-" +
                                        std::to_string(GetParam()));
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Batch sizes: 1 and 7 spill constantly (hundreds of runs: a merge in several levels),
// 1000 a few runs, 1 << 20 never (everything stays in memory).
TEST_P(IdSpillTest, SortsDeduplicatesAndAnswersMembership) {
  std::mt19937_64 rng(GetParam());
  auto spill = IdSpill::Create(dir_.string(), GetParam());
  ASSERT_TRUE(spill.ok()) << spill.status().ToString();
  std::set<crypto::Id> want;
  std::vector<crypto::Id> added;
  for (int i = 0; i < 5000; ++i) {
    // One id in four is a repeat of an earlier one.
    crypto::Id id = (!added.empty() && rng() % 4 == 0) ? added[rng() % added.size()] : RandomId(rng);
    added.push_back(id);
    want.insert(id);
    ASSERT_TRUE((*spill)->Add(id).ok());
  }
  ASSERT_TRUE((*spill)->Finish().ok());
  EXPECT_EQ((*spill)->size(), want.size());
  EXPECT_FALSE((*spill)->Add(RandomId(rng)).ok()) << "Add after Finish must fail";

  auto scan = (*spill)->Ids();
  std::vector<crypto::Id> got;
  crypto::Id id;
  for (;;) {
    auto more = scan.Next(id);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    got.push_back(id);
  }
  EXPECT_EQ(got, std::vector<crypto::Id>(want.begin(), want.end()));

  for (const auto& a : added) {
    auto c = (*spill)->Contains(a);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(*c);
  }
  for (int i = 0; i < 2000; ++i) {
    crypto::Id other = RandomId(rng);
    auto c = (*spill)->Contains(other);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(*c, want.count(other) > 0);
  }
  // Below the smallest and above the largest.
  crypto::Id lo{}, hi{};
  hi.bytes.fill(0xff);
  EXPECT_EQ(*(*spill)->Contains(lo), want.count(lo) > 0);
  EXPECT_EQ(*(*spill)->Contains(hi), want.count(hi) > 0);
  // Scratch files are unnamed: nothing is left in the directory.
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_P(IdSpillTest, EmptySet) {
  auto spill = IdSpill::Create(dir_.string(), GetParam());
  ASSERT_TRUE(spill.ok());
  ASSERT_TRUE((*spill)->Finish().ok());
  EXPECT_EQ((*spill)->size(), 0u);
  crypto::Id id{};
  auto c = (*spill)->Contains(id);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(*c);
  auto scan = (*spill)->Ids();
  auto more = scan.Next(id);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
}

INSTANTIATE_TEST_SUITE_P(Batches, IdSpillTest, ::testing::Values(1, 7, 1000, size_t(1) << 20));

}  // namespace
}  // namespace lb::repo
