/* rampart port: which process listens on a port. Options and output; the lookup is src/port. */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/esc.h"
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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define VERB "port"
/* Cap on the JSON text: 64 MiB is some 100,000 sockets with long command lines. */
#define JSON_MAX (64u << 20)
/* Room for one output field, escaped: an address, a unix path, a user or namespace name. */
#define FIELD_MAX 640
/* Users remembered by name (a host listing has a handful). */
#define USER_CACHE 64

struct opts {
	struct port_query q;
	bool verbose, pids, json, kill, no_header;
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
parse_pid(const char *s, struct opts *o)
{
	long v = 0;

	for (const char *p = s; *p && v <= INT32_MAX; p++)
		v = *p >= '0' && *p <= '9' ? v * 10 + (*p - '0') : -1;
	if (!*s || s[0] == '0' || v <= 0 || v > INT32_MAX)
		return cmd_usage_error(VERB, "--pid '%s': not a process id", s);
	o->q.pid = (int32_t)v;
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
	case 'H':
		o->no_header = true;
		return 0;
	case 'p':
		return parse_pid(optarg, o);
	case 'k':
		o->kill = true;
		if (optarg && port_args_signal(optarg, &o->sig) < 0)
			return cmd_usage_error(VERB, "unknown signal '%s'", optarg);
		return 0;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

/* "127.0.0.1:0080" -> "127.0.0.1:80", "08-010" -> "8-10": the ports part only. */
static void
without_leading_zeros(const char *s, char *out, size_t size)
{
	const char *ports = strrchr(s, ':') ? strrchr(s, ':') + 1 : s;
	size_t n = 0;
	bool start = false; /* at the start of a number in the ports part, or in its zeros */

	for (const char *p = s; *p && n + 1 < size; p++) {
		start = start || p == ports;
		bool zero = start && *p == '0' && p[1] >= '0' && p[1] <= '9';
		if (!zero)
			out[n++] = *p;
		start = zero || (p >= ports && *p == '-');
	}
	out[n] = '\0';
}

static int
target_error(int r, const char *s)
{
	switch (r) {
	case -ERANGE:
		return cmd_usage_error(VERB, "port '%s': must be 1..65535", s);
	case -EILSEQ: {
		char fixed[128];
		without_leading_zeros(s, fixed, sizeof(fixed));
		return cmd_usage_error(
		    VERB, "port '%s': no leading zeros, please (did you mean %s?)", s, fixed);
	}
	case -EDOM:
		return cmd_usage_error(VERB, "'%s': a range goes from low to high", s);
	case -E2BIG:
		return cmd_usage_error(VERB,
		                       "'%s': a range of at most %u ports (or no port: every one)",
		                       s, PORT_RANGE_MAX);
	case -EDESTADDRREQ:
		return cmd_usage_error(VERB, "'%s': give a port too, as ADDRESS:PORT", s);
	case -EADDRNOTAVAIL:
		return cmd_usage_error(
		    VERB, "'%s': give an IP address (or localhost), not a host name", s);
	default:
		return cmd_usage_error(
		    VERB, "'%s': not a port, range, ADDRESS:PORT, tcp, udp or unix", s);
	}
}

/* A unix socket: after the word unix, or any word that starts with '/' (as fuser takes). */
static bool
is_unix_word(const char *s, unsigned protos)
{
	return protos == PORT_PROTO_UNIX || s[0] == '/';
}

static int
add_target(const char *s, struct port_filter *f)
{
	struct port_target t[2];
	bool unix_word = is_unix_word(s, f->protos);
	int n = unix_word ? 1 : port_args_target(s, t);

	if (n < 0)
		return target_error(n, s);
	if (unix_word && (!*s || strlen(s) >= PORT_UNIX_NAME_MAX))
		return cmd_usage_error(VERB, "'%s': not a unix socket name", s);
	if (unix_word)
		t[0] = (struct port_target){.path = s};
	if (f->ntargets + (size_t)n > PORT_TARGETS_MAX)
		return cmd_usage_error(VERB, "at most %d ports or addresses at once",
		                       PORT_TARGETS_MAX);
	for (int i = 0; i < n; i++)
		f->targets[f->ntargets++] = t[i];
	return 0;
}

/* Paths without the word unix: the protocols follow from the words given. */
static int
protos_from_targets(struct port_filter *f, bool named)
{
	unsigned want = 0;

	for (size_t i = 0; i < f->ntargets; i++)
		want |= f->targets[i].path ? PORT_PROTO_UNIX : PORT_PROTO_ALL;
	if (!(want & PORT_PROTO_UNIX) || f->protos == PORT_PROTO_UNIX)
		return 0;
	if (named)
		return cmd_usage_error(VERB, "a socket path goes with unix, not %s",
		                       port_sock_proto_name((uint8_t)f->protos));
	f->protos = want;
	return 0;
}

static bool
all_letters(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

/* [tcp|udp|unix] [PORT | LO-HI | ADDRESS:PORT | PATH]... */
static int
parse_words(int n, char **w, struct opts *o)
{
	unsigned proto;
	bool named = n >= 1 && port_args_proto(w[0], &proto) == 0;

	if (named) {
		o->q.filter.protos = proto;
		w++, n--;
	} else if (n >= 2 && all_letters(w[0]) && strcasecmp(w[0], "localhost") != 0) {
		return cmd_usage_error(VERB, "'%s': expected tcp, udp or unix", w[0]);
	}
	if (n >= 1 && port_args_proto(w[0], &proto) == 0)
		return cmd_usage_error(VERB, "give one protocol, then the ports");
	for (int i = 0; i < n; i++) {
		int r = add_target(w[i], &o->q.filter);
		if (r != 0)
			return r;
	}
	return protos_from_targets(&o->q.filter, named);
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
	    {"no-header", no_argument, NULL, 'H'},
	    {"pid", required_argument, NULL, 'p'},
	    {0},
	};
	int c, r;

	*o = (struct opts){.q.filter.protos = PORT_PROTO_ALL, .sig = SIGTERM};
	o->q.no_diag = getenv("RAMPART_PORT_NO_DIAG") != NULL;
	if ((r = check_negative(argc, argv)) != 0)
		return r;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "avHk::", longopts, NULL)) != -1)
		if ((r = parse_option(c, argc, argv, o)) != 0)
			return r;
	if (o->pids && o->json)
		return cmd_usage_error(VERB, "--pids and --json do not go together");
	if (o->q.pid && o->kill)
		return cmd_usage_error(VERB, "--pid and --kill do not go together (use kill)");
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
	if (s->proto == PORT_PROTO_UNIX)
		esc_copy(buf, len, s->name ? s->name : "*");
	else if (net_addr_format(&s->local, with_port, buf, len) < 0)
		snprintf(buf, len, "?");
}

