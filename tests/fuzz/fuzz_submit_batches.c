/* fuzz_submit_batches.c - the api's static batch-body validator (body_parse
 * in services/api/batches.c), compiled into the fuzz target as it is. It
 * checks what only that file knows: an accepted batch's members all run on
 * the batch's queue and carry no key of their own. */
#include "batches.c"

int fuzz_batches_parse(const json_t *body, const char *idem_header, jm_error *err);

int
fuzz_batches_parse(const json_t *body, const char *idem_header, jm_error *err)
{
    batch_body b;
    memset(&b, 0, sizeof(b));
    int rc = body_parse(body, idem_header, &b, err);
    if (rc == JM_OK) {
        if (!jm_queue_name_valid(b.queue) || b.n < 1 || b.n > JM_BATCH_MAX)
            abort();
        for (size_t i = 0; i < b.n; i++)
            if (strcmp(b.jobs[i].queue, b.queue) != 0 || b.jobs[i].idem_key != NULL ||
                b.jobs[i].unique_key != NULL || b.jobs[i].type == NULL)
                abort();
        if (b.has_callback && !jm_queue_name_valid(b.callback.queue))
            abort();
    }
    batch_body_clear(&b);
    return rc;
}
