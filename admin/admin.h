/* isocache-admin: shared pieces of the subcommands. */
#ifndef IC_ADMIN_ADMIN_H
#define IC_ADMIN_ADMIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "isocache/vdisk.h"

/* The options admin_parse knows. A command declares those it takes
 * (admin_cmd.takes) and admin_parse refuses the others, naming them, so an
 * option never passes silently where it does nothing. */
enum admin_opt {
	ADMIN_OPT_JSON = 1u << 0,     /* --json */
	ADMIN_OPT_WATCH = 1u << 1,    /* --watch */
	ADMIN_OPT_FORCE = 1u << 2,    /* -f, --force */
	ADMIN_OPT_SIZE = 1u << 3,     /* -s, --size, --cluster-size SIZE */
	ADMIN_OPT_TIMEOUT = 1u << 4,  /* --timeout SECONDS */
	ADMIN_OPT_SOCKET = 1u << 5,   /* --socket PATH */
	ADMIN_OPT_POSITION = 1u << 6, /* --position top|bottom|N */
	ADMIN_OPT_REPAIR = 1u << 7,   /* --repair */
	ADMIN_OPT_GROUP = 1u << 8,    /* --group NAME */
	ADMIN_OPT_PROGRESS = 1u << 9, /* -p, --progress */
	ADMIN_OPT_META = 1u << 10,    /* --meta URL */
};

struct admin_cmd {
	const char *name;
	const char *args;    /* synopsis after the name */
	const char *summary; /* one line */
	const char *help;    /* the rest of --help */
	bool needs_store;    /* open the store before run */
	int (*run)(struct ic_store *store, const char *dir, int argc, char **argv);
	unsigned takes;      /* the ADMIN_OPT_* it accepts; --help always */
};

/* Every subcommand, NULL-terminated (main.c), and each one (cmd_*.c). */
extern const struct admin_cmd *const admin_cmds[];
extern const struct admin_cmd admin_cmd_init, admin_cmd_create, admin_cmd_import,
	admin_cmd_export, admin_cmd_snap, admin_cmd_clone, admin_cmd_ls, admin_cmd_info,
	admin_cmd_tree, admin_cmd_rm, admin_cmd_resize, admin_cmd_flatten, admin_cmd_check,
	admin_cmd_owner, admin_cmd_stats, admin_cmd_filter, admin_cmd_cache, admin_cmd_destroy;

/* A live process's STATS reply (JSON) as tables, and its filter stack
 * (FILTER ls's JSON) as a table (stats_table.c); -EINVAL when text is not
 * the JSON expected, -ENOMEM. */
int admin_stats_table(const char *text, FILE *out);
int admin_filter_table(const char *text, FILE *out);

/* The cache daemon's counters for store's frozen layers (cmd_cache.c). */
int admin_cache_stats(struct ic_store *store, bool json, bool watch);

/* qemu-img check src (refusing a damaged image with qemu-img's findings),
 * then qemu-img convert -f fmt -O raw src dst; returns 0 or 1 after saying
 * why (qemu_img.c). With size not 0, the conversion's progress goes to
 * admin_progress_fn as that share of size. */
int admin_qemu_convert(const char *src, const char *fmt, const char *dst, uint64_t size);
/* The virtual size of image src of format fmt (qemu-img info), or 0 when
 * qemu-img cannot tell. */
uint64_t admin_qemu_size(const char *src, const char *fmt);

/* cache trace show|clear NAME@SNAP (cache_trace.c): returns the exit code. */
int admin_cache_trace(struct ic_store *store, const char *action, const char *image, bool json);
/* Print "isocache-admin: <what>: <why>" to stderr; returns 1 (the exit code). */
int admin_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Say what a command made: "<how> vdisk|snapshot IMAGE: SIZE, USED in its
 * own layer[, on top of PARENT]". Returns 0, or 1 when image is not found. */
int admin_made(struct ic_store *store, const char *image, const char *how);
/* Parse a size argument or fail naming it; returns 0 or 1. */
int admin_size(const char *what, const char *text, uint64_t *out);
/* Option parsing inside a subcommand: argv[0] is the subcommand. Returns
 * the index of the first operand, or -1 (with *exit_code set) after --help,
 * a bad option or one the command does not take (cmd->takes), or a number
 * of operands outside want_min..want_max. */
struct admin_opts {
	unsigned given; /* the ADMIN_OPT_* on the command line */
	bool json;
	bool watch;
	bool force; /* -f: overwrite (export), take from a live owner (ic_owner_set_takeover) */
	bool has_size;
	bool repair; /* check --repair */
	bool progress; /* -p: a progress bar on stderr, when it is a terminal */
	uint64_t size;
	unsigned timeout_ms;  /* --timeout, 0 when not given */
	const char *socket;   /* --socket */
	const char *position; /* --position */
	const char *group;    /* --group, NULL when not given */
	const char *meta;     /* --meta, NULL when not given */
};
int admin_parse(const struct admin_cmd *cmd, int argc, char **argv, struct admin_opts *opts,
		int want_min, int want_max, int *exit_code);
/* For commands whose actions take different options: refuse, naming it,
 * the first option given that `what` (as "owner show") does not take.
 * Returns 0, or 1 after saying so. */
int admin_only(const struct admin_opts *opts, unsigned takes, const char *what);
void admin_usage(const struct admin_cmd *cmd, FILE *out);
/* After getopt_long (optstring starting with ':') returned c, '?' or ':':
 * say which option was wrong; returns 1. */
int admin_bad_option(const char *cmd, int c, char **argv);

/* Progress of one long piece of work of total bytes (progress.c): with -p
 * (opts->progress) a bar on stderr, "    (42.00/100%)" redrawn in place,
 * when stderr is a terminal; with --json (opts->json) one JSON object a
 * line on stdout, {"event":"progress","done":N,"total":M,"percent":P};
 * otherwise nothing. Both are redrawn at most five times a second. Call
 * begin, then advance with the bytes done (holes and skipped ranges too, so
 * that done reaches total; a total of 0 means the library will tell it,
 * through admin_progress_fn), then end with the command's result: 0 draws
 * 100% and the event "done", anything else the event "failed" where the
 * work stopped. end returns rc. */
void admin_progress_begin(const struct admin_opts *opts, uint64_t total);
void admin_progress_advance(uint64_t n);
/* As advance, for a piece of work that reports done so far, counted from
 * begin (ic_progress_fn: ic_image_flatten, ic_image_remove; qemu-img);
 * total is taken only when begin was given none. */
void admin_progress_fn(void *arg, uint64_t done, uint64_t total);
int admin_progress_end(int rc);
/* Before a message on stderr: end the bar's line, so the message starts
 * its own (admin_fail does it). */
void admin_progress_break(void);
/* The help of -p and --json, for the commands that take them. */
#define ADMIN_PROGRESS_HELP                                                               \
	"  -p, --progress  a progress bar on stderr, when it is a terminal\n"               \
	"  --json          progress and the end as JSON lines on stdout, for scripts\n"

/* A text table with columns as wide as their content (table.c): new takes
 * ncols, an alignment per column ("llr": left, left, right) and the
 * header's ncols strings; row takes ncols strings (NULL shows "-"). print
 * returns 0, or -ENOMEM when a row could not be kept. */
struct admin_table;
struct admin_table *admin_table_new(unsigned ncols, const char *align, ...);
void admin_table_row(struct admin_table *t, ...);
void admin_table_vrow(struct admin_table *t, va_list ap);
int admin_table_print(struct admin_table *t, FILE *out, const char *indent);
void admin_table_free(struct admin_table *t);

#endif
