/* service.h - upstream services: their specification (from config) and the
 * run-time state of their targets that all workers share.
 *
 * Threads: an lb_service_spec is immutable once built and may be read from any
 * thread. lb_target_state fields are atomics written by workers (passive
 * failures, in-flight counts, latency) and by the health checker (active
 * health); readers never lock. The registry that hands out target states is
 * locked, but is only used when a config snapshot is built, never per request.
 */
#ifndef GV_BALANCER_SERVICE_H
#define GV_BALANCER_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lb_ops; /* a balancing algorithm (balancer/lb.h) */

enum lb_hash_on {
    LB_HASH_IP,
    LB_HASH_PATH,
    LB_HASH_HEADER, /* hash_key names the header */
    LB_HASH_COOKIE, /* hash_key names the cookie */
};

struct lb_target_spec {
    char *address;  /* as written: "10.0.0.5:9001" or "users-2:9001" */
    char host[256]; /* split from address */
    uint16_t port;
    int weight; /* >= 1; 0 is rejected by the config loader */
    /* Set on the targets a snapshot serves (balancer/expand.h) that stand
     * for one address of a target named by host name: address is then that
     * address ("10.0.0.7:9001"), host:port the name as written. */
    bool from_name;
};

struct lb_health_spec {
    bool enabled;
    char *path; /* e.g. "/healthz" */
    uint64_t interval_ms;
    uint64_t timeout_ms;
    int healthy;   /* consecutive successes to become healthy */
    int unhealthy; /* consecutive failures to become unhealthy */
};

struct lb_passive_spec {
    int failures; /* consecutive failures that eject a target; 0 = off */
    uint64_t eject_for_ms;
};

struct lb_sticky_spec {
    bool enabled;
    char *cookie;
    uint64_t ttl_ms;
};

/* Upstream TLS (gateway/tls_upstream.c builds the OpenSSL context). */
struct lb_tls_spec {
    bool enabled;
    bool verify;       /* peer chain and host name; on by default */
    char *ca_file;     /* PEM bundle to verify against; NULL: the system store */
    char *server_name; /* SNI and the name checked; NULL: each target's host */
};

/* What the targets speak: HTTP/1.1, HTTP/2 without TLS (h2c, streams
 * multiplexed over a few connections per target), or gRPC (h2c, with the
 * gateway's own errors as gRPC statuses). */
enum lb_protocol { LB_PROTO_HTTP1, LB_PROTO_HTTP2, LB_PROTO_GRPC };

struct lb_timeouts {
    uint64_t connect_ms;
    uint64_t read_ms;
    uint64_t write_ms;
};

struct lb_service_spec {
    char *name;
    struct lb_target_spec *targets;
    size_t ntargets;
    const struct lb_ops *algo; /* from the registry (balancer/lb.h), never NULL once parsed */
    enum lb_hash_on hash_on;
    char *hash_key; /* header or cookie name, else NULL */
    struct lb_health_spec health;
    struct lb_passive_spec passive;
    struct lb_sticky_spec sticky;
    int retries;
    enum lb_protocol protocol;
    struct lb_timeouts timeouts;
    struct lb_tls_spec tls;
    uint64_t resolve_every_ms; /* host names of targets are looked up again this often */
};

/* Defaults that a spec carries even while the feature is off, so that turning
 * it on only needs `enabled = true`. */
#define LB_DEFAULT_HEALTH_PATH   "/healthz"
#define LB_DEFAULT_STICKY_COOKIE "GV_STICKY"

/* The config of a service (service_schema.c): parsing JSON into a spec
 * with the path of any refused value, its canonical JSON, its defaults, its
 * docs. Use it with common/schema.h's gv_schema_* functions. */
struct gv_schema;
extern const struct gv_schema lb_service_schema;

/* Fills a spec with the documented defaults, from lb_service_schema: the
 * registry's default algorithm, hash_on ip, no health check, passive 5
 * failures / 30 s, retries 2, timeouts 1s/30s/30s, host names looked up
 * again every 5s; for when they are turned on, health checks GET /healthz
 * every 2s with timeout 1s, healthy 2, unhealthy 3, sticky cookie GV_STICKY
 * for 1h, TLS with verify. The whole struct is overwritten (call it on
 * uninitialised memory). Returns 0 or GV_ENOMEM (the default path or cookie
 * could not be copied; free the spec). Every consumer in balancer/ reads a
 * NULL path or cookie as the default. */
int lb_service_spec_defaults(struct lb_service_spec *s);
/* Frees what the spec owns (not the spec itself). */
void lb_service_spec_free(struct lb_service_spec *s);
/* Deep copy; returns 0 or GV_ENOMEM (dst untouched on failure). */
int lb_service_spec_copy(struct lb_service_spec *dst, const struct lb_service_spec *src);

