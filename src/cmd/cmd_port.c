/* rampart port: which process listens on a port. Options and output; the lookup is src/port. */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "port/port_args.h"
#include "port/port_find.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERB "port"
/* Cap on the JSON text: 64 MiB is some 100,000 sockets with long command lines. */
#define JSON_MAX (64u << 20)
/* Room for one output field: an address, a user or namespace name. */
#define FIELD_MAX 320
/* Users remembered by name (a host listing has a handful). */
#define USER_CACHE 64

struct opts {
	struct port_query q;
	bool verbose, pids, json, kill;
	int sig;
};

/* One output line: a socket and one process holding it (pid 0: none found). */
struct row {
	const struct port_sock *s;
	int32_t pid;
	const struct port_proc_info *info; /* NULL without a process, or when it is gone */
};

struct out {
	const struct opts *o;
	struct port_result *r;
	struct row *rows;
	size_t n;
	int32_t *pids;                /* unique, ascending */
	struct port_proc_info *infos; /* parallel to pids */
	size_t npids;
	struct {
		uint32_t uid;
		char name[64];
	} users[USER_CACHE];
	size_t nusers;
};

static bool
is_negative_number(const char *s)
{
	if (s[0] != '-' || !s[1])
		return false;
	for (s++; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* getopt would call "-5" an unknown option; it is a port out of range. */
static int
check_negative(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (!is_negative_number(argv[i]))
			continue;
		if (strcmp(argv[i - 1], "-k") == 0 || strcmp(argv[i - 1], "--kill") == 0)
			return cmd_usage_error(VERB, "give the signal as --kill=%s", argv[i] + 1);
		return cmd_usage_error(VERB, "port '%s': must be 1..65535", argv[i]);
	}
	return 0;
}

static int
parse_option(int c, int argc, char **argv, struct opts *o)
{
	switch (c) {
	case 'a':
		o->q.filter.all_states = true;
		return 0;
	case 'v':
		o->verbose = true;
		return 0;
	case 'P':
		o->pids = true;
		return 0;
	case 'J':
		o->json = true;
		return 0;
	case 'N':
		o->q.all_netns = true;
		return 0;
	case 'k':
		o->kill = true;
		if (optarg && port_args_signal(optarg, &o->sig) < 0)
			return cmd_usage_error(VERB, "unknown signal '%s'", optarg);
		return 0;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
parse_target(const char *s, struct port_filter *f)
{
	int r = port_args_target(s, f);
	if (r == -ERANGE)
		return cmd_usage_error(VERB, "port '%s': must be 1..65535", s);
	if (r == -EDESTADDRREQ)
		return cmd_usage_error(VERB, "'%s': give a port too, as ADDRESS:PORT", s);
	if (r < 0)
		return cmd_usage_error(VERB, "'%s': not a port, ADDRESS:PORT, tcp or udp", s);
	return 0;
}

/* [tcp|udp] [PORT | ADDRESS:PORT] */
static int
parse_words(int n, char **w, struct opts *o)
{
	unsigned proto;

	if (n > 2)
		return cmd_usage_error(VERB, "unexpected argument '%s'", w[2]);
	if (n >= 1 && port_args_proto(w[0], &proto) == 0) {
		o->q.filter.protos = proto;
		w++, n--;
	} else if (n == 2) {
		return cmd_usage_error(VERB, "'%s': expected tcp or udp", w[0]);
	}
	if (n == 1 && port_args_proto(w[0], &proto) == 0)
		return cmd_usage_error(VERB, "give one protocol, then the port");
	return n == 1 ? parse_target(w[0], &o->q.filter) : 0;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"all", no_argument, NULL, 'a'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"pids", no_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'J'},
	    {"kill", optional_argument, NULL, 'k'},
	    {"all-netns", no_argument, NULL, 'N'},
	    {0},
	};
	int c, r;

	*o = (struct opts){.q.filter.protos = PORT_PROTO_ALL, .sig = SIGTERM};
	o->q.no_diag = getenv("RAMPART_PORT_NO_DIAG") != NULL;
	if ((r = check_negative(argc, argv)) != 0)
		return r;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "avk::", longopts, NULL)) != -1)
		if ((r = parse_option(c, argc, argv, o)) != 0)
			return r;
	if (o->pids && o->json)
		return cmd_usage_error(VERB, "--pids and --json do not go together");
	return parse_words(argc - optind, argv + optind, o);
}

