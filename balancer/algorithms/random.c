/* random.c - weighted random: each candidate with probability weight/total
 * (lb_pick_weighted_random, which hashing algorithms share as a fallback). */
#include "balancer/lb.h"

const struct lb_ops lb_random_ops = {
    .name = "random",
    .doc = "a random target, each with probability weight / total",
    .pick = lb_pick_weighted_random,
};