/* Why a target is (not) taking traffic, as shown by GET /backends. */
enum lb_reason {
    LB_REASON_NONE = 0,     /* healthy */
    LB_REASON_HEALTH_CHECK, /* failed active checks */
    LB_REASON_PASSIVE,      /* ejected after consecutive request failures */
    LB_REASON_UNCHECKED,    /* health checks configured, no verdict yet */
};
const char *lb_reason_name(enum lb_reason r);

/* Shared run-time state of one target of one service. */
struct lb_target_state {
    _Atomic int active_healthy;         /* 1 unless active checks say otherwise */
    _Atomic int reason;                 /* enum lb_reason */
    _Atomic uint64_t ejected_until_ms;  /* passive ejection deadline (gv_now_ms) */
    _Atomic int consecutive_failures;   /* passive */
    _Atomic int64_t inflight;           /* requests in flight, all workers */
    _Atomic uint64_t ewma_us;           /* latency EWMA in microseconds */
    _Atomic uint64_t last_check_ms;     /* active health: last verdict time */
    _Atomic uint64_t connect_failed_ms; /* last failed connect (gv_now_ms), 0: none */
    int check_successes;                /* health checker thread only */
    int check_failures;                 /* health checker thread only */
    /* Health checker thread only: this node's own verdict, which can differ
     * from active_healthy (the verdict routed on) when the health plane
     * combines several checkers' verdicts (node/health_share.c). */
    bool own_down;
};

/* True when the target may take a new request now. */
bool lb_target_available(const struct lb_target_state *st, uint64_t now_ms);

/* The reason to show for a target now (GET /backends): health_check while
 * active checks hold it down, else passive while ejected, else unchecked
 * while checks have not given their first verdict, else none. The stored
 * `reason` field alone can be stale (an ejection that has run out). */
enum lb_reason lb_target_reason(const struct lb_target_state *st, uint64_t now_ms);

/* Records the outcome of one proxied request (passive health + latency).
 * ok=false counts toward ejection per the spec; ok=true resets the count.
 * Returns true when this report ejected the target (exactly one of
 * concurrent reports does), so the caller can say so once.
 * Latency feeds the EWMA (alpha 0.3, the first sample seeds it) that
 * latency-aware algorithms read; latency_us == 0 means "not measured" and
 * leaves the EWMA alone. A failure never lowers the EWMA (a fast "connection
 * refused" must not make a target look attractive), it only raises it when
 * slower than the average.
 * Safe from any thread. */
bool lb_target_report(struct lb_target_state *st, const struct lb_passive_spec *passive, bool ok,
                      uint64_t latency_us, uint64_t now_ms);

/* A connect to the target failed (refused, unreachable, timed out): its
 * host name, if it has one, is looked up again soon (whoever follows names
 * reads connect_failed_ms).
 * Safe from any thread. */
void lb_target_connect_failed(struct lb_target_state *st, uint64_t now_ms);

/* The registry owns target states by (service name, target address), so that
 * health and ejection survive a config change that keeps the target (and a
 * new lookup of a name that keeps the address). */
struct lb_registry;
int lb_registry_new(struct lb_registry **out);
void lb_registry_free(struct lb_registry *r);
/* Returns the state for (service, address), creating it when new, and holds
 * it once more. NULL only on allocation failure. Thread-safe. The pointer
 * stays valid until its last hold is put (lb_registry_put), or until
 * lb_registry_free() for a caller that never puts.
 *
 * initially_unchecked says the service has active health checks. Such a
 * target starts usable (active_healthy = 1) with reason "unchecked" until the
 * checker's first verdict, as HAProxy's default init-state and Envoy's
 * "unchecked" hosts do: a config change that adds a target, or a node that
 * restarts, must not answer 503 for a whole check interval. The first probe
 * then decides at once (one failure marks it down); after that the
 * healthy/unhealthy thresholds apply.
 *
 * For an existing state: with initially_unchecked, a target never checked
 * before shows "unchecked"; without it (checks turned off) any verdict of
 * the active checker is dropped and the target is usable again. */
struct lb_target_state *lb_registry_get(struct lb_registry *r, const char *service,
                                        const char *address, bool initially_unchecked);
/* Lets go of one hold of st (NULL is fine). With the last one the state is
 * freed and forgotten (a target that comes back starts afresh): a target
 * that left the config, or an address a name no longer has, does not stay in
 * memory once no snapshot holds it, however many addresses a name goes
 * through. Thread-safe; st must come from lb_registry_get on r. */
void lb_registry_put(struct lb_registry *r, struct lb_target_state *st);

#endif