static int
i32_cmp(const void *pa, const void *pb)
{
	int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
	return (a > b) - (a < b);
}

static int
add_row(struct out *w, size_t *cap, const struct port_sock *s, int32_t pid)
{
	if (w->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		if (ncap > PORT_OWNER_MAX + PORT_SOCK_MAX)
			return -ENOBUFS;
		struct row *v = reallocarray(w->rows, ncap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->rows = v;
		*cap = ncap;
	}
	w->rows[w->n++] = (struct row){.s = s, .pid = pid};
	return 0;
}

/* A row per socket and distinct process; a socket nobody holds gets one row with pid 0. */
static int
build_rows(struct out *w)
{
	size_t cap = 0;

	for (size_t i = 0; i < w->r->socks.n; i++) {
		const struct port_sock *s = &w->r->socks.v[i];
		size_t n = 0;
		const struct port_owner *ow =
		    s->inode ? port_owner_find(&w->r->owners, s->inode, &n) : NULL;
		int r = n ? 0 : add_row(w, &cap, s, 0);
		for (size_t k = 0; r == 0 && k < n; k++)
			if (k == 0 || ow[k].pid != ow[k - 1].pid)
				r = add_row(w, &cap, s, ow[k].pid);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Reads each distinct process once, however many sockets it holds. */
static int
load_infos(struct out *w)
{
	bool full = w->o->verbose || w->o->json;

	w->pids = calloc(w->n ? w->n : 1, sizeof(*w->pids));
	if (!w->pids)
		return -ENOMEM;
	for (size_t i = 0; i < w->n; i++)
		if (w->rows[i].pid > 0)
			w->pids[w->npids++] = w->rows[i].pid;
	qsort(w->pids, w->npids, sizeof(*w->pids), i32_cmp);
	size_t u = 0;
	for (size_t i = 0; i < w->npids; i++)
		if (u == 0 || w->pids[i] != w->pids[u - 1])
			w->pids[u++] = w->pids[i];
	w->npids = u;
	if (w->o->pids)
		return 0; /* only the numbers are printed */
	w->infos = calloc(u ? u : 1, sizeof(*w->infos));
	if (!w->infos)
		return -ENOMEM;
	for (size_t i = 0; i < u; i++) {
		int r = port_proc_info_read(w->r->proc_fd, w->pids[i], full, &w->infos[i]);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			w->infos[i].comm[0] = '\0'; /* gone since the scan */
	}
	for (size_t i = 0; i < w->n; i++) {
		int32_t *p = bsearch(&w->rows[i].pid, w->pids, u, sizeof(*w->pids), i32_cmp);
		if (p && w->infos[p - w->pids].comm[0])
			w->rows[i].info = &w->infos[p - w->pids];
	}
	return 0;
}

static const char *
user_name(struct out *w, uint32_t uid)
{
	for (size_t i = 0; i < w->nusers; i++)
		if (w->users[i].uid == uid)
			return w->users[i].name;
	size_t i = w->nusers < USER_CACHE ? w->nusers++ : USER_CACHE - 1;
	const struct passwd *pw = getpwuid(uid);
	w->users[i].uid = uid;
	if (pw && strlen(pw->pw_name) < sizeof(w->users[i].name))
		snprintf(w->users[i].name, sizeof(w->users[i].name), "%s", pw->pw_name);
	else
		snprintf(w->users[i].name, sizeof(w->users[i].name), "%u", uid);
	return w->users[i].name;
}

static uint32_t
row_uid(const struct row *row)
{
	return row->info ? row->info->uid : row->s->uid;
}

static void
format_local(const struct port_sock *s, bool with_port, char *buf, size_t len)
{
	if (net_addr_format(&s->local, with_port, buf, len) < 0)
		snprintf(buf, len, "?");
}

/* The namespace as people know it: its ip-netns name, else its inode; "-" for our own. */
static void
format_netns(const struct out *w, uint64_t inode, char *buf, size_t len)
{
	const struct port_netns *ns = port_netns_find(&w->r->netns, inode);

	if (inode == w->r->self_netns)
		snprintf(buf, len, "-");
	else if (ns && ns->name[0])
		snprintf(buf, len, "%s", ns->name);
	else
		snprintf(buf, len, "%llu", (unsigned long long)inode);
}

struct cols {
	int local, peer, netns, state, user, pid;
};

static void
row_fields(struct out *w, const struct row *row, char (*f)[FIELD_MAX])
{
	format_local(row->s, true, f[0], FIELD_MAX);
	if (row->s->state == TCP_LISTEN || row->s->remote.port == 0 ||
	    net_addr_format(&row->s->remote, true, f[1], FIELD_MAX) < 0)
		snprintf(f[1], FIELD_MAX, "-");
	format_netns(w, row->s->netns, f[2], FIELD_MAX);
	snprintf(f[3], FIELD_MAX, "%s", user_name(w, row_uid(row)));
	if (row->pid > 0)
		snprintf(f[4], FIELD_MAX, "%d", row->pid);
	else
		snprintf(f[4], FIELD_MAX, "-");
}

static int
widen(int cur, const char *s)
{
	int n = (int)strlen(s);
	return n > cur ? n : cur;
}

static struct cols
measure(struct out *w)
{
	struct cols c = {5, 4, 5, 5, 4, 3}; /* the headers' widths */
	char f[5][FIELD_MAX];

	for (size_t i = 0; i < w->n; i++) {
		row_fields(w, &w->rows[i], f);
		c.local = widen(c.local, f[0]);
		c.peer = widen(c.peer, f[1]);
		c.netns = widen(c.netns, f[2]);
		c.state = widen(c.state, port_sock_state_name(w->rows[i].s->state));
		c.user = widen(c.user, f[3]);
		c.pid = widen(c.pid, f[4]);
	}
	return c;
}

static void
print_verbose(const struct row *row)
{
	const struct port_proc_info *p = row->info;

	if (!p)
		return;
	printf("      cmdline: %s\n", p->cmdline ? p->cmdline : "-");
	printf("      exe:     %s\n", p->exe ? p->exe : "-");
	printf("      unit:    %s\n", p->unit[0] ? p->unit : "-");
}

static void
print_row(struct out *w, const struct row *row, const struct cols *c)
{
	char f[5][FIELD_MAX];

	row_fields(w, row, f);
	printf("%-5s %-*s ", port_sock_proto_name(row->s->proto), c->local, f[0]);
	if (w->o->q.filter.all_states)
		printf("%-*s ", c->peer, f[1]);
	if (w->o->q.all_netns)
		printf("%-*s ", c->netns, f[2]);
	printf("%-*s %-*s %*s %s\n", c->state, port_sock_state_name(row->s->state), c->user, f[3],
	       c->pid, f[4], row->info ? row->info->comm : "-");
	if (w->o->verbose)
		print_verbose(row);
}

static void
print_table(struct out *w)
{
	struct cols c = measure(w);

	printf("%-5s %-*s ", "PROTO", c.local, "LOCAL");
	if (w->o->q.filter.all_states)
		printf("%-*s ", c.peer, "PEER");
	if (w->o->q.all_netns)
		printf("%-*s ", c.netns, "NETNS");
	printf("%-*s %-*s %*s %s\n", c.state, "STATE", c.user, "USER", c.pid, "PID", "COMMAND");
	for (size_t i = 0; i < w->n; i++)
		print_row(w, &w->rows[i], &c);
}

/* "key":"value" or "key":null for an empty or missing value. */
static int
json_field(struct buf *b, const char *key, const char *value)
{
	int r = buf_printf(b, ",\"%s\":", key);
	if (r >= 0)
		r = value && value[0] ? json_string(b, value) : buf_append_str(b, "null");
	return r;
}

static int
json_row(struct out *w, struct buf *b, const struct row *row)
{
	const struct port_proc_info *p = row->info;
	char local[NET_ADDR_STRLEN];

	format_local(row->s, false, local, sizeof(local));
	int r = buf_printf(b, "{\"proto\":\"%s\"", port_sock_proto_name(row->s->proto));
	if (r >= 0)
		r = json_field(b, "local", local);
	if (r >= 0)
		r = buf_printf(b, ",\"port\":%u,\"state\":\"%s\"", row->s->local.port,
		               port_sock_state_name(row->s->state));
	if (r >= 0)
		r = row->pid > 0 ? buf_printf(b, ",\"pid\":%d", row->pid)
		                 : buf_append_str(b, ",\"pid\":null");
	if (r >= 0)
		r = json_field(b, "user", user_name(w, row_uid(row)));
	if (r >= 0)
		r = buf_printf(b, ",\"uid\":%u", row_uid(row));
	if (r >= 0)
		r = json_field(b, "command", p ? p->comm : NULL);
	if (r >= 0)
		r = json_field(b, "cmdline", p ? p->cmdline : NULL);
	if (r >= 0)
		r = json_field(b, "exe", p ? p->exe : NULL);
	if (r >= 0)
		r = json_field(b, "unit", p ? p->unit : NULL);
	if (r >= 0)
		r = buf_printf(b, ",\"netns\":%llu}", (unsigned long long)row->s->netns);
	return r;
}

static int
print_json(struct out *w)
{
	_cleanup_buf_ struct buf b = BUF_INIT(JSON_MAX);
	int r = buf_append_str(&b, "[");

	for (size_t i = 0; r >= 0 && i < w->n; i++) {
		r = buf_append_str(&b, i ? ",\n" : "\n");
		if (r >= 0)
			r = json_row(w, &b, &w->rows[i]);
	}
	if (r >= 0)
		r = buf_append_str(&b, w->n ? "\n]\n" : "]\n");
	if (r < 0)
		return r;
	fwrite(b.data, 1, b.len, stdout);
	return 0;
}

/* Signals every distinct owner but ourselves; 0, or 1 when any could not be signalled. */
static int
kill_owners(const struct out *w)
{
	int ret = CMD_EXIT_OK;

	for (size_t i = 0; i < w->npids; i++) {
		if (w->pids[i] == getpid())
			continue;
		if (kill(w->pids[i], w->o->sig) < 0) {
			cmd_error(VERB, "cannot signal %d: %s", w->pids[i], strerror(errno));
			ret = CMD_EXIT_NEGATIVE;
		}
	}
	return ret;
}

static const char *
plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* Gaps in what we could see: one line after the answer, however many files were unreadable. */
static void
report_gaps(const struct port_result *r)
{
	char msg[256] = "";
	size_t n = 0;

	if (r->denied_procs && r->socks.n)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, ", the open files of %zu %s",
		                      r->denied_procs,
		                      plural(r->denied_procs, "process", "processes"));
	if (r->denied_netns && n < sizeof(msg))
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, ", %zu network %s", r->denied_netns,
		                      plural(r->denied_netns, "namespace", "namespaces"));
	if (r->hidden_netns && n < sizeof(msg))
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, ", the network namespace of %zu %s",
		                      r->hidden_netns,
		                      plural(r->hidden_netns, "process", "processes"));
	if (n)
		cmd_error(VERB, "could not read%s (%s): owners may be missing", msg + 1,
		          geteuid() ? "needs root" : "permission denied");
}

