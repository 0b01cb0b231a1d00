/* The Lua tree compiled into the executable (see engine/tools/embed.c). */
#ifndef BRINE_EMBEDDED_H
#define BRINE_EMBEDDED_H

struct brine__embedded {
  const char *name; /* path under lua/, e.g. "brine/cli.lua" */
  const char *data; /* the file's text */
  long size;
  const char *bytecode; /* compiled at build time, chunk "@lua/<name>" */
  long bytecode_size;
};

extern const struct brine__embedded brine__embedded_files[];
extern const int brine__embedded_count;

#endif
