/*
 * stalwart mail-auth's SPF tests (resources/spf/ (*.yml)), read line by line as its own test
 * does: sections split by "---"; `spf:`/`exp:` NAME TEXT, `a:`/`aaaa:` NAME ADDR,..., `ptr:` ADDR
 * NAME,..., `mx:` NAME ADDR,... (each address an exchange of its own) replace what a name had,
 * for the rest of the file; `domain:` (HELO), `sender:`, `ip:` set the query and `expect:`
 * RESULT [EXPLANATION] runs it. Names containing "_dns_error." fail with SERVFAIL, others not
 * listed do not exist. Like stalwart's verify_spf(), the HELO identity is checked first and
 * MAIL FROM only when HELO passes.
 */
#include "mail/spf_macro.h"
#include "spf-suite.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 4096
#define RECORDS_MAX 4096

struct srec {
	char name[DNS_NAME_MAX];
	enum dns_type type; /* 0: a name that fails with SERVFAIL */
	char value[LINE_MAX_LEN];
};

struct sfile {
	const char *path;
	struct srec *rec;
	size_t n;
	/* the current section */
	char test[256], helo[SPF_SENDER_MAX], sender[SPF_SENDER_MAX], ip[64];
	unsigned num;
};

static void
copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static char *
trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static void
drop(struct sfile *f, const char *name, enum dns_type type)
{
	size_t o = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->rec[i].type != type || strcasecmp(f->rec[i].name, name) != 0)
			f->rec[o++] = f->rec[i];
	f->n = o;
}

static int
put(struct sfile *f, const char *name, enum dns_type type, const char *value)
{
	if (f->n >= RECORDS_MAX)
		return -ENOBUFS;
	struct srec *r = &f->rec[f->n++];
	copy(r->name, sizeof(r->name), name, strlen(name));
	r->type = type;
	copy(r->value, sizeof(r->value), value, strlen(value));
	return 0;
}

/* "NAME rest": splits at the first space. */
static int
split_name(char *s, char **name, char **rest)
{
	char *sp = strchr(s, ' ');
	if (!sp)
		return -EINVAL;
	*sp = '\0';
	*name = trim(s);
	*rest = trim(sp + 1);
	return 0;
}

static int
add_addrs(struct sfile *f, char *s, bool v6)
{
	char *name, *list, *save = NULL;
	if (split_name(s, &name, &list) < 0)
		return -EINVAL;
	drop(f, name, v6 ? DNS_T_AAAA : DNS_T_A);
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save))
		if (put(f, name, v6 ? DNS_T_AAAA : DNS_T_A, trim(a)) < 0)
			return -ENOBUFS;
	return 0;
}

static int
add_ptr(struct sfile *f, char *s)
{
	char *ip, *list, *save = NULL, rev[DNS_NAME_MAX];
	struct net_addr a;
	if (split_name(s, &ip, &list) < 0 || net_addr_parse(ip, NET_PORT_NONE, &a) < 0 ||
	    dns_reverse_name(&a, rev, sizeof(rev)) < 0)
		return -EINVAL;
	drop(f, rev, DNS_T_PTR);
	for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save))
		if (put(f, rev, DNS_T_PTR, trim(n)) < 0)
			return -ENOBUFS;
	return 0;
}

/* Every address becomes an exchange of its own, preference in list order. */
static int
add_mx(struct sfile *f, char *s)
{
	char *name, *list, *save = NULL;
	unsigned pos = 0;
	if (split_name(s, &name, &list) < 0)
		return -EINVAL;
	drop(f, name, DNS_T_MX);
	for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save), pos++) {
		char host[DNS_NAME_MAX], rdata[DNS_NAME_MAX + 16];
		struct net_addr ip;
		a = trim(a);
		if (net_addr_parse(a, NET_PORT_NONE, &ip) < 0)
			return -EINVAL;
		snprintf(host, sizeof(host), "mx%u-%s.mx.invalid", pos, a);
		for (char *c = host; *c; c++)
			*c = *c == ':' ? '-' : *c;
		snprintf(rdata, sizeof(rdata), "%u %s", pos + 1, host);
		drop(f, host, ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A);
		if (put(f, name, DNS_T_MX, rdata) < 0 ||
		    put(f, host, ip.family == AF_INET6 ? DNS_T_AAAA : DNS_T_A, a) < 0)
			return -ENOBUFS;
	}
	return 0;
}

static int
add_txt(struct sfile *f, char *s)
{
	char *name, *text;
	if (split_name(s, &name, &text) < 0)
		return -EINVAL;
	drop(f, name, DNS_T_TXT);
	return put(f, name, DNS_T_TXT, text);
}

/* The mock resolver of stalwart's tests fails every name containing "_dns_error.". */
static void
note_errors(struct sfile *f, const char *line)
{
	for (const char *p = strstr(line, "_dns_error."); p; p = strstr(p + 1, "_dns_error.")) {
		const char *b = p, *e = p;
		while (b > line && (b[-1] == '.' || b[-1] == '-' || b[-1] == '_' ||
		                    spf_macro_is_alnum((unsigned char)b[-1])))
			b--;
		while (*e == '.' || *e == '-' || *e == '_' || spf_macro_is_alnum((unsigned char)*e))
			e++;
		char name[DNS_NAME_MAX];
		copy(name, sizeof(name), b, (size_t)(e - b));
		drop(f, name, 0);
		put(f, name, 0, "");
	}
}

