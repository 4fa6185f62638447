#include "core/log.h"
#include "core/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

/* ---- sd_notify against a socket we bind ourselves ---- */

struct test_proc_notify {
	char dir[64];
	char path[108];
	int fd;
};

static int
test_proc_notify_setup(void **state)
{
	struct test_proc_notify *n = calloc(1, sizeof(*n));
	assert_non_null(n);
	snprintf(n->dir, sizeof(n->dir), "/tmp/rampart-test-proc-XXXXXX");
	assert_non_null(mkdtemp(n->dir));
	snprintf(n->path, sizeof(n->path), "%s/notify", n->dir);

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, n->path, strlen(n->path) + 1);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(n->fd >= 0);
	assert_int_equal(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", n->path, 1), 0);
	*state = n;
	return 0;
}

static int
test_proc_notify_teardown(void **state)
{
	struct test_proc_notify *n = *state;
	unsetenv("NOTIFY_SOCKET");
	close(n->fd);
	unlink(n->path);
	rmdir(n->dir);
	free(n);
	return 0;
}

/* Reads one datagram; sd_notify has returned, so it is already queued. */
static void
test_proc_recv(void **state, char *buf, size_t n)
{
	struct test_proc_notify *ns = *state;
	ssize_t r = recv(ns->fd, buf, n - 1, 0);
	assert_true(r >= 0);
	buf[r] = '\0';
}

static void
test_proc_assert_empty(void **state)
{
	struct test_proc_notify *ns = *state;
	char c;
	assert_int_equal(recv(ns->fd, &c, 1, 0), -1);
	assert_int_equal(errno, EAGAIN);
}

