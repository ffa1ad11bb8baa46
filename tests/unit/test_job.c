/* test_job.c - job states, ids, slot tags, submit validation and the JSON
 * forms; no Redis. */
#include <criterion/criterion.h>
#include <string.h>
#include "jobmill/job.h"

static jm_error err;

static int
parse(const char *json, jm_job_spec *spec)
{
    json_error_t je;
    json_t *body = json_loads(json, JSON_DECODE_ANY, &je);
    cr_assert_not_null(body, "bad test json %s: %s", json, je.text);
    int rc = jm_job_spec_from_json(body, "", spec, &err);
    json_decref(body);
    return rc;
}

/* Asserts json is rejected naming field. */
static void
rejects(const char *json, const char *field)
{
    jm_job_spec spec;
    cr_assert_eq(parse(json, &spec), JM_ERR_INVALID, "accepted %s", json);
    cr_assert_str_eq(err.field, field, "for %s: field %s, msg %s", json, err.field, err.msg);
    cr_assert(strstr(err.msg, field) != NULL, "message must name the field: %s", err.msg);
    jm_job_spec_clear(&spec);
}

Test(job, state_names_round_trip)
{
    for (int s = 0; s < JM_STATE_COUNT; s++)
        cr_assert_eq(jm_state_parse(jm_state_name((jm_state)s)), s);
    cr_assert_eq(jm_state_parse("bogus"), JM_STATE_UNKNOWN);
    cr_assert_eq(jm_state_parse(NULL), JM_STATE_UNKNOWN);
    cr_assert_str_eq(jm_state_name(JM_STATE_UNKNOWN), "unknown");
    cr_assert(jm_state_terminal(JM_STATE_SUCCEEDED));
    cr_assert(jm_state_terminal(JM_STATE_EXPIRED));
    cr_assert_not(jm_state_terminal(JM_STATE_RUNNING));
    cr_assert_not(jm_state_terminal(JM_STATE_SCHEDULED));
}

Test(job, queue_names)
{
    cr_assert(jm_queue_name_valid("default"));
    cr_assert(jm_queue_name_valid("a.b-c_D9"));
    char longest[65];
    memset(longest, 'x', 64);
    longest[64] = '\0';
    cr_assert(jm_queue_name_valid(longest));
    char too_long[66];
    memset(too_long, 'x', 65);
    too_long[65] = '\0';
    cr_assert_not(jm_queue_name_valid(too_long));
    cr_assert_not(jm_queue_name_valid(""));
    cr_assert_not(jm_queue_name_valid("a b"));
    cr_assert_not(jm_queue_name_valid("a:b"));
    cr_assert_not(jm_queue_name_valid("{x}"));
    cr_assert_not(jm_queue_name_valid(NULL));
}

Test(job, slot_tag_matches_redis_cluster)
{
    char tag[5];
    /* CLUSTER KEYSLOT foo = 12182 = 0x2f96; "123456789" is CRC16's check value
     * 0x31c3 -> 12739 mod 16384 = 0x31c3. */
    jm_slot_tag("foo", tag);
    cr_assert_str_eq(tag, "2f96");
    jm_slot_tag("123456789", tag);
    cr_assert_str_eq(tag, "31c3");
}

Test(job, ids_are_tagged_random_and_url_safe)
{
    char a[JM_ID_LEN + 1], b[JM_ID_LEN + 1], tag[5];
    cr_assert_eq(jm_id_new("foo", a, &err), JM_OK);
    cr_assert_eq(jm_id_new("foo", b, &err), JM_OK);
    cr_assert_eq(strlen(a), JM_ID_LEN);
    cr_assert_str_neq(a, b);
    jm_slot_tag("foo", tag);
    cr_assert_eq(strncmp(a, tag, 4), 0);
    cr_assert(jm_id_valid(a));
    for (int i = 0; i < JM_ID_LEN; i++)
        cr_assert(strchr("0123456789abcdefABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz-_", a[i]));
    cr_assert_not(jm_id_valid("short"));
    cr_assert_not(jm_id_valid("ZZZZAAAAAAAAAAAAAAAAAAAAAA"), "tag must be hex");
    cr_assert_not(jm_id_valid("0000AAAAAAAAAAAAAAAAAAAA/A"));
    cr_assert_not(jm_id_valid(NULL));
}