/* The peer as text, "-" when there is none (listening, unconnected). */
static void
format_peer(const struct port_sock *s, bool with_port, char *buf, size_t len)
{
	if (s->proto == PORT_PROTO_UNIX && s->peer_inode)
		snprintf(buf, len, "inode %u", s->peer_inode);
	else if (s->proto == PORT_PROTO_UNIX || s->state == TCP_LISTEN || s->remote.port == 0 ||
	         net_addr_format(&s->remote, with_port, buf, len) < 0)
		snprintf(buf, len, "-");
}

/* The ip-netns name of a namespace, NULL when it has none. */
static const char *
netns_name(const struct out *w, uint64_t inode)
{
	const struct port_netns *ns = port_netns_find(&w->r->netns, inode);
	return ns && ns->name[0] ? ns->name : NULL;
}

/* The namespace as people know it: its ip-netns name, else its inode; "-" for our own. */
static void
format_netns(const struct out *w, uint64_t inode, char *buf, size_t len)
{
	const char *name = netns_name(w, inode);

	if (inode == w->r->self_netns)
		snprintf(buf, len, "-");
	else if (name)
		esc_copy(buf, len, name);
	else
		snprintf(buf, len, "%llu", (unsigned long long)inode);
}

/* ss's names for the unix socket types, which the PROTO column shows. */
static const char *
proto_column(const struct port_sock *s)
{
	if (s->proto != PORT_PROTO_UNIX)
		return port_sock_proto_name(s->proto);
	return s->type == SOCK_DGRAM ? "u_dgr" : s->type == SOCK_SEQPACKET ? "u_seq" : "u_str";
}

