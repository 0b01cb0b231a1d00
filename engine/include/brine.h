/* brine.h: the embedding API. A C host creates an engine (a Lua state with
 * brine's C modules and its Lua tree), runs the CLI or calls execution
 * module functions, and frees it. The brine executable is its first user.
 * Every function returns 0 or a negative BRINE_E* code unless it says
 * otherwise. */
#ifndef BRINE_H
#define BRINE_H

#include <lua.h>

#define BRINE_API_VERSION 1

enum {
  BRINE_OK = 0,
  BRINE_ENOMEM = -1,  /* out of memory */
  BRINE_ELUA = -2,    /* a Lua error; brine_engine_error() says which */
  BRINE_EINVAL = -3   /* a bad argument */
};

typedef struct brine_engine brine_engine;

/* Creates an engine. lua_dir, when not NULL, is a folder laid out like the
 * source tree's lua/ whose files take precedence over the embedded ones.
 * Returns NULL when out of memory. */
brine_engine *brine_engine_new(const char *lua_dir);

/* Frees the engine and its Lua state. NULL is accepted. */
void brine_engine_free(brine_engine *engine);

/* The engine's Lua state, for hosts that push and call things themselves. */
lua_State *brine_engine_lua(brine_engine *engine);

/* Runs the command line (argv[0] decides the subcommand for the
 * brine-call style names) and returns the process exit status. */
int brine_engine_main(brine_engine *engine, int argc, char **argv);

/* Calls an execution module function locally, with arguments given as a
 * JSON array and keyword arguments as a JSON object (either may be NULL).
 * On success *result_json receives the return value as JSON (free it with
 * free()). Returns BRINE_ELUA when the call fails. */
int brine_call_local(brine_engine *engine, const char *function,
                     const char *args_json, const char *kwargs_json,
                     char **result_json);

/* The message of the last BRINE_ELUA error, valid until the next call. */
const char *brine_engine_error(brine_engine *engine);

/* A static string naming a BRINE_E* code. */
const char *brine_strerror(int code);

#endif
