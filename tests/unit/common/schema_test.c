/* schema_test.c - declarative schemas: parse with paths, defaults, canonical
 * dump, refusals (types, ranges, unknown keys, control characters), docs. */
#include "common/err.h"
#include "common/schema.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

struct target {
    char *address;
    int weight;
};

struct check {
    char *path;
    uint64_t interval_ms;
    uint64_t timeout_ms;
};

struct svc {
    char *name;
    struct target *targets;
    size_t ntargets;
    int hash_on;
    char *hash_key;
    bool has_check;
    struct check check;
    char **hosts;
    size_t nhosts;
    struct gv_pair *headers;
    size_t nheaders;
    uint64_t max_bytes;
    bool flag;
    char *pem;
};

static const struct gv_field target_fields[] = {
    GV_FIELD_STR("address", struct target, address, .flags = GV_F_REQUIRED,
                 .rule = &gv_rule_hostport),
    GV_FIELD_INT("weight", struct target, weight, 1, 10000, .def.i = 1),
};
static const struct gv_schema target_schema = GV_SCHEMA("target", struct target, target_fields);

static int check_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    struct check *c = obj;
    (void)ctx;
    if (c->timeout_ms > c->interval_ms)
        return gv_schema_fail_key(err, path, "timeout", "must not exceed the interval");
    return 0;
}

static const struct gv_field check_fields[] = {
    GV_FIELD_STR("path", struct check, path, .def.s = "/healthz", .rule = &gv_rule_path),
    GV_FIELD_DURATION("interval", struct check, interval_ms, 1, 0, .def.i = 2000),
    GV_FIELD_DURATION("timeout", struct check, timeout_ms, 1, 0, .def.i = 1000),
};
static const struct gv_schema check_schema =
    GV_SCHEMA("health_check", struct check, check_fields, .check = check_check);

static const char *const hash_names[] = {"ip", "path", "header:", NULL};

static const struct gv_field svc_fields[] = {
    GV_FIELD_STR("name", struct svc, name, .flags = GV_F_REQUIRED, .rule = &gv_rule_name),
    GV_FIELD_OBJS("targets", struct svc, targets, ntargets, &target_schema,
                  .flags = GV_F_REQUIRED | GV_F_NONEMPTY),
    GV_FIELD_KEYED_ENUM("hash_on", struct svc, hash_on, hash_key, hash_names),
    GV_FIELD_OPT_OBJ("health_check", struct svc, check, has_check, &check_schema),
    GV_FIELD_STRS("hosts", struct svc, hosts, nhosts, .flags = GV_F_LOWER | GV_F_UNIQUE),
    GV_FIELD_PAIRS("headers", struct svc, headers, nheaders, .rule = &gv_rule_token),
    GV_FIELD_INT("max_bytes", struct svc, max_bytes, 1, INT64_MAX, .def.i = 1024),
    GV_FIELD_BOOL("flag", struct svc, flag, .def.b = true),
    GV_FIELD_STR("pem", struct svc, pem, .flags = GV_F_MULTILINE),
};
static const struct gv_schema svc_schema = GV_SCHEMA("service", struct svc, svc_fields);

/* Parses text; returns the code and leaves err filled. */
static int parse(const char *text, struct svc *s, struct gv_schema_error *err)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    CHECK(j != NULL);
    memset(s, 0, sizeof(*s));
    memset(err, 0, sizeof(*err));
    int rv = gv_schema_parse(&svc_schema, j, s, "services[0]", err, NULL);
    json_decref(j);
    return rv;
}

