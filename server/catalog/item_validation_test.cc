#include "server/catalog/item_validation.h"

#include <string>

#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace hotpath::catalog {
namespace {

v1::Item ValidItem() {
  v1::Item item;
  item.set_sku("SKU-1");
  item.set_name("Widget");
  item.set_description("A widget.\nTwo lines.");
  item.set_category("cat-1");
  item.set_price_cents(1999);
  item.set_stock(5);
  item.add_tags("blue");
  item.add_tags("small");
  return item;
}

// The field paths of the BadRequest detail carried by status.
std::vector<std::string> ViolatedFields(const absl::Status& status) {
  std::vector<std::string> fields;
  auto payload = status.GetPayload("type.googleapis.com/google.rpc.BadRequest");
  if (!payload) return fields;
  google::rpc::BadRequest bad_request;
  EXPECT_TRUE(bad_request.ParseFromString(std::string(*payload)));
  for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
  return fields;
}

v1::CreateItemRequest CreateWith(const v1::Item& item) {
  v1::CreateItemRequest request;
  *request.mutable_item() = item;
  return request;
}

TEST(ValidateCreate, AcceptsAValidItem) {
  EXPECT_TRUE(ValidateCreate(CreateWith(ValidItem())).ok());
}

TEST(ValidateCreate, RequiresTheItem) {
  const absl::Status status = ValidateCreate(v1::CreateItemRequest());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"item"});
}

struct BadField {
  const char* name;           // test label
  void (*mutate)(v1::Item&);  // makes the item invalid
  const char* field;          // the violation's path
};

class ValidateCreateRejects : public testing::TestWithParam<BadField> {};

TEST_P(ValidateCreateRejects, NamesTheField) {
  v1::Item item = ValidItem();
  GetParam().mutate(item);
  const absl::Status status = ValidateCreate(CreateWith(item));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{GetParam().field});
  EXPECT_NE(status.message().find(GetParam().field), absl::string_view::npos) << status;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ValidateCreateRejects,
    testing::Values(
        BadField{"EmptySku", [](v1::Item& i) { i.clear_sku(); }, "item.sku"},
        BadField{"SkuWithSpace", [](v1::Item& i) { i.set_sku("SKU 1"); }, "item.sku"},
        BadField{"SkuWithQuote", [](v1::Item& i) { i.set_sku("x';DROP TABLE items;--"); },
                 "item.sku"},
        BadField{"LongSku", [](v1::Item& i) { i.set_sku(std::string(65, 'a')); }, "item.sku"},
        BadField{"EmptyName", [](v1::Item& i) { i.clear_name(); }, "item.name"},
        BadField{"LongName", [](v1::Item& i) { i.set_name(std::string(201, 'n')); }, "item.name"},
        BadField{"NameWithNul", [](v1::Item& i) { i.set_name(std::string("a\0b", 3)); },
                 "item.name"},
        BadField{"NameWithDel", [](v1::Item& i) { i.set_name("a\x7F"); }, "item.name"},
        BadField{"NameWithTab", [](v1::Item& i) { i.set_name("a\tb"); }, "item.name"},
        BadField{"DescriptionWithEscape", [](v1::Item& i) { i.set_description("a\x1B[31m"); },
                 "item.description"},
        BadField{"NameWithC1Control",
                 [](v1::Item& i) {
                   i.set_name(
                       "a\xC2\x85"
                       "b");
                 },
                 "item.name"},
        BadField{"NameOfSpaces", [](v1::Item& i) { i.set_name("   "); }, "item.name"},
        BadField{"DescriptionWithC1Control", [](v1::Item& i) { i.set_description("line\xC2\x9B"); },
                 "item.description"},
        BadField{"NameInvalidUtf8", [](v1::Item& i) { i.set_name("caf\xC3"); }, "item.name"},
        BadField{"NameOverlongUtf8", [](v1::Item& i) { i.set_name("\xC0\xAF"); }, "item.name"},
        BadField{"NameSurrogate", [](v1::Item& i) { i.set_name("\xED\xA0\x80"); }, "item.name"},
        BadField{"LongDescription", [](v1::Item& i) { i.set_description(std::string(4001, 'd')); },
                 "item.description"},
        BadField{"EmptyCategory", [](v1::Item& i) { i.clear_category(); }, "item.category"},
        BadField{"NegativePrice", [](v1::Item& i) { i.set_price_cents(-1); }, "item.price_cents"},
        BadField{"HugePrice", [](v1::Item& i) { i.set_price_cents(INT64_MAX); },
                 "item.price_cents"},
        BadField{"NegativeStock", [](v1::Item& i) { i.set_stock(-5); }, "item.stock"},
        BadField{"EmptyTag", [](v1::Item& i) { i.add_tags(""); }, "item.tags[2]"},
        BadField{"LongTag", [](v1::Item& i) { i.add_tags(std::string(65, 't')); }, "item.tags[2]"},
        BadField{"TagOfSpaces", [](v1::Item& i) { i.add_tags("  "); }, "item.tags[2]"},
        BadField{"RepeatedTag", [](v1::Item& i) { i.add_tags("blue"); }, "item.tags[2]"},
        BadField{"TagWithLineBreak", [](v1::Item& i) { i.add_tags("a\nb"); }, "item.tags[2]"},
        BadField{"TooManyTags",
                 [](v1::Item& i) {
                   for (int k = 0; k < 40; ++k) i.add_tags("t" + std::to_string(k));
                 },
                 "item.tags"}),
    [](const testing::TestParamInfo<BadField>& info) { return std::string(info.param.name); });

