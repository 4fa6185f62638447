/* cgroup path -> systemd unit or container name, by the naming conventions of each manager. */
#include "port_cgroup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Longest cgroup path component looked at; the kernel caps names at 255 bytes. */
#define COMPONENT_MAX 256
#define ID_SHOW 12

struct container_kind {
	const char *prefix;
	const char *suffix;
	const char *label;
};

/* Scope names the container managers give (systemd cgroup driver). */
static const struct container_kind scopes[] = {
    {"docker-", ".scope", "docker"},
    {"libpod-", ".scope", "podman"},
    {"cri-containerd-", ".scope", "containerd"},
    {"crio-", ".scope", "cri-o"},
};

/* The path of the v2 line ("0::/x") or of the v1 name=systemd line; NULL if neither. */
static const char *
find_path(const char *content, size_t *len)
{
	static const char *const keys[] = {"0::", "name=systemd:"};

	for (size_t k = 0; k < 2; k++) {
		for (const char *line = content; line && *line;) {
			const char *nl = strchr(line, '\n');
			const char *p = k == 0 ? (strncmp(line, keys[0], 3) == 0 ? line : NULL)
			                       : strstr(line, keys[1]);
			if (p && (!nl || p < nl)) {
				p += strlen(keys[k]);
				*len = nl ? (size_t)(nl - p) : strlen(p);
				return p;
			}
			line = nl ? nl + 1 : NULL;
		}
	}
	return NULL;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool
is_unit(const char *c)
{
	static const char *const kinds[] = {".service", ".scope", ".socket", ".mount", ".swap"};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (has_suffix(c, kinds[i]))
			return true;
	return false;
}

static bool
is_hex_id(const char *s, size_t n)
{
	if (n < ID_SHOW)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* out = a sep b[0..blen) */
static int
put(char *out, size_t len, const char *a, const char *sep, const char *b, size_t blen)
{
	int n = snprintf(out, len, "%s%s%.*s", a, sep, (int)blen, b);
	return n < 0 ? -EINVAL : (size_t)n >= len ? -ENOBUFS : 0;
}

/* A container label for component c (and the one before it, prev); false if none. */
static bool
container_of(const char *prev, const char *c, char *out, size_t len, int *r)
{
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		size_t pl = strlen(scopes[i].prefix), sl = strlen(scopes[i].suffix), n = strlen(c);
		if (n > pl + sl && strncmp(c, scopes[i].prefix, pl) == 0 &&
		    has_suffix(c, scopes[i].suffix) && is_hex_id(c + pl, n - pl - sl)) {
			*r = put(out, len, scopes[i].label, ":", c + pl, ID_SHOW);
			return true;
		}
	}
	if (strcmp(prev, "docker") == 0 && is_hex_id(c, strlen(c))) {
		*r = put(out, len, "docker", ":", c, ID_SHOW);
		return true;
	}
	bool payload = strncmp(c, "lxc.payload.", 12) == 0 && c[12];
	if (payload || strcmp(prev, "lxc") == 0) {
		const char *name = payload ? c + 12 : c;
		*r = put(out, len, "lxc", ":", name, strlen(name));
		return true;
	}
	return false;
}

struct walk {
	char unit[COMPONENT_MAX]; /* innermost unit seen */
	char user[COMPONENT_MAX]; /* user@UID.service when inside one */
	char prev[COMPONENT_MAX]; /* the previous component */
};

/* Returns 1 when c named a container (written to out), 0 to go on, or -errno. */
static int
walk_component(struct walk *w, const char *c, char *out, size_t len)
{
	int r = 0;

	if (container_of(w->prev, c, out, len, &r))
		return r < 0 ? r : 1;
	if (is_unit(c)) {
		if (strncmp(c, "user@", 5) == 0 && has_suffix(c, ".service") && !w->user[0])
			snprintf(w->user, sizeof(w->user), "%s", c);
		else
			snprintf(w->unit, sizeof(w->unit), "%s", c);
	}
	snprintf(w->prev, sizeof(w->prev), "%s", c);
	return 0;
}

static int
finish(const struct walk *w, char *out, size_t len)
{
	if (w->user[0] && w->unit[0])
		return put(out, len, w->user, "/", w->unit, strlen(w->unit));
	const char *one = w->user[0] ? w->user : w->unit;
	return put(out, len, "", "", one, strlen(one));
}

int
port_cgroup_unit(const char *content, char *out, size_t len)
{
	struct walk w = {{0}, {0}, {0}};
	size_t plen;
	const char *p = find_path(content, &plen);

	if (len == 0)
		return -ENOBUFS;
	out[0] = '\0';
	if (!p)
		return -EINVAL;
	for (size_t i = 0; i < plen;) {
		size_t j = i;
		while (j < plen && p[j] != '/')
			j++;
		if (j > i && j - i < COMPONENT_MAX) {
			char c[COMPONENT_MAX];
			memcpy(c, p + i, j - i);
			c[j - i] = '\0';
			int r = walk_component(&w, c, out, len);
			if (r != 0)
				return r < 0 ? r : 0;
		}
		i = j + 1;
	}
	return finish(&w, out, len);
}