static void test_parse_and_defaults(void)
{
    struct svc s;
    struct gv_schema_error err;
    CHECK_INT(parse("{\"name\":\"users\",\"targets\":[{\"address\":\"a:1\"},"
                    "{\"address\":\"[::1]:2\",\"weight\":3}],\"hash_on\":\"header:X-User\","
                    "\"hosts\":[\"API.Example.com\"],\"headers\":{\"X-Version\":2},"
                    "\"health_check\":{\"interval\":\"5s\"},\"pem\":\"a\\nb\"}",
                    &s, &err),
              0);
    CHECK_STR(s.name, "users");
    CHECK_INT(s.ntargets, 2);
    CHECK_STR(s.targets[0].address, "a:1");
    CHECK_INT(s.targets[0].weight, 1);
    CHECK_INT(s.targets[1].weight, 3);
    CHECK_INT(s.hash_on, 2);
    CHECK_STR(s.hash_key, "X-User");
    CHECK(s.has_check);
    CHECK_STR(s.check.path, "/healthz");
    CHECK_INT(s.check.interval_ms, 5000);
    CHECK_INT(s.check.timeout_ms, 1000);
    CHECK_STR(s.hosts[0], "api.example.com");
    CHECK_STR(s.headers[0].name, "X-Version");
    CHECK_STR(s.headers[0].value, "2");
    CHECK_INT(s.max_bytes, 1024);
    CHECK(s.flag);
    CHECK_STR(s.pem, "a\nb");
    json_t *d = gv_schema_dump(&svc_schema, &s);
    char *text = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(text,
              "{\"flag\":true,\"hash_on\":\"header:X-User\",\"headers\":{\"X-Version\":\"2\"},"
              "\"health_check\":{\"interval\":\"5s\",\"path\":\"/healthz\",\"timeout\":\"1s\"},"
              "\"hosts\":[\"api.example.com\"],\"max_bytes\":1024,\"name\":\"users\","
              "\"pem\":\"a\\nb\",\"targets\":[{\"address\":\"a:1\",\"weight\":1},"
              "{\"address\":\"[::1]:2\",\"weight\":3}]}");
    free(text);
    /* the dump parses back to the same dump */
    struct svc s2;
    memset(&s2, 0, sizeof(s2));
    CHECK_INT(gv_schema_parse(&svc_schema, d, &s2, "", &err, NULL), 0);
    json_t *d2 = gv_schema_dump(&svc_schema, &s2);
    CHECK(json_equal(d, d2));
    json_decref(d);
    json_decref(d2);
    gv_schema_free(&svc_schema, &s);
    gv_schema_free(&svc_schema, &s2);
    CHECK(s.name == NULL && s.targets == NULL);
}

static void test_optional_object_left_out(void)
{
    struct svc s;
    struct gv_schema_error err;
    CHECK_INT(parse("{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}]}", &s, &err), 0);
    CHECK(!s.has_check);
    json_t *d = gv_schema_dump(&svc_schema, &s);
    CHECK(json_object_get(d, "health_check") == NULL);
    CHECK(json_object_get(d, "pem") == NULL);
    CHECK_INT(json_array_size(json_object_get(d, "hosts")), 0);
    CHECK_STR(json_string_value(json_object_get(d, "hash_on")), "ip");
    json_decref(d);
    gv_schema_free(&svc_schema, &s);
}

static const struct {
    const char *body, *path, *where, *msg;
} refusals[] = {
    {"{\"targets\":[{\"address\":\"a:1\"}]}", "services[0]", "services[0]", "missing \"name\""},
    {"{\"name\":\"a\",\"targets\":[]}", "services[0].targets", "services[0].targets",
     "must be a non-empty list of {address, weight}"},
    {"{\"name\":\"a\",\"targets\":{}}", "services[0].targets", "services[0].targets",
     "must be a non-empty list of {address, weight}"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"retires\":2}", "services[0]",
     "services[0].retires", "unknown key \"retires\""},
    {"{\"name\":\"a b\",\"targets\":[{\"address\":\"a:1\"}]}", "services[0].name",
     "services[0].name", "bad name \"a b\" (use letters, digits, \"_\", \".\", \"-\")"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a\"}]}", "services[0].targets[0].address",
     "services[0].targets[0].address", "bad address \"a\" (want HOST:PORT)"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\",\"weight\":0}]}",
     "services[0].targets[0].weight", "services[0].targets[0].weight",
     "must be an integer from 1 to 10000"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"hash_on\":\"cookie:x\"}",
     "services[0].hash_on", "services[0].hash_on",
     "bad hash_on \"cookie:x\" (ip, path or header:NAME)"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"health_check\":{\"timeout\":\"3s\"}}",
     "services[0].health_check", "services[0].health_check.timeout",
     "must not exceed the interval"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"health_check\":{\"interval\":"
     "99999999999}}",
     "services[0].health_check.interval", "services[0].health_check.interval",
     "must be at most 8760h"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"health_check\":{\"interval\":\"2x\"}}",
     "services[0].health_check.interval", "services[0].health_check.interval",
     "bad duration \"2x\" (use e.g. 250ms, 2s, 1m)"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"headers\":{\"X-A\":\"v\\r\\nSet-Cookie:"
     " "
     "x\"}}",
     "services[0].headers.X-A", "services[0].headers.X-A",
     "must not contain control characters (CR, LF, ...)"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"headers\":{\"X A\":\"v\"}}",
     "services[0].headers.X A", "services[0].headers.X A", "bad header name \"X A\""},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"hosts\":[\"a\",\"A\"]}",
     "services[0].hosts[1]", "services[0].hosts[1]", "\"a\" is listed twice"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"flag\":1}", "services[0].flag",
     "services[0].flag", "must be true or false"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"a:1\"}],\"max_bytes\":0}",
     "services[0].max_bytes", "services[0].max_bytes", "must be an integer of at least 1"},
    {"{\"name\":\"a\\u0000b\",\"targets\":[{\"address\":\"a:1\"}]}", "services[0].name",
     "services[0].name", "must not contain NUL bytes"},
    {"[]", "services[0]", "services[0]", "must be an object"},
};

