#include "proc.h"

#include "cleanup.h"
#include "log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

/* NSS entries are small; the cap stops a broken backend from growing us without bound. */
#define PROC_PW_BUF_MIN 1024
#define PROC_PW_BUF_MAX (1024 * 1024)

struct proc_ids {
	uid_t uid;
	gid_t gid;
};

static int
proc_lookup_user(const char *user, struct proc_ids *ids)
{
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size =
	    hint > PROC_PW_BUF_MIN && hint < PROC_PW_BUF_MAX ? (size_t)hint : PROC_PW_BUF_MIN;
	for (; size <= PROC_PW_BUF_MAX; size *= 2) {
		_cleanup_free_ char *buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		struct passwd pw, *res = NULL;
		int r = getpwnam_r(user, &pw, buf, size, &res);
		if (r == ERANGE)
			continue;
		/* some NSS modules report "no such user" as an error rather than a NULL result */
		if ((r == 0 && !res) || r == ENOENT || r == ESRCH)
			return -ENOENT;
		if (r != 0)
			return -r;
		*ids = (struct proc_ids){.uid = pw.pw_uid, .gid = pw.pw_gid};
		return 0;
	}
	return -ERANGE;
}

/* Whatever the calls returned, trust only what the kernel now says about us. */
static int
proc_verify_dropped(const struct proc_ids *ids)
{
	/* a root target keeps every power anyway; probing would only change its gid */
	if (ids->uid != 0) {
		if (setuid(0) == 0 || seteuid(0) == 0)
			return -EPERM;
		if (ids->gid != 0 && (setgid(0) == 0 || setegid(0) == 0))
			return -EPERM;
	}
	if (getuid() != ids->uid || geteuid() != ids->uid || getgid() != ids->gid ||
	    getegid() != ids->gid)
		return -EPERM;
	return 0;
}

int
proc_drop_privileges(const char *user)
{
	if (!user || !*user)
		return -EINVAL;
	/* -1 cannot pass the final check, should a lookup path ever leave ids unset */
	struct proc_ids ids = {.uid = (uid_t)-1, .gid = (gid_t)-1};
	int r = proc_lookup_user(user, &ids);
	if (r < 0)
		return r;
	/* groups before ids: once the uid is gone we may no longer change them */
	if (initgroups(user, ids.gid) < 0)
		return -errno;
	/* the setres* forms also replace the saved ids, which plain setuid() keeps for non-root */
	if (setresgid(ids.gid, ids.gid, ids.gid) < 0)
		return -errno;
	if (setresuid(ids.uid, ids.uid, ids.uid) < 0)
		return -errno;
	return proc_verify_dropped(&ids);
}

void
proc_drop_privileges_or_die(const char *user)
{
	int r = proc_drop_privileges(user);
	if (r >= 0)
		return;
	char quser[256], qerr[256];
	log_quote(quser, sizeof(quser), user ? user : "");
	log_quote(qerr, sizeof(qerr), strerror(-r));
	log_fatal("cannot drop privileges user=%s error=%s", quser, qerr);
}

int
proc_notify_ready(void)
{
	return sd_notify(0, "READY=1");
}

int
proc_notify_reloading(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return -errno;
	unsigned long long usec =
	    (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
	return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

int
proc_notify_stopping(void)
{
	return sd_notify(0, "STOPPING=1");
}

int
proc_notify_status(const char *status)
{
	/* a newline would start another assignment: STATUS could then forge READY=1 etc. */
	if (!status || strchr(status, '\n'))
		return -EINVAL;
	return sd_notifyf(0, "STATUS=%s", status);
}