TEST(ValidateCreate, ADescriptionMayHoldLineBreaksAndTabsAndANameAnySpaceInside) {
  v1::Item item = ValidItem();
  item.set_description("first line\r\n\tsecond line\n");
  item.set_name(" Lamp  \xC2\xA0shade ");  // U+00A0 is not a control character
  EXPECT_TRUE(ValidateCreate(CreateWith(item)).ok());
}

TEST(ValidateCreate, CountsCharactersNotBytes) {
  v1::Item item = ValidItem();
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xC3\xA9";  // 200 x "é", 400 bytes
  item.set_name(name);
  EXPECT_TRUE(ValidateCreate(CreateWith(item)).ok());
}

TEST(ValidateCreate, ReportsEveryViolation) {
  v1::Item item = ValidItem();
  item.clear_sku();
  item.set_stock(-1);
  EXPECT_EQ(ViolatedFields(ValidateCreate(CreateWith(item))),
            (std::vector<std::string>{"item.sku", "item.stock"}));
}

TEST(ValidateUpdate, MaskPicksFields) {
  v1::UpdateItemRequest request;
  request.mutable_item()->set_id(7);
  request.mutable_item()->set_name("New name");
  request.mutable_update_mask()->add_paths("name");
  request.mutable_update_mask()->add_paths("stock");
  auto fields = ValidateUpdate(request);
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_TRUE(fields->name);
  EXPECT_TRUE(fields->stock);
  EXPECT_FALSE(fields->sku);
}

TEST(ValidateUpdate, NoMaskMeansNonDefaultFields) {
  v1::UpdateItemRequest request;
  request.mutable_item()->set_id(7);
  request.mutable_item()->set_price_cents(100);
  auto fields = ValidateUpdate(request);
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_TRUE(fields->price_cents);
  EXPECT_FALSE(fields->name);
}

TEST(ValidateUpdate, RejectsUnknownPathsAndEmptyUpdates) {
  v1::UpdateItemRequest request;
  request.mutable_item()->set_id(7);
  request.mutable_update_mask()->add_paths("id");
  EXPECT_EQ(ViolatedFields(ValidateUpdate(request).status()),
            std::vector<std::string>{"update_mask.paths[0]"});
  request.clear_update_mask();
  EXPECT_EQ(ViolatedFields(ValidateUpdate(request).status()),
            std::vector<std::string>{"update_mask"});
}

