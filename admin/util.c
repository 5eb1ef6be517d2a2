/* isocache-admin helpers: errors, option parsing, JSON strings. */
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

	admin_progress_break();
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

/* The option names, by bit of enum admin_opt, for messages. */
static const char *const admin_opt_names[] = {
	"--json", "--watch", "--force", "--size", "--timeout", "--socket", "--position",
	"--repair", "--group", "--progress", "--meta",
};

static const char *
admin_opt_name(unsigned bit)
{
	return admin_opt_names[__builtin_ctz(bit)];
}

/* Refuse an option `what` does not take: long is the name typed (NULL for
 * a short option), bit its ADMIN_OPT_*. Returns 1. */
static int
admin_refuse(const char *long_name, unsigned bit, const char *what)
{
	if (long_name)
		return admin_fail(what, "--%s does not apply to %s (see --help)", long_name, what);
	return admin_fail(what, "%s does not apply to %s (see --help)", admin_opt_name(bit), what);
}

int
admin_only(const struct admin_opts *opts, unsigned takes, const char *what)
{
	unsigned extra = opts->given & ~takes;

	return extra ? admin_refuse(NULL, extra & -extra, what) : 0;
}

/* --timeout SECONDS, in (0, 600], as milliseconds; returns 0 or 1. */
static int
admin_timeout(const char *text, unsigned *ms)
{
	char *end;
	double secs = strtod(text, &end);

	if (*end || end == text || !(secs > 0 && secs <= 600))
		return admin_fail("--timeout", "'%s' is not a number of seconds (0-600)", text);
	*ms = (unsigned)(secs * 1000 + 0.5);
	return 0;
}

/* Take one option's value into opts; returns 0 or 1 after saying why. */
static int
admin_take(struct admin_opts *opts, unsigned bit, const char *arg)
{
	opts->given |= bit;
	switch (bit) {
	case ADMIN_OPT_JSON:
		opts->json = true;
		return 0;
	case ADMIN_OPT_WATCH:
		opts->watch = true;
		return 0;
	case ADMIN_OPT_FORCE:
		opts->force = true;
		return 0;
	case ADMIN_OPT_SIZE:
		opts->has_size = true;
		return admin_size("--size", arg, &opts->size);
	case ADMIN_OPT_TIMEOUT:
		return admin_timeout(arg, &opts->timeout_ms);
	case ADMIN_OPT_SOCKET:
		opts->socket = arg;
		return 0;
	case ADMIN_OPT_REPAIR:
		opts->repair = true;
		return 0;
	case ADMIN_OPT_PROGRESS:
		opts->progress = true;
		return 0;
	case ADMIN_OPT_GROUP:
		opts->group = arg;
		return 0;
	case ADMIN_OPT_META:
		opts->meta = arg;
		return 0;
	default:
		opts->position = arg;
		return 0;
	}
}

int
admin_parse(const struct admin_cmd *cmd, int argc, char **argv, struct admin_opts *opts,
	    int want_min, int want_max, int *exit_code)
{
	/* getopt_long returns the option's ADMIN_OPT_* bit; 'h', 'f', 'p', 's', '?'
	 * and ':' are no power of two, so none is mistaken for one. */
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, ADMIN_OPT_JSON },
		{ "watch", no_argument, NULL, ADMIN_OPT_WATCH },
		{ "force", no_argument, NULL, ADMIN_OPT_FORCE },
		{ "size", required_argument, NULL, ADMIN_OPT_SIZE },
		{ "cluster-size", required_argument, NULL, ADMIN_OPT_SIZE },
		{ "timeout", required_argument, NULL, ADMIN_OPT_TIMEOUT },
		{ "socket", required_argument, NULL, ADMIN_OPT_SOCKET },
		{ "position", required_argument, NULL, ADMIN_OPT_POSITION },
		{ "repair", no_argument, NULL, ADMIN_OPT_REPAIR },
		{ "group", required_argument, NULL, ADMIN_OPT_GROUP },
		{ "progress", no_argument, NULL, ADMIN_OPT_PROGRESS },
		{ "meta", required_argument, NULL, ADMIN_OPT_META },
		{ NULL, 0, NULL, 0 },
	};
	const char *refused_name = NULL;
	unsigned refused = 0;
	int c, n, li;

	optind = 0; /* 0, not 1: glibc then also forgets main()'s "+" ordering */
	opterr = 0;
	while ((li = -1, c = getopt_long(argc, argv, ":hfps:", longopts, &li)) != -1) {
		if (c == 'f')
			c = ADMIN_OPT_FORCE;
		else if (c == 'p')
			c = ADMIN_OPT_PROGRESS;
		else if (c == 's')
			c = ADMIN_OPT_SIZE;
		if (c == 'h') {
			admin_usage(cmd, stdout);
			*exit_code = 0;
			return -1;
		}
		if (c == '?' || c == ':') {
			*exit_code = admin_bad_option(cmd->name, c, argv);
			return -1;
		}
		/* Refused after the loop: an unknown option ("-foo" is -f, -o,
		 * -o) is the first thing to say. */
		if (!(cmd->takes & (unsigned)c)) {
			if (!refused) {
				refused = (unsigned)c;
				refused_name = li >= 0 ? longopts[li].name : NULL;
			}
			continue;
		}
		if (admin_take(opts, (unsigned)c, optarg)) {
			*exit_code = 1;
			return -1;
		}
	}
	if (refused) {
		*exit_code = admin_refuse(refused_name, refused, cmd->name);
		return -1;
	}
	n = argc - optind;
	if (n < want_min || n > want_max) {
		*exit_code = admin_fail(cmd->name, "expected %s (see --help)", cmd->args);
		return -1;
	}
	return optind;
}
