/* fuzz_route_get.c - the api's static ?wait parser (parse_wait in
 * services/api/jobs_get.c), compiled into the fuzz target as it is. */
#include "jobs_get.c"

int fuzz_parse_wait(const api_req *req, double *secs);

int
fuzz_parse_wait(const api_req *req, double *secs)
{
    return parse_wait(req, secs);
}
