/* qemu-img for import: check an image, then convert it to raw, showing
 * what qemu-img found when either fails, and its progress as it goes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "admin/admin.h"
#include "common/cleanup.h"

/* qemu-img convert -p writes "    (42.00/100%)\r" as it goes, on stdout
 * among its messages: report each such piece as that share of size done
 * (admin_progress_fn) and take it out of buf[0, len); the rest stays, and
 * its new length is returned. An unfinished piece waits for more. */
static size_t
qemu_take_progress(char *buf, size_t len, uint64_t size)
{
	size_t keep = 0;
	char *p = buf, *cr;

	buf[len] = '\0'; /* sscanf stops there; the callers leave room for it */
	for (; (cr = memchr(p, '\r', (size_t)(buf + len - p))); p = cr + 1) {
		char *piece = memrchr(p, '\n', (size_t)(cr - p));
		double pct;
		int end = 0;

		piece = piece ? piece + 1 : p;
		if (sscanf(piece, " (%lf/100%%)%n", &pct, &end) == 1 && piece + end == cr &&
		    pct >= 0 && pct <= 100) {
			admin_progress_fn(NULL, (uint64_t)(pct / 100 * (double)size), 0);
			/* Keep what came before the piece; drop it and its \r. */
			memmove(buf + keep, p, (size_t)(piece - p));
			keep += (size_t)(piece - p);
			continue;
		}
		memmove(buf + keep, p, (size_t)(cr + 1 - p));
		keep += (size_t)(cr + 1 - p);
	}
	memmove(buf + keep, p, (size_t)(buf + len - p));
	return keep + (size_t)(buf + len - p);
}

/* Run qemu-img with args (NULL-terminated, without the program name).
 * Its stdout and stderr go to *out (malloc'd, NUL-terminated, at most
 * QEMU_OUT_MAX bytes kept; free() it), less the progress of -p when size
 * is not 0 (qemu_take_progress). Returns its exit status, 127 when it
 * cannot run, or -1 when it was killed. */
#define QEMU_OUT_MAX (1u << 20)

static int
qemu_run(const char *const *args, char **out, uint64_t size)
{
	const char *argv[16] = { "qemu-img" };
	size_t len = 0, cap = 4096, n = 1;
	char *buf = malloc(cap), *grown;
	int pipefd[2], status;
	ssize_t r;
	pid_t pid;

	*out = NULL;
	while (args[n - 1] && n < sizeof(argv) / sizeof(argv[0]) - 1) {
		argv[n] = args[n - 1];
		n++;
	}
	if (!buf || pipe2(pipefd, O_CLOEXEC) != 0) {
		free(buf);
		return 127;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		execvp("qemu-img", (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* Read to the end even past the cap, so the child never blocks. */
	while (pid > 0 && (r = read(pipefd[0], buf + len, cap - 1 - len)) != 0) {
		if (r < 0 && errno != EINTR)
			break;
		len += r > 0 ? (size_t)r : 0;
		if (size)
			len = qemu_take_progress(buf, len, size);
		if (len == cap - 1 && cap < QEMU_OUT_MAX && (grown = realloc(buf, 2 * cap))) {
			buf = grown;
			cap *= 2;
		} else if (len == cap - 1) {
			len = cap / 2; /* the head is kept; the rest is overwritten */
		}
	}
	buf[len] = '\0';
	close(pipefd[0]);
	*out = buf;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 127;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Print text's non-empty lines to stderr, indented; of more than 10 only
 * the first 5 and the last 4 (qemu-img check ends with its summary). */
static void
qemu_print_findings(const char *text)
{
	size_t lines = 0, line = 0;

	for (const char *p = text; *p; p++)
		lines += *p != '\n' && (p[1] == '\n' || !p[1]);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		if (len > 0) {
			if (lines <= 10 || line < 5 || line >= lines - 4)
				fprintf(stderr, "  %.*s\n", len, p);
			else if (line == 5)
				fprintf(stderr, "  ... (%zu more lines)\n", lines - 9);
			line++;
		}
		p += len + (nl != NULL);
	}
}

/* qemu-img check of a qcow2, vmdk or vhdx image before it is imported: an
 * image with errors would import as whatever qemu-img convert makes of it
 * (a truncated qcow2 as a disk of zeros, exit 0). Returns 0 or 1 after
 * saying why, with qemu-img's findings. */
static int
qemu_check(const char *src, const char *fmt)
{
	const char *args[] = { "check", "-f", fmt, src, NULL };
	IC_AUTOFREE char *out = NULL;
	int rc = qemu_run(args, &out, 0);

	switch (rc) {
	case 0:  /* no errors */
	case 63: /* the format has no check: nothing more to learn */
		return 0;
	case 3: /* leaked clusters only: space wasted, data intact */
		fprintf(stderr, "isocache-admin: %s: qemu-img check found leaked clusters "
				"(wasted space, no damage); importing\n", src);
		return 0;
	case 127:
		return admin_fail(src, "a %s image; install the Debian package qemu-utils to "
				  "import it", fmt);
	default:
		admin_fail(src, "a damaged %s image: not imported. qemu-img check (exit %d) says:",
			   fmt, rc);
		qemu_print_findings(out ? out : "");
		return 1;
	}
}

uint64_t
admin_qemu_size(const char *src, const char *fmt)
{
	const char *args[] = { "info", "--output=json", "-f", fmt, src, NULL };
	IC_AUTOFREE char *out = NULL;
	struct json_object *info = NULL, *size;
	int64_t n = 0;

	if (qemu_run(args, &out, 0) == 0 && (info = json_tokener_parse(out)) &&
	    json_object_object_get_ex(info, "virtual-size", &size))
		n = json_object_get_int64(size);
	json_object_put(info);
	return n > 0 ? (uint64_t)n : 0;
}

int
admin_qemu_convert(const char *src, const char *fmt, const char *dst, uint64_t size)
{
	/* -q where -p is not wanted: the same place in the arguments. */
	const char *args[] = { "convert", size ? "-p" : "-q", "-f", fmt, "-O", "raw", src, dst, NULL };
	IC_AUTOFREE char *out = NULL;
	int rc = qemu_check(src, fmt);

	if (rc == 0 && (rc = qemu_run(args, &out, size)) != 0) {
		admin_fail(src, "qemu-img convert failed (exit %d):", rc);
		qemu_print_findings(out ? out : "");
		return 1;
	}
	return rc;
}