struct cols {
	int proto, local, peer, netns, state, user, pid;
};

enum { F_LOCAL, F_PEER, F_NETNS, F_USER, F_PID, F_COMMAND, F_N };

static void
row_fields(struct out *w, const struct row *row, char (*f)[FIELD_MAX])
{
	format_local(row->s, true, f[F_LOCAL], FIELD_MAX);
	format_peer(row->s, true, f[F_PEER], FIELD_MAX);
	format_netns(w, row->s->netns, f[F_NETNS], FIELD_MAX);
	esc_copy(f[F_USER], FIELD_MAX, user_name(w, row_uid(row)));
	if (row->pid > 0)
		snprintf(f[F_PID], FIELD_MAX, "%d", row->pid);
	else
		snprintf(f[F_PID], FIELD_MAX, "-");
	esc_copy(f[F_COMMAND], FIELD_MAX, row->info ? row->info->comm : "-");
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
	struct cols c = {5, 5, 4, 5, 5, 4, 3}; /* the headers' widths */
	char f[F_N][FIELD_MAX];

	for (size_t i = 0; i < w->n; i++) {
		row_fields(w, &w->rows[i], f);
		c.proto = widen(c.proto, proto_column(w->rows[i].s));
		c.local = widen(c.local, f[F_LOCAL]);
		c.peer = widen(c.peer, f[F_PEER]);
		c.netns = widen(c.netns, f[F_NETNS]);
		c.state = widen(c.state, port_sock_state_name(w->rows[i].s->state));
		c.user = widen(c.user, f[F_USER]);
		c.pid = widen(c.pid, f[F_PID]);
	}
	return c;
}

/* Connected sockets are listed with --all and --pid: they get the PEER column. */
static bool
show_peer(const struct out *w)
{
	return w->o->q.filter.all_states || w->o->q.pid > 0;
}

static void
print_verbose(const struct row *row)
{
	const struct port_proc_info *p = row->info;

	if (!p)
		return;
	/* another user's bytes: escaped, so they cannot drive our terminal */
	fputs("      cmdline: ", stdout);
	esc_fputs(p->cmdline ? p->cmdline : "-", stdout);
	fputs("\n      exe:     ", stdout);
	esc_fputs(p->exe ? p->exe : "-", stdout);
	fputs("\n      unit:    ", stdout);
	esc_fputs(p->unit[0] ? p->unit : "-", stdout);
	fputs("\n", stdout);
}

static void
print_row(struct out *w, const struct row *row, const struct cols *c)
{
	char f[F_N][FIELD_MAX];

	row_fields(w, row, f);
	printf("%-*s %-*s ", c->proto, proto_column(row->s), c->local, f[F_LOCAL]);
	if (show_peer(w))
		printf("%-*s ", c->peer, f[F_PEER]);
	if (w->o->q.all_netns)
		printf("%-*s ", c->netns, f[F_NETNS]);
	printf("%-*s %-*s %*s %s\n", c->state, port_sock_state_name(row->s->state), c->user,
	       f[F_USER], c->pid, f[F_PID], f[F_COMMAND]);
	if (w->o->verbose)
		print_verbose(row);
}

static void
print_table(struct out *w)
{
	struct cols c = measure(w);

	if (!w->o->no_header) {
		printf("%-*s %-*s ", c.proto, "PROTO", c.local, "LOCAL");
		if (show_peer(w))
			printf("%-*s ", c.peer, "PEER");
		if (w->o->q.all_netns)
			printf("%-*s ", c.netns, "NETNS");
		printf("%-*s %-*s %*s %s\n", c.state, "STATE", c.user, "USER", c.pid, "PID",
		       "COMMAND");
	}
	for (size_t i = 0; i < w->n; i++)
		print_row(w, &w->rows[i], &c);
}

/* ,"key":"value" (and "key_raw" for bytes that are not UTF-8) or ,"key":null when empty. */
static int
json_field(struct buf *b, const char *key, const char *value)
{
	int r = buf_append_str(b, ",");
	if (r >= 0)
		r = value && value[0] ? json_member(b, key, value)
		                      : buf_printf(b, "\"%s\":null", key);
	return r;
}

