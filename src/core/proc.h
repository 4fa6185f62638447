/* Process life: privilege drop and the systemd notification protocol. */
#pragma once

/*
 * Switches to user's uid, gid and supplementary groups and checks that root cannot be
 * regained. -ENOENT for an unknown user, -errno otherwise. The caller treats failure as fatal.
 */
int proc_drop_privileges(const char *user);
/* For daemons at start-up: drops or logs and exits 1. */
void proc_drop_privileges_or_die(const char *user);

/* sd_notify: >0 sent, 0 when not under systemd (no NOTIFY_SOCKET), -errno on failure. */
int proc_notify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC, as systemd's Type=notify-reload expects. */
int proc_notify_reloading(void);
int proc_notify_stopping(void);
int proc_notify_status(const char *status);
