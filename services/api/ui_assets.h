/* ui_assets.h - the dashboard's files (services/api/ui/), embedded in the
 * binary at build time by cmake/embed_ui.cmake: nothing is read from disk or
 * fetched at run time. The table and its bytes are static and read-only. */
#ifndef JOBMILL_API_UI_ASSETS_H
#define JOBMILL_API_UI_ASSETS_H

#include <stddef.h>

typedef struct api_ui_file {
    const char *name; /* file name: "index.html", "app.js", ... */
    const char *type; /* Content-Type */
    const char *data; /* the file's bytes (NUL-terminated, len without it) */
    size_t len;
} api_ui_file;

/* The files, ending with a {NULL} entry. */
extern const api_ui_file api_ui_files[];

#endif
