/* Checks brine_call_local(), the embedding API's way to run an execution
 * module function: test.echo returns its argument as JSON, keyword
 * arguments bind by name, and a missing function or bad arguments give
 * BRINE_ELUA with salt-call's message. */
#include "brine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond) \
  do { \
    if (!(cond)) { \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; \
    } \
  } while (0)

static void check_call(brine_engine *engine, const char *fun, const char *args,
                       const char *kwargs, const char *want)
{
  char *result = NULL;
  int rc = brine_call_local(engine, fun, args, kwargs, &result);
  CHECK(rc == BRINE_OK);
  if (rc != BRINE_OK) {
    fprintf(stderr, "  %s: %s\n", fun, brine_engine_error(engine));
    return;
  }
  if (strcmp(result, want) != 0)
    fprintf(stderr, "  %s returned %s, wanted %s\n", fun, result, want);
  CHECK(strcmp(result, want) == 0);
  free(result);
}

static void check_error(brine_engine *engine, const char *fun, const char *args,
                        const char *want)
{
  char *result = NULL;
  int rc = brine_call_local(engine, fun, args, NULL, &result);
  CHECK(rc == BRINE_ELUA);
  CHECK(result == NULL);
  const char *msg = brine_engine_error(engine);
  if (!strstr(msg, want))
    fprintf(stderr, "  %s failed with '%s', wanted '%s'\n", fun, msg, want);
  CHECK(strstr(msg, want) != NULL);
}

int main(void)
{
  brine_engine *engine = brine_engine_new(NULL);
  CHECK(engine != NULL);
  if (!engine)
    return 1;
  check_call(engine, "test.echo", "[\"hello\"]", NULL, "\"hello\"");
  check_call(engine, "test.echo", NULL, "{\"text\": \"by name\"}", "\"by name\"");
  check_call(engine, "test.ping", NULL, NULL, "true");
  check_call(engine, "test.arg", "[1, 2.5, null]", "{\"k\": [true]}",
             "{\"args\": [1, 2.5, null], \"kwargs\": {\"k\": [true]}}");
  check_error(engine, "foo.bar", "[]", "'foo.bar' is not available.");
  check_error(engine, "test.echo", "[]",
              "echo() missing 1 required positional argument: 'text'");
  check_error(engine, "test.echo", "[1", "arguments");
  CHECK(lua_gettop(brine_engine_lua(engine)) == 0);
  brine_engine_free(engine);
  if (failures)
    fprintf(stderr, "%d checks failed\n", failures);
  return failures ? 1 : 0;
}
