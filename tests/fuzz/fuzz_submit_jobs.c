/* fuzz_submit_jobs.c - the api's static submit validator (jobs_spec in
 * services/api/jobs.c), compiled into the fuzz target as it is. */
#include "jobs.c"

int fuzz_jobs_spec(const json_t *body, const char *idem_header, jm_job_spec *spec, jm_error *err);

int
fuzz_jobs_spec(const json_t *body, const char *idem_header, jm_job_spec *spec, jm_error *err)
{
    return jobs_spec(body, idem_header, spec, err);
}
