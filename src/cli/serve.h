/* `tern serve`: the server itself (master and worker processes, see
 * DESIGN.md "Processes and concurrency").  Implemented in src/cli/serve.c. */
#ifndef TERN_CLI_SERVE_H
#define TERN_CLI_SERVE_H

struct config;

/* Run the server with the loaded configuration cfg (owned by the caller,
 * which frees it after the return; cfg->path names the file to re-read on
 * SIGHUP).  argv[0] is "serve" and argv[1..argc-1] are the options after
 * it.  Returns the process exit status. */
int cli_serve(struct config *cfg, int argc, char **argv);

#endif
