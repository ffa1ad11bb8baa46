/* scripts.h - internal: the jobmill Redis function library, built from
 * lua/_lib.lua and every lua/NAME.lua by cmake/embed_lua.cmake. All of it is
 * static data owned by the library; nothing here is freed. */
#ifndef JM_SCRIPTS_H
#define JM_SCRIPTS_H

/* The library source for FUNCTION LOAD (NUL-terminated, starts with its
 * "#!lua name=jobmill_<hash>" line), and that name. */
extern const char jm_lua_library[];
extern const char jm_lua_library_name[];

typedef struct jm_script_function {
    const char *name;     /* the script's file name without .lua */
    const char *function; /* its registered name, "jm_<hash>_<name>" */
} jm_script_function;

/* Terminated by an entry whose name is NULL. */
extern const jm_script_function jm_script_functions[];

#endif
