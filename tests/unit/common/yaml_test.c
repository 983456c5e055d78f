/* yaml_test.c - the YAML loader: how scalars are typed, what is refused
 * (with FILE:LINE), and the line of nested paths and of their parents. */
#include "common/err.h"
#include "common/yaml.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static int load(struct gv_yaml *y, const char *text, char *err, size_t errlen)
{
    return gv_yaml_load(y, "f.yaml", text, strlen(text), err, errlen);
}

/* The compact JSON of what text loads to ("" on error, "null" for none). */
static void json_of(const char *text, char *out, size_t n)
{
    struct gv_yaml y;
    char err[512];
    out[0] = '\0';
    if (load(&y, text, err, sizeof(err)) != 0) {
        fprintf(stderr, "unexpected error: %s\n", err);
        return;
    }
    char *d = y.root ? json_dumps(y.root, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(out, n, "%s", d ? d : "null");
    free(d);
    gv_yaml_free(&y);
}

static void test_scalars(void)
{
    static const struct {
        const char *yaml, *json;
    } cases[] = {
        /* quoted is always a string; plain is typed */
        {"a: '1'\nb: \"true\"\nc: 'null'\nd: !!str 2\n",
         "{\"a\":\"1\",\"b\":\"true\",\"c\":\"null\",\"d\":\"2\"}"},
        {"a: 1\nb: -7\nc: +3\nd: 0\n", "{\"a\":1,\"b\":-7,\"c\":3,\"d\":0}"},
        {"a: 1.5\nb: -2e3\nc: .5\n", "{\"a\":1.5,\"b\":-2000.0,\"c\":0.5}"},
        {"a:\nb: ~\nc: null\nd: NULL\ne: Null\n",
         "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null}"},
        {"a: true\nb: False\nc: TRUE\n", "{\"a\":true,\"b\":false,\"c\":true}"},
        /* YAML 1.1 words and other notations stay strings */
        {"a: yes\nb: on\nc: 0x10\nd: 1_000\ne: .inf\nf: 1.2.3\n",
         "{\"a\":\"yes\",\"b\":\"on\",\"c\":\"0x10\",\"d\":\"1_000\",\"e\":\".inf\","
         "\"f\":\"1.2.3\"}"},
        /* an integer out of range stays text, for a checker to refuse */
        {"a: 99999999999999999999\n", "{\"a\":\"99999999999999999999\"}"},
        {"a: [x, 'y', 2]\n", "{\"a\":[\"x\",\"y\",2]}"},
        /* anchors, aliases and merge keys */
        {"a: &x {p: 1}\nb: *x\nc:\n  <<: *x\n  q: 2\n",
         "{\"a\":{\"p\":1},\"b\":{\"p\":1},\"c\":{\"p\":1,\"q\":2}}"},
        /* JSON is YAML, tabs and escapes included */
        {"{\n\t\"k\": \"caf\\u00e9\",\n\t\"n\": [1, 2.5, null, false]\n}",
         "{\"k\":\"caf\xc3\xa9\",\"n\":[1,2.5,null,false]}"},
        /* no document at all */
        {"", "null"},
        {"# only a comment\n", "null"},
        {"---\n", "null"},
        {"- 1\n- two\n", "[1,\"two\"]"},
    };
    char got[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_of(cases[i].yaml, got, sizeof(got));
        CHECK_STR(got, cases[i].json);
    }
}

static void test_refused(void)
{
    static const struct {
        const char *yaml, *err;
    } cases[] = {
        {"a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml:4: duplicate key"},
        {"a: {b: 1, b: 2}\n", "f.yaml:1: duplicate key"},
        {"a: 1\n---\nb: 2\n", "f.yaml:3: only one YAML document is allowed"},
        {"a: 1\nb: \xc3\x28\n", "f.yaml:2: invalid UTF-8"},
        {"a: 1\n\nb: \xed\xa0\x80\n", "f.yaml:3: invalid UTF-8"}, /* a surrogate */
        {"a: \xc0\xaf\n", "f.yaml:1: invalid UTF-8"},             /* overlong */
        {"a: 1\nb: x\0y\n", "f.yaml:2: NUL byte in the file"},
        {"a: [1, 2\n", "f.yaml:2: flow sequence without a closing bracket"},
        {"a: *nope\n", "f.yaml:1: invalid alias"},
        {"? [a]\n: 1\n", "f.yaml:1: keys must be non-empty plain strings"},
        {"'': 1\n", "f.yaml:1: keys must be non-empty plain strings"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gv_yaml y;
        char err[512];
        /* sizeof - 1: the NUL case carries its own NUL */
        size_t len = strlen(cases[i].yaml);
        if (i == 6)
            len = sizeof("a: 1\nb: x\0y\n") - 1;
        int rc = gv_yaml_load(&y, "f.yaml", cases[i].yaml, len, err, sizeof(err));
        CHECK_INT(rc, GV_EINVAL);
        if (rc == 0) {
            gv_yaml_free(&y);
            continue;
        }
        CHECK_STR(err, cases[i].err);
        CHECK(y.root == NULL && y.nlines == 0);
        gv_yaml_free(&y); /* harmless after an error */
    }
}

static void test_lines(void)
{
    const char *text = "node:\n"                  /* 1 */
                       "  name: a\n"              /* 2 */
                       "services:\n"              /* 3 */
                       "  - name: users\n"        /* 4 */
                       "    targets:\n"           /* 5 */
                       "      - address: h:1\n"   /* 6 */
                       "      - {address: h:2,\n" /* 7 */
                       "         weight: 3}\n"    /* 8 */
                       "  # a comment\n"          /* 9 */
                       "  - name: other\n"        /* 10 */
                       "    tags: [a,\n"          /* 11 */
                       "           b]\n";         /* 12 */
    struct gv_yaml y;
    char err[512];
    int rc = load(&y, text, err, sizeof(err));
    CHECK_INT(rc, 0);
    if (rc != 0)
        return;
    CHECK_INT(gv_yaml_line(&y, ""), 1);
    CHECK_INT(gv_yaml_line(&y, "node.name"), 2);
    CHECK_INT(gv_yaml_line(&y, "services"), 3);
    CHECK_INT(gv_yaml_line(&y, "services[0]"), 4);
    CHECK_INT(gv_yaml_line(&y, "services[0].targets[0].address"), 6);
    CHECK_INT(gv_yaml_line(&y, "services[0].targets[1]"), 7);
    CHECK_INT(gv_yaml_line(&y, "services[0].targets[1].weight"), 8);
    CHECK_INT(gv_yaml_line(&y, "services[1].name"), 10);
    CHECK_INT(gv_yaml_line(&y, "services[1].tags[1]"), 12);
    /* a path the file does not have: its nearest parent's line */
    CHECK_INT(gv_yaml_line(&y, "services[0].targets[1].weight.x"), 8);
    CHECK_INT(gv_yaml_line(&y, "services[0].health_check.interval"), 4);
    CHECK_INT(gv_yaml_line(&y, "services[1].tags[7]"), 11);
    CHECK_INT(gv_yaml_line(&y, "routes[0]"), 1);

    char msg[128];
    CHECK_INT(gv_yaml_fail(&y, msg, sizeof(msg), "services[0].targets[1].weight",
                           "services[0].targets[1]", "too %s", "heavy"),
              GV_EINVAL);
    CHECK_STR(msg, "f.yaml:8: services[0].targets[1]: too heavy");
    gv_yaml_fail(&y, msg, sizeof(msg), "", "", "top");
    CHECK_STR(msg, "f.yaml:1: top");
    gv_yaml_message(msg, 12, "long-name.yaml", 3, "p", "m");
    CHECK_STR(msg, "long-name.y");
    gv_yaml_free(&y);
}

static void test_files(void)
{
    struct gv_yaml y;
    char err[512];
    CHECK_INT(gv_yaml_load_file(&y, "/nonexistent/f.yaml", err, sizeof(err)), GV_ENOENT);
    CHECK_STR(err, "/nonexistent/f.yaml: cannot read: No such file or directory");

    char path[] = "/tmp/gv_yaml_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char text[] = "a:\n  b: [1, x]\n  c: {d: 1, d: 2}\n";
    CHECK_INT(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
    close(fd);
    char want[256];
    snprintf(want, sizeof(want), "%s:3: duplicate key", path);
    CHECK_INT(gv_yaml_load_file(&y, path, err, sizeof(err)), GV_EINVAL);
    CHECK_STR(err, want);

    /* "-" reads standard input and is called <stdin> */
    int saved = dup(STDIN_FILENO);
    int in = open(path, O_RDONLY);
    CHECK(saved >= 0 && in >= 0);
    dup2(in, STDIN_FILENO);
    close(in);
    CHECK_INT(gv_yaml_load_file(&y, "-", err, sizeof(err)), GV_EINVAL);
    CHECK_STR(err, "<stdin>:3: duplicate key");
    dup2(saved, STDIN_FILENO);
    close(saved);
    unlink(path);
}

/* gv_yaml_dump writes block YAML that loads back as the same JSON, strings
 * that YAML would read as something else quoted. */
static void test_dump_round_trip(void)
{
    static const char *docs[] = {
        "{\"a\": [1, 2.5, true, null, \"yes\", \"no\", \"1.0\", \"-x\", \"\", \"a: b\"], "
        "\"b\": {\"c\": {}, \"d\": [], \"e\": [{\"f\": \"x y\", \"g\": [[1], {\"h\": "
        "\"#\"}]}]}, \"k:ey\": \"line\\nbreak\", \"~\": \"~\", \"0x1\": \"inf\"}",
        "[]",
        "\"plain\"",
        "[{\"name\": \"all\", \"upgrades\": [\"websocket\"]}, [\"nested\", [true]]]",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_error_t e;
        json_t *j = json_loads(docs[i], JSON_DECODE_ANY, &e);
        struct gv_buf b;
        struct gv_yaml y;
        char err[256];
        CHECK(j != NULL);
        gv_buf_init(&b);
        CHECK_INT(gv_yaml_dump(j, &b), 0);
        CHECK_INT(gv_yaml_load(&y, "dump", b.data, b.len, err, sizeof(err)), 0);
        CHECK(y.root != NULL && json_equal(y.root, j));
        if (y.root == NULL || !json_equal(y.root, j))
            fprintf(stderr, "dumped as:\n%.*s\n", (int)b.len, b.data);
        gv_yaml_free(&y);
        gv_buf_free(&b);
        json_decref(j);
    }
}

TEST_MAIN(TEST(test_scalars), TEST(test_refused), TEST(test_lines), TEST(test_files),
          TEST(test_dump_round_trip))