/* Where the socket is: local and peer addresses and ports, or a unix socket's names. */
static int
json_ends(struct buf *b, const struct port_sock *s)
{
	char addr[NET_ADDR_STRLEN];

	if (s->proto == PORT_PROTO_UNIX) {
		int r = buf_printf(b, ",\"type\":\"%s\"", port_sock_type_name(s->type));
		if (r >= 0)
			r = json_field(b, "local", s->name);
		if (r >= 0)
			r = buf_append_str(b, ",\"port\":null,\"peer\":null,\"peer_port\":null");
		if (r >= 0)
			r = s->peer_inode ? buf_printf(b, ",\"peer_inode\":%u", s->peer_inode)
			                  : buf_append_str(b, ",\"peer_inode\":null");
		return r;
	}
	format_local(s, false, addr, sizeof(addr));
	int r = json_field(b, "local", addr);
	if (r >= 0)
		r = buf_printf(b, ",\"port\":%u", s->local.port);
	format_peer(s, false, addr, sizeof(addr));
	bool peer = strcmp(addr, "-") != 0;
	if (r >= 0)
		r = json_field(b, "peer", peer ? addr : NULL);
	if (r >= 0)
		r = peer ? buf_printf(b, ",\"peer_port\":%u", s->remote.port)
		         : buf_append_str(b, ",\"peer_port\":null");
	return r;
}

static int
json_row(struct out *w, struct buf *b, const struct row *row)
{
	const struct port_proc_info *p = row->info;

	int r = buf_printf(b, "{\"proto\":\"%s\"", port_sock_proto_name(row->s->proto));
	if (r >= 0)
		r = json_ends(b, row->s);
	if (r >= 0)
		r = buf_printf(b, ",\"state\":\"%s\"", port_sock_state_name(row->s->state));
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
		r = buf_printf(b, ",\"inode\":%u,\"netns\":%llu", row->s->inode,
		               (unsigned long long)row->s->netns);
	if (r >= 0)
		r = json_field(b, "netns_name", netns_name(w, row->s->netns));
	return r < 0 ? r : buf_append_str(b, "}");
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
report_gaps(const struct port_result *r, bool ownerless)
{
	char msg[256] = "";
	size_t n = 0;

	if (r->denied_procs && ownerless)
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

/* Whether a listed socket that has a file behind it was found without its holder. */
static bool
any_ownerless(const struct out *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->rows[i].pid <= 0 && w->rows[i].s->inode)
			return true;
	return false;
}

static int
find_error(const struct opts *o, int err)
{
	if (o->q.pid > 0 && err == -ESRCH) {
		cmd_error(VERB, "--pid %d: no such process", o->q.pid);
		return CMD_EXIT_NEGATIVE;
	}
	if (o->q.pid > 0 && (err == -EACCES || err == -EPERM)) {
		cmd_error(VERB, "--pid %d: cannot read its open files or network namespace (%s)",
		          o->q.pid, geteuid() ? "needs root" : strerror(-err));
		return CMD_EXIT_NEGATIVE;
	}
	if (err == -EPROTONOSUPPORT && (o->q.filter.protos & PORT_PROTO_UNIX)) {
		cmd_error(VERB, "cannot list unix sockets: no sock_diag for them (unix_diag)");
		return CMD_EXIT_TEMP;
	}
	cmd_error(VERB, "cannot list sockets: %s", strerror(-err));
	return CMD_EXIT_TEMP;
}

/* 0 with something found; 1 when not, or when --pids/--kill found no process to name. */
static int
finish(const struct opts *o, struct out *w)
{
	int ret = w->r->socks.n ? CMD_EXIT_OK : CMD_EXIT_NEGATIVE;

	report_gaps(w->r, any_ownerless(w));
	if ((o->pids || o->kill) && w->npids == 0)
		ret = CMD_EXIT_NEGATIVE; /* `kill $(rampart port --pids P)` must not run bare */
	if (o->kill && kill_owners(w) != CMD_EXIT_OK)
		ret = CMD_EXIT_NEGATIVE;
	return ret;
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
	ret = err < 0 ? find_error(&o, err) : finish(&o, &w);
	free(w.rows);
	free(w.pids);
	for (size_t i = 0; w.infos && i < w.npids; i++)
		port_proc_info_free(&w.infos[i]);
	free(w.infos);
	port_result_free(&r);
	return ret;
}
