/* registry_test.c - the plugin registry checks itself: every registered
 * plugin has a name, a config schema and a phase, and one that lacks any
 * of them (or whose credentials come without an index) is refused, so a
 * plugin can never validate without running. */
#include "gateway/plugins/plugin.h"
#include "common/err.h"
#include "test.h"

#include <string.h>

struct empty {
    int x;
};
static const struct gv_field fields[] = {
    GV_FIELD_INT("x", struct empty, x, 0, 9),
};
static const struct gv_schema schema = GV_SCHEMA("t", struct empty, fields);

static enum gw_plugin_verdict pass(const void *conf, struct gw_request *r, void *ctx)
{
    (void)conf;
    (void)r;
    (void)ctx;
    return GW_PLUGIN_NEXT;
}

static void test_registry_is_sound(void)
{
    const char *name = NULL, *why = NULL;
    CHECK_INT(gw_plugin_registry_check(&name, &why), 0);
    if (why != NULL)
        fprintf(stderr, "  %s: %s\n", name, why);
    CHECK(gw_plugin_count() >= 10);
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    for (size_t i = 0; i < gw_plugin_count(); i++) {
        int slot = -1;
        CHECK(gw_plugin_find(list[i]->name, strlen(list[i]->name), &slot) == list[i]);
        CHECK_INT(slot, (int)i);
        CHECK(list[i]->doc != NULL && list[i]->schema->nfields > 0);
    }
    CHECK(gw_plugin_find("nope", 4, NULL) == NULL);
    /* the test-only plugin is not in the real library's link */
    CHECK(gw_plugin_find("test_stamp", 10, NULL) == NULL);
}

static void test_incomplete_plugins_are_refused(void)
{
    const char *why = NULL;
    struct gw_plugin_ops ok = {.name = "t", .schema = &schema, .on_request = pass};
    CHECK_INT(gw_plugin_ops_check(&ok, &why), 0);
    struct gw_plugin_ops bad = ok;
    bad.schema = NULL; /* validates nothing, so could never be built */
    CHECK_INT(gw_plugin_ops_check(&bad, &why), GV_EINVAL);
    CHECK_STR(why, "has no config schema");
    bad = ok;
    bad.on_request = NULL; /* accepted in config, never runs: an auth plugin letting all in */
    CHECK_INT(gw_plugin_ops_check(&bad, &why), GV_EINVAL);
    CHECK_STR(why, "takes part in no phase");
    bad = ok;
    bad.name = "";
    CHECK_INT(gw_plugin_ops_check(&bad, &why), GV_EINVAL);
    struct gw_plugin_credentials creds = {.holder = &schema}; /* no index */
    bad = ok;
    bad.credentials = &creds;
    CHECK_INT(gw_plugin_ops_check(&bad, &why), GV_EINVAL);
}

TEST_MAIN(TEST(test_registry_is_sound), TEST(test_incomplete_plugins_are_refused))
