/* registry_test.c - the algorithm registry: every registered algorithm is
 * found by its name and complete, the names a config may use are all there,
 * and a name (or an ops table) missing from it cannot be configured. */
#include "balancer/lb.h"
#include "common/err.h"
#include "common/schema.h"
#include "test.h"

#include <stdlib.h>

/* What the docs and existing configs promise. */
static const char *const promised[] = {"round_robin", "least_connections", "p2c_ewma",
                                       "consistent_hash", "random"};

static void test_every_algorithm_found_by_name(void)
{
    size_t n = lb_algo_count();
    CHECK(n >= sizeof(promised) / sizeof(promised[0]));
    CHECK(lb_algo_default() == lb_algo_at(0));
    CHECK(lb_algo_at(n) == NULL);
    for (size_t i = 0; i < n; i++) {
        const struct lb_ops *ops = lb_algo_at(i);
        CHECK(ops != NULL);
        if (ops == NULL)
            continue;
        CHECK(ops->name != NULL && ops->name[0] != '\0');
        CHECK(ops->doc != NULL && ops->doc[0] != '\0' && strchr(ops->doc, '\n') == NULL);
        CHECK(ops->pick != NULL);
        CHECK((ops->init == NULL) == (ops->destroy == NULL));
        CHECK(lb_algo_find(ops->name) == ops);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(lb_algo_at(j)->name, ops->name) != 0);
    }
    for (size_t i = 0; i < sizeof(promised) / sizeof(promised[0]); i++) {
        const struct lb_ops *ops = lb_algo_find(promised[i]);
        CHECK(ops != NULL);
        if (ops != NULL)
            CHECK_STR(ops->name, promised[i]);
    }
    CHECK_STR(lb_algo_default()->name, "round_robin");
    /* Only a hashing algorithm asks the proxy for a hash. */
    for (size_t i = 0; i < n; i++)
        CHECK(((lb_algo_at(i)->flags & LB_NEEDS_HASH) != 0) ==
              (strcmp(lb_algo_at(i)->name, "consistent_hash") == 0));
}

static void test_choices(void)
{
    char buf[256], tiny[8];
    lb_algo_choices(buf, sizeof(buf));
    CHECK_STR(buf, "round_robin, least_connections, p2c_ewma, consistent_hash or random");
    lb_algo_choices(tiny, sizeof(tiny));
    CHECK_STR(tiny, "round_r");
}

/* An algorithm that exists but is not registered. */
static int first_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    return lb_candidate(b, 0, ctx) ? 0 : -1;
}

static const struct lb_ops unlisted_ops = {
    .name = "unlisted",
    .doc = "always the first target",
    .pick = first_pick,
};

static void test_missing_from_registry(void)
{
    CHECK(lb_algo_find(unlisted_ops.name) == NULL);
    for (size_t i = 0; i < lb_algo_count(); i++)
        CHECK(lb_algo_at(i) != &unlisted_ops);
    CHECK(lb_algo_find(NULL) == NULL);
    CHECK(lb_algo_find("") == NULL);
    CHECK(lb_algo_find("Round_Robin") == NULL); /* names are exact */
    CHECK(lb_algo_find("round_robin ") == NULL);

    /* A service cannot be configured with it; the message lists what can. */
    json_t *svc = json_pack("{s:s,s:[{s:s}],s:s}", "name", "a", "targets", "address", "h:80",
                            "balancer", unlisted_ops.name);
    struct lb_service_spec s;
    struct gv_schema_error err;
    memset(&s, 0, sizeof(s));
    CHECK_INT(gv_schema_parse(&lb_service_schema, svc, &s, "services[0]", &err, NULL), GV_EINVAL);
    CHECK_STR(err.path, "services[0].balancer");
    CHECK(strncmp(err.msg, "unknown balancer \"unlisted\" (", 29) == 0);
    for (size_t i = 0; i < lb_algo_count(); i++)
        CHECK(strstr(err.msg, lb_algo_at(i)->name) != NULL);
    lb_service_spec_free(&s);
    /* Every registered one can. */
    for (size_t i = 0; i < lb_algo_count(); i++) {
        json_object_set_new(svc, "balancer", json_string(lb_algo_at(i)->name));
        memset(&s, 0, sizeof(s));
        CHECK_INT(gv_schema_parse(&lb_service_schema, svc, &s, "services[0]", &err, NULL), 0);
        CHECK(s.algo == lb_algo_at(i));
        lb_service_spec_free(&s);
    }
    json_decref(svc);
}

TEST_MAIN(TEST(test_every_algorithm_found_by_name), TEST(test_choices),
          TEST(test_missing_from_registry))