static int
build(const struct sfile *f, struct dns_zone **out)
{
	struct dns_zone *z;
	int r = dns_zone_new(&z);
	for (size_t i = 0; r == 0 && i < f->n; i++) {
		const struct srec *rec = &f->rec[i];
		int e = rec->type == 0 ? dns_zone_add_failure(z, rec->name, DNS_SERVFAIL)
		        : rec->type == DNS_T_TXT
		            ? dns_zone_add_txt(z, rec->name, rec->value, strlen(rec->value))
		            : dns_zone_add(z, rec->name, rec->type, rec->value);
		if (e < 0 && verbose)
			printf("note: %s: %s %s: not taken (%s)\n", f->path, rec->name, rec->value,
			       strerror(-e));
	}
	if (r == 0)
		*out = z;
	return r;
}

static int
check(const struct sfile *f, const char *sender, struct spf_outcome *out)
{
	struct spf_request req = {.sender = sender, .helo = f->helo, .scope = SPF_SCOPE_SPF1};
	struct dns_zone *z = NULL;
	if (net_addr_parse(f->ip, NET_PORT_NONE, &req.ip) < 0 || build(f, &z) < 0)
		return -EINVAL;
	return run_check(z, &req, out);
}

static void
expect(struct sfile *f, char *value, struct tally *t)
{
	char id[300];
	char *sp = strchr(value, ' ');
	const char *exp = sp ? trim(sp + 1) : "";
	struct spf_outcome out;
	enum spf_result want;

	if (sp)
		*sp = '\0';
	snprintf(id, sizeof(id), "%s#%u", f->test, ++f->num);
	if (spf_result_parse(value, &want) < 0 || check(f, "", &out) < 0 ||
	    (out.result == SPF_PASS && check(f, f->sender, &out) < 0)) {
		report(t, f->path, id, "cannot run");
		return;
	}
	if (out.result != want)
		report(t, f->path, id, "result %s, want %s (%s %s)", spf_result_name(out.result),
		       value, out.reason ? out.reason : "", out.problem);
	else if (*exp && strcmp(exp, out.explanation) != 0)
		report(t, f->path, id, "explanation '%s', want '%s'", out.explanation, exp);
	else
		t->pass++;
}

static void
line(struct sfile *f, char *s, struct tally *t)
{
	static const char *const keys[] = {"name:", "spf:",    "exp:",    "a:",  "aaaa:",  "ptr:",
	                                   "mx:",   "domain:", "sender:", "ip:", "expect:"};
	s = trim(s);
	if (*s == '-')
		s = trim(s + 1);
	note_errors(f, s);
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		size_t n = strlen(keys[k]);
		if (strncmp(s, keys[k], n) != 0)
			continue;
		char *v = trim(s + n);
		int r = 0;
		switch (k) {
		case 0:
			copy(f->test, sizeof(f->test), v, strlen(v));
			break;
		case 1:
		case 2:
			r = add_txt(f, v);
			break;
		case 3:
		case 4:
			r = add_addrs(f, v, k == 4);
			break;
		case 5:
			r = add_ptr(f, v);
			break;
		case 6:
			r = add_mx(f, v);
			break;
		case 7:
			copy(f->helo, sizeof(f->helo), v, strlen(v));
			break;
		case 8:
			copy(f->sender, sizeof(f->sender), v, strlen(v));
			break;
		case 9:
			copy(f->ip, sizeof(f->ip), v, strlen(v));
			break;
		default:
			expect(f, v, t);
		}
		if (r < 0)
			report(t, f->path, s, "cannot read this line");
		return;
	}
}

static void
new_section(struct sfile *f)
{
	f->test[0] = f->helo[0] = f->sender[0] = '\0';
	copy(f->ip, sizeof(f->ip), "127.0.0.1", 9);
	f->num = 0;
}

static int
stalwart_file(const char *path, struct tally *t)
{
	_cleanup_fclose_ FILE *in = fopen(path, "r");
	_cleanup_free_ struct srec *rec = calloc(RECORDS_MAX, sizeof(*rec));
	struct sfile f = {.path = path, .rec = rec};
	char buf[LINE_MAX_LEN];
	if (!in)
		return -errno;
	if (!rec)
		return -ENOMEM;
	new_section(&f);
	while (fgets(buf, sizeof(buf), in)) {
		if (strcmp(buf, "---\n") == 0)
			new_section(&f);
		else
			line(&f, buf, t);
	}
	return 0;
}

static void
closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
stalwart_dir(const char *dir, struct tally *t)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	char *names[64];
	size_t n = 0;
	int r = 0;
	if (!d)
		return -errno;
	for (struct dirent *e; (e = readdir(d)) && n < ARRAY_SIZE(names);) {
		size_t len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0)
			names[n++] = strdup(e->d_name);
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (r == 0 && names[i])
			r = stalwart_file(path, t);
		free(names[i]);
	}
	return r;
}