TEST(ValidateUpdate, ChecksMaskedFieldsAndId) {
  v1::UpdateItemRequest request;
  request.mutable_update_mask()->add_paths("name");
  EXPECT_EQ(ViolatedFields(ValidateUpdate(request).status()),
            (std::vector<std::string>{"item.id", "item.name"}));
}

TEST(ValidateUpdate, RejectsForeignEtags) {
  v1::UpdateItemRequest request;
  request.mutable_item()->set_id(7);
  request.mutable_item()->set_stock(1);
  request.mutable_item()->set_etag("abc");
  EXPECT_EQ(ViolatedFields(ValidateUpdate(request).status()),
            std::vector<std::string>{"item.etag"});
}

TEST(ParseEtag, AcceptsPlainQuotedAndWeakForms) {
  EXPECT_EQ(*ParseEtag("12", "etag"), 12);
  EXPECT_EQ(*ParseEtag("\"12\"", "etag"), 12);
  EXPECT_EQ(*ParseEtag("W/\"12\"", "etag"), 12);
  EXPECT_FALSE(ParseEtag("", "etag").ok());
  EXPECT_FALSE(ParseEtag("-1", "etag").ok());
  EXPECT_FALSE(ParseEtag("99999999999999999999999", "etag").ok());
}

TEST(ValidateRequests, IdsPageSizesAndFilters) {
  v1::GetItemRequest get;
  EXPECT_EQ(ViolatedFields(ValidateGet(get)), std::vector<std::string>{"id"});
  get.set_id(1);
  EXPECT_TRUE(ValidateGet(get).ok());

  v1::BatchGetItemsRequest batch;
  EXPECT_EQ(ViolatedFields(ValidateBatchGet(batch)), std::vector<std::string>{"ids"});
  for (int i = 1; i <= 1001; ++i) batch.add_ids(i);
  EXPECT_EQ(ViolatedFields(ValidateBatchGet(batch)), std::vector<std::string>{"ids"});
  batch.clear_ids();
  batch.add_ids(3);
  batch.add_ids(0);
  EXPECT_EQ(ViolatedFields(ValidateBatchGet(batch)), std::vector<std::string>{"ids[1]"});

  v1::ListItemsRequest list;
  EXPECT_TRUE(ValidateList(list).ok());
  list.set_page_size(-1);
  list.mutable_min_price_cents()->set_value(500);
  list.mutable_max_price_cents()->set_value(100);
  list.set_order_by("price");
  EXPECT_EQ(ViolatedFields(ValidateList(list)),
            (std::vector<std::string>{"page_size", "max_price_cents", "order_by"}));

  v1::SearchItemsRequest search;
  EXPECT_EQ(ViolatedFields(ValidateSearch(search)), std::vector<std::string>{"query"});
  search.set_query(std::string(257, 'q'));
  EXPECT_EQ(ViolatedFields(ValidateSearch(search)), std::vector<std::string>{"query"});
  search.set_query(" \t ");
  EXPECT_EQ(ViolatedFields(ValidateSearch(search)), std::vector<std::string>{"query"});

  v1::GetCategoryStatsRequest stats;
  stats.set_category("../etc/passwd");
  EXPECT_EQ(ViolatedFields(ValidateCategoryStats(stats)), std::vector<std::string>{"category"});
}

TEST(EffectivePageSize, DefaultsAndCoerces) {
  EXPECT_EQ(EffectivePageSize(0), kDefaultPageSize);
  EXPECT_EQ(EffectivePageSize(7), 7);
  EXPECT_EQ(EffectivePageSize(100000), kMaxPageSize);
}

}  // namespace
}  // namespace hotpath::catalog