static void test_refusals(void)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        struct svc s;
        struct gv_schema_error err;
        CHECK_INT(parse(refusals[i].body, &s, &err), GV_EINVAL);
        CHECK_STR(err.path, refusals[i].path);
        CHECK_STR(err.where, refusals[i].where);
        CHECK_STR(err.msg, refusals[i].msg);
        gv_schema_free(&svc_schema, &s); /* partial results are freed too (ASan) */
    }
}

static void test_docs_and_json_schema(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(gv_schema_doc(&svc_schema, "services[]", &b), 0);
    CHECK(strstr(b.data, "| `services[].targets[].weight` | integer 1..10000 | `1` |") != NULL);
    CHECK(strstr(b.data, "| `services[].health_check.interval` | duration | `2s` |") != NULL);
    CHECK(strstr(b.data, "| `services[].name` | name | required |") != NULL);
    gv_buf_free(&b);
    json_t *js = gv_schema_json_schema(&svc_schema);
    CHECK(js != NULL);
    CHECK(json_is_false(json_object_get(js, "additionalProperties")));
    CHECK_INT(json_array_size(json_object_get(js, "required")), 2);
    json_t *hash = json_object_get(json_object_get(js, "properties"), "hash_on");
    CHECK_STR(json_string_value(json_object_get(hash, "pattern")), "^(ip|path|header:.+)$");
    json_decref(js);
}

static void test_durations(void)
{
    char buf[32];
    gv_format_duration(250, buf, sizeof(buf));
    CHECK_STR(buf, "250ms");
    gv_format_duration(7200000, buf, sizeof(buf));
    CHECK_STR(buf, "2h");
    gv_format_duration(0, buf, sizeof(buf));
    CHECK_STR(buf, "0s");
    uint64_t ms = 0;
    json_t *v = json_integer(3);
    CHECK_INT(gv_json_duration(v, &ms), 0);
    CHECK_INT(ms, 3000);
    json_decref(v);
}

/* A custom type with a default of its own: a percentage written "N%". */
struct knob {
    int pct;
};

static int pct_init(const struct gv_field *f, void *member)
{
    (void)f;
    *(int *)member = 50;
    return 0;
}

static int pct_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                     struct gv_schema_error *err, void *ctx)
{
    int n = -1;
    char rest = 0;
    (void)f;
    (void)ctx;
    if (!json_is_string(v) || sscanf(json_string_value(v), "%d%%%c", &n, &rest) != 1 || n < 0 ||
        n > 100)
        return gv_schema_fail(err, path, "must be a percentage like \"20%%\"");
    *(int *)member = n;
    return 0;
}

static json_t *pct_dump(const struct gv_field *f, const void *member)
{
    char buf[16];
    (void)f;
    snprintf(buf, sizeof(buf), "%d%%", *(const int *)member);
    return json_string(buf);
}

static const struct gv_custom pct_type = {
    .type_doc = "percentage", .parse = pct_parse, .dump = pct_dump, .init = pct_init};
static const struct gv_field knob_fields[] = {
    GV_FIELD_CUSTOM("share", struct knob, pct, &pct_type, .doc = "a share"),
};
static const struct gv_schema knob_schema = GV_SCHEMA("knob", struct knob, knob_fields);

static void test_custom_default(void)
{
    struct knob k = {0};
    struct gv_schema_error err;
    json_t *in = json_object();
    CHECK_INT(gv_schema_parse(&knob_schema, in, &k, "", &err, NULL), 0);
    CHECK_INT(k.pct, 50); /* absent: the type's own default */
    json_t *d = gv_schema_dump(&knob_schema, &k);
    CHECK_STR(json_string_value(json_object_get(d, "share")), "50%");
    json_decref(d);
    json_object_set_new(in, "share", json_string("20%"));
    CHECK_INT(gv_schema_parse(&knob_schema, in, &k, "", &err, NULL), 0);
    CHECK_INT(k.pct, 20);
    json_object_set_new(in, "share", json_string("x"));
    CHECK_INT(gv_schema_parse(&knob_schema, in, &k, "knob", &err, NULL), GV_EINVAL);
    CHECK_STR(err.path, "knob.share");
    CHECK_STR(err.msg, "must be a percentage like \"20%\"");
    json_decref(in);
    memset(&k, 0, sizeof(k));
    CHECK_INT(gv_schema_defaults(&knob_schema, &k), 0);
    CHECK_INT(k.pct, 50);
}

TEST_MAIN({"parse_and_defaults", test_parse_and_defaults},
          {"optional_object_left_out", test_optional_object_left_out}, {"refusals", test_refusals},
          {"docs_and_json_schema", test_docs_and_json_schema}, {"durations", test_durations},
          {"custom_default", test_custom_default})
