/* kinds_test.c - the table of cluster-state kinds: ids as stored, names,
 * apply order and the lookups. */
#include "common/kinds.h"
#include "test.h"

static void test_ids_and_names(void)
{
    /* the ids are on disk and on the wire: they never change */
    CHECK_INT(gv_kind_by_name("services")->id, 0);
    CHECK_INT(gv_kind_by_name("routes")->id, 1);
    CHECK_INT(gv_kind_by_name("consumers")->id, 2);
    CHECK_INT(gv_kind_by_name("plugins")->id, 3);
    CHECK_STR(gv_kind_by_id(GV_KIND_SERVICES)->plural, "services");
    CHECK_STR(gv_kind_by_id(GV_KIND_ROUTES)->singular, "route");
    CHECK_STR(gv_kind_by_id(GV_KIND_PLUGINS)->singular, "plugin");
    CHECK(gv_kind_by_id(GV_KIND_COUNT) == NULL);
    CHECK(gv_kind_by_id(255) == NULL);
    for (unsigned id = 0; id < GV_KIND_COUNT; id++)
        CHECK(gv_kind_by_id(id) != NULL && gv_kind_by_id(id)->id == id);
}

static void test_lookups(void)
{
    CHECK(gv_kind_by_name("route") == NULL); /* the API and the file say "routes" */
    CHECK(gv_kind_by_name(NULL) == NULL);
    CHECK(gv_kind_by_name("Routes") == NULL);
    CHECK_INT(gv_kind_by_word("route")->id, GV_KIND_ROUTES);
    CHECK_INT(gv_kind_by_word("consumers")->id, GV_KIND_CONSUMERS);
    CHECK(gv_kind_by_word("widgets") == NULL);
    CHECK(gv_kind_by_word(NULL) == NULL);
    char buf[16];
    CHECK_STR(gv_kind_label(GV_KIND_CONSUMERS, buf, sizeof(buf)), "consumers");
    CHECK_STR(gv_kind_label(7, buf, sizeof(buf)), "kind-7");
    char text[128];
    CHECK_STR(gv_kinds_text(text, sizeof(text), " or "), "services, routes, consumers or plugins");
    CHECK_STR(gv_kinds_text(text, sizeof(text), ", "), "services, routes, consumers, plugins");
    CHECK_STR(gv_kinds_text(text, 12, " and "), "services, r");
}

static void test_apply_order(void)
{
    /* services first (routes name them), routes last */
    CHECK_INT(gv_kinds[0].id, GV_KIND_SERVICES);
    CHECK_INT(gv_kinds[1].id, GV_KIND_CONSUMERS);
    CHECK_INT(gv_kinds[2].id, GV_KIND_PLUGINS);
    CHECK_INT(gv_kinds[GV_KIND_COUNT - 1].id, GV_KIND_ROUTES);
}

TEST_MAIN(TEST(test_ids_and_names), TEST(test_lookups), TEST(test_apply_order))
