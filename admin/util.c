/* isocache-admin helpers: errors, option parsing, progress, JSON strings. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/size.h"

int
admin_fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "isocache-admin: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int
admin_size(const char *what, const char *text, uint64_t *out)
{
	int rc = ic_size_parse(text, out);

	if (rc == -ERANGE)
		return admin_fail(what, "'%s' is too large", text);
	if (rc)
		return admin_fail(what, "'%s' is not a size (a number with an optional K, M, G or T suffix)",
				  text);
	return 0;
}

int
admin_made(struct ic_store *store, const char *image, const char *how)
{
	struct ic_image_info info;
	char sz[32], used[32];

	if (ic_image_info(store, image, &info))
		return 1;
	printf("%s %s %s: %s, %s in its own layer", how, info.snapshot ? "snapshot" : "vdisk",
	       info.name, ic_size_format(info.size, sz, sizeof(sz)),
	       ic_size_format(info.chain[0].allocated, used, sizeof(used)));
	if (info.depth > 1)
		printf(", on top of %s", info.chain[1].name[0] ? info.chain[1].name : "(unnamed)");
	printf("\n");
	free(info.chain);
	return 0;
}

int
admin_bad_option(const char *cmd, int c, char **argv)
{
	/* optind is past the word only once getopt finished it: a short
	 * option inside "-foo" is named by optopt, not by argv[optind - 1]. */
	if (c == ':')
		return admin_fail(cmd, "option '%s' needs a value (see --help)", argv[optind - 1]);
	if (optopt)
		return admin_fail(cmd, "unknown option '-%c' (see --help)", optopt);
	return admin_fail(cmd, "unknown option '%s' (see --help)", argv[optind - 1]);
}

void
admin_usage(const struct admin_cmd *cmd, FILE *out)
{
	fprintf(out, "Usage: isocache-admin [--store DIR] %s %s\n\n%s.\n", cmd->name, cmd->args,
		cmd->summary);
	if (cmd->help && *cmd->help)
		fprintf(out, "\n%s", cmd->help);
}

int
admin_parse(const struct admin_cmd *cmd, int argc, char **argv, struct admin_opts *opts,
	    int want_min, int want_max, int *exit_code)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "force", no_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "cluster-size", required_argument, NULL, 's' },
		{ "repair", no_argument, NULL, 'r' },
		{ "group", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	int c, n;

	optind = 0; /* 0, not 1: glibc then also forgets main()'s "+" ordering */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hfs:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			admin_usage(cmd, stdout);
			*exit_code = 0;
			return -1;
		case 'j':
			opts->json = true;
			break;
		case 'w':
			opts->watch = true;
			break;
		case 'f':
			opts->force = true;
			break;
		case 'r':
			if (cmd != &admin_cmd_check)
				goto unknown;
			opts->repair = true;
			break;
		case 's':
			if (admin_size("--size", optarg, &opts->size)) {
				*exit_code = 1;
				return -1;
			}
			opts->has_size = true;
			break;
		case 'g':
			opts->group = optarg;
			break;
		default:
unknown:
			*exit_code = admin_bad_option(cmd->name, c, argv);
			return -1;
		}
	}
	n = argc - optind;
	if (n < want_min || n > want_max) {
		*exit_code = admin_fail(cmd->name, "expected %s (see --help)", cmd->args);
		return -1;
	}
	return optind;
}

static int progress_shown;

void
admin_progress(void *arg, uint64_t done, uint64_t total)
{
	static int last = -1;
	int pct = total ? (int)(done * 100 / total) : 100;

	(void)arg;
	if (!isatty(STDERR_FILENO) || pct == last)
		return;
	last = pct;
	progress_shown = 1;
	fprintf(stderr, "\r[%-40.*s] %3d%%", pct * 40 / 100,
		"########################################", pct);
}

void
admin_progress_end(void)
{
	if (progress_shown)
		fputc('\n', stderr);
	progress_shown = 0;
}
