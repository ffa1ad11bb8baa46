/* fuzz_route_queues.c - the api's static listing-query parser
 * (parse_list_args in services/api/queues.c), compiled into the fuzz target
 * as it is. */
#include "queues.c"

int fuzz_parse_list_args(const api_req *req, jm_state *state, int *limit, char *cursor,
                         size_t cursor_len, jm_error *err);

int
fuzz_parse_list_args(const api_req *req, jm_state *state, int *limit, char *cursor,
                     size_t cursor_len, jm_error *err)
{
    return parse_list_args(req, state, limit, cursor, cursor_len, err);
}
