/* The brine executable: an engine whose Lua tree runs the command line.
 * BRINE_LUA_DIR, when set, names a lua/ folder whose files take
 * precedence over the compiled-in ones (for development). */
#include "brine.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
  brine_engine *engine = brine_engine_new(getenv("BRINE_LUA_DIR"));
  if (!engine) {
    fputs("brine: cannot start the Lua runtime\n", stderr);
    return 2;
  }
  int status = brine_engine_main(engine, argc, argv);
  brine_engine_free(engine);
  return status;
}
