/* table.c - human tables: a header row and rows of cells, each column
 * padded to its widest cell, two spaces between columns. Widths count UTF-8
 * characters, not bytes. A table owns copies of its cells. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

struct cli_table {
    size_t n_cols;
    const char *const *headers; /* borrowed */
    char **cells;               /* rows * n_cols, owned */
    size_t rows, cap;
};

cli_table *
cli_table_new(size_t n_cols, const char *const *headers)
{
    cli_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->n_cols = n_cols;
    t->headers = headers;
    return t;
}

int
cli_table_add(cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap == 0 ? 16 : t->cap * 2;
        char **c = realloc(t->cells, cap * t->n_cols * sizeof(*c));
        if (c == NULL)
            return JM_ERR_NOMEM;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * t->n_cols;
    for (size_t i = 0; i < t->n_cols; i++) {
        row[i] = strdup(cells[i] != NULL ? cells[i] : "-");
        if (row[i] == NULL) {
            while (i-- > 0)
                free(row[i]);
            return JM_ERR_NOMEM;
        }
    }
    t->rows++;
    return JM_OK;
}

/* chars counts the UTF-8 characters of s (continuation bytes skipped). */
static size_t
chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

static void
print_row(FILE *out, const char *const *cells, const size_t *width, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputs(cells[i], out);
        if (i + 1 < n)
            fprintf(out, "%*s", (int)(width[i] - chars(cells[i]) + 2), "");
    }
    fputc('\n', out);
}

void
cli_table_print(const cli_table *t, FILE *out)
{
    size_t *width = calloc(t->n_cols, sizeof(*width));
    if (width == NULL)
        return;
    for (size_t i = 0; i < t->n_cols; i++)
        width[i] = chars(t->headers[i]);
    for (size_t r = 0; r < t->rows; r++)
        for (size_t i = 0; i < t->n_cols; i++) {
            size_t w = chars(t->cells[r * t->n_cols + i]);
            if (w > width[i])
                width[i] = w;
        }
    print_row(out, t->headers, width, t->n_cols);
    for (size_t r = 0; r < t->rows; r++)
        print_row(out, (const char *const *)(t->cells + r * t->n_cols), width, t->n_cols);
    free(width);
}

void
cli_table_free(cli_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