static void
test_proc_notify_ready(void **state)
{
	char buf[256];
	assert_true(proc_notify_ready() > 0);
	test_proc_recv(state, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1");
	test_proc_assert_empty(state);
}

static void
test_proc_notify_stopping(void **state)
{
	char buf[256];
	assert_true(proc_notify_stopping() > 0);
	test_proc_recv(state, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
}

static void
test_proc_notify_reloading(void **state)
{
	char buf[256];
	struct timespec ts;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	unsigned long long before =
	    (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;

	assert_true(proc_notify_reloading() > 0);
	test_proc_recv(state, buf, sizeof(buf));

	static const char head[] = "RELOADING=1\nMONOTONIC_USEC=";
	assert_int_equal(strncmp(buf, head, strlen(head)), 0);
	const char *digits = buf + strlen(head);
	assert_true(*digits != '\0');
	for (const char *p = digits; *p; p++)
		assert_true(*p >= '0' && *p <= '9');
	unsigned long long usec = strtoull(digits, NULL, 10);
	assert_true(usec >= before);
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	assert_true(usec <= (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000);
}

static void
test_proc_notify_status(void **state)
{
	char buf[256];
	assert_true(proc_notify_status("serving 3 backends") > 0);
	test_proc_recv(state, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=serving 3 backends");

	/* a newline could smuggle in READY=1; nothing is sent */
	assert_int_equal(proc_notify_status("ok\nREADY=1"), -EINVAL);
	assert_int_equal(proc_notify_status(NULL), -EINVAL);
	test_proc_assert_empty(state);
}

static void
test_proc_notify_unset(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(proc_notify_ready(), 0);
	assert_int_equal(proc_notify_reloading(), 0);
	assert_int_equal(proc_notify_stopping(), 0);
	assert_int_equal(proc_notify_status("idle"), 0);
}

/* A socket path nobody listens on is an error, not "not under systemd". */
static void
test_proc_notify_no_listener(void **state)
{
	struct test_proc_notify *n = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/nobody-here", n->dir);
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_true(proc_notify_ready() < 0);
}

/* ---- privilege drop, always in a child: it cannot be undone ---- */

enum {
	TEST_PROC_OK = 0,
	TEST_PROC_DROP_FAILED = 10,
	TEST_PROC_REGAINED,
	TEST_PROC_WRONG_IDS,
	TEST_PROC_ROOT_GROUP,
	TEST_PROC_WRONG_ERROR,
};

static int
test_proc_wait(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int
test_proc_child_drop(const struct passwd *pw)
{
	if (proc_drop_privileges("nobody") != 0)
		return TEST_PROC_DROP_FAILED;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return TEST_PROC_REGAINED;
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getgid() != pw->pw_gid ||
	    getegid() != pw->pw_gid)
		return TEST_PROC_WRONG_IDS;
	gid_t groups[64];
	int n = getgroups(64, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == 0)
			return TEST_PROC_ROOT_GROUP;
	return TEST_PROC_OK;
}

static void
test_proc_drop_nobody(void **state)
{
	if (geteuid() != 0)
		skip();
	struct passwd *pw = getpwnam("nobody");
	if (!pw)
		skip();
	struct passwd copy = *pw;
	fflush(NULL); /* else the child would flush our buffered output again */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(test_proc_child_drop(&copy));
	assert_int_equal(test_proc_wait(pid), TEST_PROC_OK);
}

/* Failures change nothing. */
static int
test_proc_child_errors(uid_t uid, uid_t euid)
{
	if (proc_drop_privileges("rampart-no-such-user-x") != -ENOENT)
		return TEST_PROC_WRONG_ERROR;
	if (proc_drop_privileges("") != -EINVAL || proc_drop_privileges(NULL) != -EINVAL)
		return TEST_PROC_WRONG_ERROR;
	if (getuid() != uid || geteuid() != euid)
		return TEST_PROC_WRONG_IDS;
	return TEST_PROC_OK;
}

static void
test_proc_drop_errors(void **state)
{
	uid_t uid = getuid(), euid = geteuid();
	fflush(NULL); /* else the child would flush our buffered output again */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(test_proc_child_errors(uid, euid));
	assert_int_equal(test_proc_wait(pid), TEST_PROC_OK);
}

/* Switching to another user without root is refused, and -EPERM says so. */
static int
test_proc_child_not_permitted(void)
{
	struct passwd *pw = getpwnam("nobody");
	if (geteuid() == 0 && (!pw || setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0))
		return TEST_PROC_DROP_FAILED;
	return proc_drop_privileges("root") == -EPERM ? TEST_PROC_OK : TEST_PROC_WRONG_ERROR;
}

static void
test_proc_drop_not_permitted(void **state)
{
	fflush(NULL); /* else the child would flush our buffered output again */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(test_proc_child_not_permitted());
	assert_int_equal(test_proc_wait(pid), TEST_PROC_OK);
}

static void
test_proc_drop_or_die(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL); /* else the child would flush our buffered output again */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		log_set_fd(p[1]);
		proc_drop_privileges_or_die("rampart-no-such-user-x");
		_exit(0); /* not reached when it works */
	}
	close(p[1]);
	assert_int_equal(test_proc_wait(pid), 1);

	char buf[1024];
	size_t len = 0;
	ssize_t r;
	while ((r = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(p[0]);
	buf[len] = '\0';
	assert_non_null(strstr(buf, "error"));
	assert_non_null(strstr(buf, "user=rampart-no-such-user-x"));
	/* exactly one line */
	assert_true(len > 0 && buf[len - 1] == '\n');
	assert_ptr_equal(strchr(buf, '\n'), buf + len - 1);
}

#define TEST_NOTIFY(fn)                                                                            \
	cmocka_unit_test_setup_teardown(fn, test_proc_notify_setup, test_proc_notify_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST_NOTIFY(test_proc_notify_ready),
	    TEST_NOTIFY(test_proc_notify_stopping),
	    TEST_NOTIFY(test_proc_notify_reloading),
	    TEST_NOTIFY(test_proc_notify_status),
	    TEST_NOTIFY(test_proc_notify_no_listener),
	    cmocka_unit_test(test_proc_notify_unset),
	    cmocka_unit_test(test_proc_drop_nobody),
	    cmocka_unit_test(test_proc_drop_errors),
	    cmocka_unit_test(test_proc_drop_not_permitted),
	    cmocka_unit_test(test_proc_drop_or_die),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
