/* snapshot.c - publishing config generations to workers. */
#include "gateway/snapshot.h"

void gw_snapshot_slot_init(struct gw_snapshot_slot *slot)
{
    pthread_mutex_init(&slot->lock, NULL);
    slot->current = NULL;
    atomic_store(&slot->generation, 0);
}

void gw_snapshot_slot_fini(struct gw_snapshot_slot *slot)
{
    gw_snapshot_unref(slot->current);
    slot->current = NULL;
    pthread_mutex_destroy(&slot->lock);
}

void gw_snapshot_publish(struct gw_snapshot_slot *slot, struct gw_snapshot *s)
{
    pthread_mutex_lock(&slot->lock);
    struct gw_snapshot *old = slot->current;
    s->generation = atomic_load(&slot->generation) + 1;
    slot->current = s;
    atomic_store_explicit(&slot->generation, s->generation, memory_order_release);
    pthread_mutex_unlock(&slot->lock);
    gw_snapshot_unref(old);
}

struct gw_snapshot *gw_snapshot_acquire(struct gw_snapshot_slot *slot)
{
    pthread_mutex_lock(&slot->lock);
    struct gw_snapshot *s = slot->current;
    if (s != NULL)
        gw_snapshot_ref(s);
    pthread_mutex_unlock(&slot->lock);
    return s;
}