Test(job, spec_defaults)
{
    jm_job_spec s;
    cr_assert_eq(parse("{\"type\":\"echo\"}", &s), JM_OK, "%s", err.msg);
    cr_assert_str_eq(s.queue, "default");
    cr_assert_str_eq(s.type, "echo");
    cr_assert_str_eq(s.payload, "null");
    cr_assert_eq(s.max_attempts, 3);
    cr_assert_eq(s.timeout_s, 0);
    cr_assert_eq(s.delay_ms, 0);
    cr_assert_eq(s.run_at_ms, 0);
    cr_assert_eq(s.expires_in_ms, 0);
    cr_assert_null(s.idem_key);
    jm_job_spec_clear(&s);
}

Test(job, spec_every_field)
{
    jm_job_spec s;
    cr_assert_eq(parse("{\"queue\":\"q.1\",\"type\":\"resize\",\"payload\":{\"b\":[1,2.5,\"x\"]},"
                       "\"max_attempts\":7,\"timeout_s\":30,\"delay_s\":1.5,\"expires_in_s\":60,"
                       "\"result_ttl_s\":10,\"idempotency_key\":\"abc\",\"unknown\":1}",
                       &s),
                 JM_OK, "%s", err.msg);
    cr_assert_str_eq(s.queue, "q.1");
    cr_assert_str_eq(s.payload, "{\"b\":[1,2.5,\"x\"]}");
    cr_assert_eq(s.max_attempts, 7);
    cr_assert_eq(s.timeout_s, 30);
    cr_assert_eq(s.delay_ms, 1500);
    cr_assert_eq(s.expires_in_ms, 60000);
    cr_assert_eq(s.result_ttl_s, 10);
    cr_assert_str_eq(s.idem_key, "abc");
    jm_job_spec_clear(&s);
    cr_assert_eq(parse("{\"type\":\"t\",\"run_at\":1700000000.25}", &s), JM_OK);
    cr_assert_eq(s.run_at_ms, 1700000000250LL);
    jm_job_spec_clear(&s);
    cr_assert_eq(parse("{\"type\":\"t\",\"max_attempts\":2.0}", &s), JM_OK, "integral real ok");
    cr_assert_eq(s.max_attempts, 2);
    jm_job_spec_clear(&s);
}

Test(job, spec_rejects_every_bad_field)
{
    rejects("[]", "");
    rejects("{}", "type");
    rejects("{\"type\":\"\"}", "type");
    rejects("{\"type\":5}", "type");
    rejects("{\"type\":\"a b\"}", "type");
    rejects("{\"type\":\"t\",\"queue\":\"\"}", "queue");
    rejects("{\"type\":\"t\",\"queue\":\"a/b\"}", "queue");
    rejects("{\"type\":\"t\",\"queue\":7}", "queue");
    rejects("{\"type\":\"t\",\"max_attempts\":0}", "max_attempts");
    rejects("{\"type\":\"t\",\"max_attempts\":1001}", "max_attempts");
    rejects("{\"type\":\"t\",\"max_attempts\":\"3\"}", "max_attempts");
    rejects("{\"type\":\"t\",\"max_attempts\":1.5}", "max_attempts");
    rejects("{\"type\":\"t\",\"max_attempts\":true}", "max_attempts");
    rejects("{\"type\":\"t\",\"timeout_s\":0}", "timeout_s");
    rejects("{\"type\":\"t\",\"timeout_s\":-1}", "timeout_s");
    rejects("{\"type\":\"t\",\"delay_s\":-1}", "delay_s");
    rejects("{\"type\":\"t\",\"delay_s\":\"soon\"}", "delay_s");
    rejects("{\"type\":\"t\",\"delay_s\":1,\"run_at\":5}", "run_at");
    rejects("{\"type\":\"t\",\"run_at\":-5}", "run_at");
    rejects("{\"type\":\"t\",\"expires_in_s\":0}", "expires_in_s");
    rejects("{\"type\":\"t\",\"result_ttl_s\":0}", "result_ttl_s");
    rejects("{\"type\":\"t\",\"idempotency_key\":\"\"}", "idempotency_key");
    rejects("{\"type\":\"t\",\"idempotency_key\":1}", "idempotency_key");
}

