/* scripts.h - internal: the Lua sources embedded at build time by
 * cmake/embed_lua.cmake (each is lua/_lib.lua followed by lua/NAME.lua). */
#ifndef JM_SCRIPTS_H
#define JM_SCRIPTS_H

typedef struct jm_script_source {
    const char *name;   /* file name without .lua */
    const char *source; /* NUL-terminated Lua text */
} jm_script_source;

/* Terminated by an entry whose name is NULL. */
extern const jm_script_source jm_script_sources[];

#endif
