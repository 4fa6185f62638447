/* The systemd unit or container a process belongs to, from /proc/PID/cgroup. */
#pragma once

#include <stddef.h>

/*
 * Maps the text of /proc/PID/cgroup (the cgroup v2 "0::" line, else the v1 name=systemd
 * line) to a name for people:
 *   /system.slice/ssh.service                           -> ssh.service
 *   /user.slice/user-1000.slice/session-3.scope         -> session-3.scope
 *   /user.slice/.../user@1000.service/app.slice/x.service -> user@1000.service/x.service
 *   /system.slice/docker-<id>.scope, /docker/<id>       -> docker:<first 12 of id>
 *   libpod-<id>.scope                                   -> podman:<12>
 *   cri-containerd-<id>.scope, crio-<id>.scope          -> containerd:<12>, cri-o:<12>
 *   /lxc.payload.NAME/..., /lxc/NAME/...                -> lxc:NAME
 * and "" when none applies (the root cgroup, slices only). Writes at most len bytes
 * including the NUL; -EINVAL when no cgroup line is found, -ENOBUFS when cut short.
 */
int port_cgroup_unit(const char *content, char *out, size_t len);