Test(job, spec_field_prefix_for_batches)
{
    json_t *b = json_loads("{\"type\":\"t\",\"max_attempts\":0}", 0, NULL);
    jm_job_spec s;
    cr_assert_eq(jm_job_spec_from_json(b, "jobs[3].", &s, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "jobs[3].max_attempts");
    jm_job_spec_clear(&s);
    json_decref(b);
}

Test(job, record_round_trip_to_json)
{
    const char *fv[] = {"queue",        "q",
                        "type",         "echo",
                        "payload",      "{\"a\":1}",
                        "status",       "succeeded",
                        "attempts",     "2",
                        "max_attempts", "3",
                        "fence",        "17",
                        "worker",       "w1",
                        "created",      "1700000000123",
                        "run_at",       "1700000000123",
                        "started",      "1700000001000",
                        "finished",     "1700000002500",
                        "result",       "[1,2]",
                        "cancel",       "0",
                        "whatever",     "ignored"};
    jm_job j;
    cr_assert_eq(jm_job_from_hash(&j, "0000AAAAAAAAAAAAAAAAAAAAAA", fv, 30, &err), JM_OK, "%s",
                 err.msg);
    cr_assert_eq(j.fence, 17);
    json_t *o = jm_job_to_json(&j);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "succeeded");
    cr_assert_eq(json_integer_value(json_object_get(o, "attempts")), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(o, "payload"), "a")), 1);
    cr_assert(json_is_array(json_object_get(o, "result")));
    cr_assert(json_is_null(json_object_get(o, "error")));
    cr_assert(json_is_null(json_object_get(o, "progress")));
    cr_assert_eq(json_object_get(o, "cancel_requested"), json_false());
    cr_assert_eq(json_integer_value(json_object_get(o, "fence")), 17);
    cr_assert_float_eq(json_real_value(json_object_get(o, "created_at")), 1700000000.123, 1e-6);
    cr_assert_float_eq(json_real_value(json_object_get(o, "finished_at")), 1700000002.5, 1e-6);
    const char *keys[] = {
        "id",         "queue",  "type",       "status",      "attempts", "max_attempts",
        "payload",    "result", "error",      "progress",    "worker",   "cancel_requested",
        "created_at", "run_at", "started_at", "finished_at", "fence"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert_not_null(json_object_get(o, keys[i]), "missing %s", keys[i]);
    json_decref(o);
    jm_job_clear(&j);
}

Test(job, record_errors)
{
    jm_job j;
    cr_assert_eq(jm_job_from_hash(&j, "x", NULL, 0, &err), JM_ERR_NOT_FOUND);
    const char *bad[] = {"status", "weird", "type", "t"};
    cr_assert_eq(jm_job_from_hash(&j, "x", bad, 4, &err), JM_ERR_REPLY);
    const char *notype[] = {"status", "queued"};
    cr_assert_eq(jm_job_from_hash(&j, "x", notype, 2, &err), JM_ERR_REPLY);
}

Test(job, json_helpers)
{
    json_t *v = jm_json_parse_text("not json");
    cr_assert(json_is_null(v));
    v = jm_json_parse_text("\"s\"");
    cr_assert_str_eq(json_string_value(v), "s");
    json_decref(v);
    cr_assert(json_is_null(jm_ms_to_json(0)));
}
