/* fuzz_submit_batch.c - the api's static batch validator (validate in
 * services/api/jobs_batch.c), compiled into the fuzz target as it is. */
#include "jobs_batch.c"

int fuzz_batch_validate(const json_t *jobs, jm_job_spec *specs, size_t n, jm_error *err);

int
fuzz_batch_validate(const json_t *jobs, jm_job_spec *specs, size_t n, jm_error *err)
{
    return validate(jobs, specs, n, err);
}
