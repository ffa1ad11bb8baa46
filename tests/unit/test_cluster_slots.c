/* test_cluster_slots.c - the Redis Cluster slot arithmetic and the redirect
 * parsing of redis_cluster.c (no server): a key's slot with and without a
 * hash tag (checked against values Redis documents), the slot of every key
 * of a queue being the slot of its 4-character tag, MOVED/ASK parsing and the
 * REDIS_CLUSTER seed list. */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/job.h"
#include "keys.h"
#include "redis_raw.h"

static unsigned
slot(const char *key)
{
    return jm__cluster_key_slot(key, strlen(key));
}

Test(cluster_slots, crc16_and_documented_slots)
{
    cr_assert_eq(jm__cluster_crc16("123456789", 9), 0x31c3); /* CRC16-XMODEM check value */
    cr_assert_eq(slot("foo"), 12182);                        /* CLUSTER KEYSLOT foo */
    cr_assert_eq(slot("bar"), 5061);
    cr_assert_eq(slot("{user1000}.following"), slot("user1000"));
    cr_assert_eq(slot("{user1000}.followers"), slot("user1000"));
    cr_assert_eq(slot("foo{}{bar}"), jm__cluster_crc16("foo{}{bar}", 10) % 16384); /* empty tag */
    cr_assert_eq(slot("foo{{bar}}zap"), slot("{bar"));
    cr_assert_eq(slot("foo{bar}{zap}"), slot("bar"));
    cr_assert_eq(slot("no-close{tag"), jm__cluster_crc16("no-close{tag", 12) % 16384);
}

Test(cluster_slots, every_key_of_a_queue_is_in_the_slot_of_its_tag)
{
    jm_error err;
    jm_redis *r = jm_redis_new("redis://127.0.0.1:1/0", "jm", 100, &err);
    cr_assert_not_null(r);
    const char *queues[] = {"default", "cq03", "emails.high", "a"};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        char tag[JM_TAG_LEN + 1], id[JM_ID_LEN + 1];
        jm_slot_tag(queues[i], tag);
        cr_assert_eq(jm_id_new(queues[i], id, &err), JM_OK);
        jm_keybuf sp, jk, pk, ik;
        jm_key_queue_slot(sp, r, queues[i]);
        jm_key_job(jk, r, id);
        jm_key_queue(pk, r, queues[i], "pending");
        jm_key_queue(ik, r, queues[i], "idem:k");
        unsigned want = jm__cluster_crc16(tag, JM_TAG_LEN) % 16384;
        cr_assert_eq(slot(sp), want, "%s", sp);
        cr_assert_eq(slot(jk), want, "%s", jk);
        cr_assert_eq(slot(pk), want, "%s", pk);
        cr_assert_eq(slot(ik), want, "%s", ik);
    }
    /* the registry's keys share one slot of their own */
    jm_keybuf a, b, c;
    jm_key_queues(a, r);
    jm_key_workers(b, r);
    jm_key_worker(c, r, "w-1");
    cr_assert_eq(slot(a), slot("registry"));
    cr_assert_eq(slot(b), slot("registry"));
    cr_assert_eq(slot(c), slot("registry"));
    jm_redis_free(r);
}

Test(cluster_slots, moved_and_ask)
{
    jm_error err;
    cr_assert_eq(jm_redis_set_cluster("127.0.0.1:7000", &err), JM_OK);
    bool ask = true;
    unsigned s = 0;
    int idx = jm__cluster_moved("MOVED 3999 127.0.0.1:6381", &ask, &s);
    cr_assert_geq(idx, 0);
    cr_assert_not(ask);
    cr_assert_eq(s, 3999);
    char host[256];
    int port = 0;
    cr_assert_eq(jm__cluster_node_addr(idx, host, &port), JM_OK);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 6381);
    /* the same node keeps its index; ASK names a node without moving the slot */
    cr_assert_eq(jm__cluster_moved("MOVED 1 127.0.0.1:6381", &ask, &s), idx);
    int other = jm__cluster_moved("ASK 12 10.0.0.1:7002", &ask, &s);
    cr_assert(ask);
    cr_assert_eq(s, 12);
    cr_assert_neq(other, idx);
    cr_assert_eq(jm__cluster_moved("ERR something", &ask, &s), -1);
    cr_assert_eq(jm__cluster_moved("MOVED x 127.0.0.1:1", &ask, &s), -1);
    cr_assert_eq(jm__cluster_moved("MOVED 16384 127.0.0.1:1", &ask, &s), -1);
    cr_assert_eq(jm__cluster_moved("MOVED 5 127.0.0.1:0", &ask, &s), -1);
    cr_assert_eq(jm__cluster_moved("MOVED 5 nocolon", &ask, &s), -1);
    cr_assert_eq(jm_redis_set_cluster(NULL, &err), JM_OK);
    cr_assert_not(jm__redis_cluster_enabled());
}

Test(cluster_slots, seed_lists)
{
    jm_error err;
    const char *good[] = {"a:1", "127.0.0.1:7000,127.0.0.1:7001", "host.example:6379,b:2,c:3"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(jm_redis_set_cluster(good[i], &err), JM_OK, "%s", good[i]);
        cr_assert(jm__redis_cluster_enabled());
    }
    const char *bad[] = {"host", ":6379", "h:0", "h:70000", "h:12x", "a:1,,b:2", "a:1,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(jm_redis_set_cluster(bad[i], &err), JM_ERR_INVALID, "%s", bad[i]);
        cr_assert_str_eq(err.field, "redis.cluster");
    }
    cr_assert_eq(jm_redis_set_cluster("", &err), JM_OK);
    cr_assert_not(jm__redis_cluster_enabled());
}
