/* registry.c - the balancing algorithms a service may name: the one list that
 * config parsing, its error messages and the docs read. An algorithm is its
 * file in this folder plus its line here (declaration and entry). */
#include "balancer/lb.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

extern const struct lb_ops lb_round_robin_ops;
extern const struct lb_ops lb_least_connections_ops;
extern const struct lb_ops lb_p2c_ewma_ops;
extern const struct lb_ops lb_consistent_hash_ops;
extern const struct lb_ops lb_random_ops;

/* The first is the default; the order is the one messages and docs list. */
static const struct lb_ops *const algos[] = {
    &lb_round_robin_ops, &lb_least_connections_ops, &lb_p2c_ewma_ops, &lb_consistent_hash_ops,
    &lb_random_ops,
};

const struct lb_ops *lb_algo_default(void)
{
    return algos[0];
}

const struct lb_ops *lb_algo_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < GV_ARRAY_LEN(algos); i++)
        if (strcmp(algos[i]->name, name) == 0)
            return algos[i];
    return NULL;
}

size_t lb_algo_count(void)
{
    return GV_ARRAY_LEN(algos);
}

const struct lb_ops *lb_algo_at(size_t i)
{
    return i < GV_ARRAY_LEN(algos) ? algos[i] : NULL;
}

void lb_algo_choices(char *buf, size_t n)
{
    size_t used = 0, k = GV_ARRAY_LEN(algos);
    if (n == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < k && used < n; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == k ? " or " : ", ");
        int w = snprintf(buf + used, n - used, "%s%s", sep, algos[i]->name);
        used += w > 0 ? (size_t)w : 0;
    }
}
