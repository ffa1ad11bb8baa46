/* fuzz_route_get.c - the api's ?wait parser (api_req_wait in
 * services/api/jobs_get.c, shared by GET and POST ?wait), compiled into the
 * fuzz target as it is. */
#include "jobs_get.c"

int fuzz_parse_wait(const api_req *req, double *secs);

int
fuzz_parse_wait(const api_req *req, double *secs)
{
    return api_req_wait(req, secs);
}