static int
output(struct out *w)
{
	int r = build_rows(w);
	if (r >= 0)
		r = load_infos(w);
	if (r < 0)
		return r;
	if (w->o->pids)
		for (size_t i = 0; i < w->npids; i++)
			printf("%d\n", w->pids[i]);
	else if (w->o->json)
		r = print_json(w);
	else if (w->n)
		print_table(w);
	fflush(stdout);
	return r;
}

int
cmd_port(int argc, char **argv)
{
	struct opts o;
	struct port_result r;
	int ret = parse_args(argc, argv, &o);

	if (ret != 0)
		return ret;
	struct out w = {.o = &o, .r = &r};
	int err = port_find(&o.q, &r);
	if (err >= 0)
		err = output(&w);
	if (err < 0) {
		cmd_error(VERB, "cannot list sockets: %s", strerror(-err));
		ret = CMD_EXIT_TEMP;
	} else {
		report_gaps(&r);
		ret = r.socks.n ? CMD_EXIT_OK : CMD_EXIT_NEGATIVE;
		if (o.kill && kill_owners(&w) != CMD_EXIT_OK)
			ret = CMD_EXIT_NEGATIVE;
	}
	free(w.rows);
	free(w.pids);
	for (size_t i = 0; w.infos && i < w.npids; i++)
		port_proc_info_free(&w.infos[i]);
	free(w.infos);
	port_result_free(&r);
	return ret;
}
