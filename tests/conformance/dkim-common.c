#include "dkim-common.h"

#include "core/buf.h"
#include "core/cleanup.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_MAX (64l << 20)

long
dkc_read_file(const char *path, char **out)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_buf_ struct buf b = BUF_INIT(FILE_MAX);
	char chunk[65536];
	ssize_t n;
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(&b, chunk, (size_t)n) < 0)
			return -EFBIG;
	if (n < 0)
		return -errno;
	long len = (long)b.len;
	*out = buf_steal(&b);
	if (!*out)
		*out = strdup("");
	return *out ? len : -ENOMEM;
}

static int
add_line(struct dns_zone *z, const char *line, size_t len)
{
	char name[DNS_NAME_MAX + 1];
	size_t i = 0;
	while (i < len && line[i] != ' ' && line[i] != '\t')
		i++;
	if (i == 0 || i >= sizeof(name) || line[0] == '#')
		return 0;
	memcpy(name, line, i);
	name[i] = '\0';
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	const char *v = line + i;
	size_t vl = len - i;
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' || v[vl - 1] == '\r'))
		vl--;
	if (vl == 8 && memcmp(v, "NXDOMAIN", 8) == 0)
		return 0;
	if (vl > 4 && memcmp(v, "~~", 2) == 0)
		return dns_zone_add_failure(z, name,
		                            strstr(v, "SERVFAIL") ? DNS_SERVFAIL : DNS_TIMEOUT);
	if (vl == 2 && memcmp(v, "\"\"", 2) == 0)
		vl = 0;
	return dns_zone_add_txt(z, name, v, vl);
}

int
dkc_zone_add_lines(struct dns_zone *z, const char *text, size_t len)
{
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(text + p, '\n', len - p);
		size_t n = nl ? (size_t)(nl - text) - p : len - p;
		int r = add_line(z, text + p, n);
		if (r < 0)
			return r;
		p += n + 1;
	}
	return 0;
}

static void
collect(struct dkc_results *out, const struct dkim_sig_result *r)
{
	if (r && out->n < DKC_MAX_RESULTS)
		out->r[out->n++] = *r;
}

/* The body in chunks of varied size, as a mail server hands it over. */
static int
feed_body(struct dkim_verify *v, struct dk_verify *dv, const char *p, size_t len)
{
	static const size_t sizes[] = {1, 7, 64, 1000, 4096};
	for (size_t i = 0, k = 0; i < len; k++) {
		size_t n = sizes[k % ARRAY_SIZE(sizes)];
		if (n > len - i)
			n = len - i;
		int r = dkim_verify_body(v, p + i, n);
		if (r == 0)
			r = dk_verify_body(dv, p + i, n);
		if (r < 0)
			return r;
		i += n;
	}
	return 0;
}

static int
run(const char *msg, size_t len, const struct rfc5322_header *h, size_t body, struct dkim_verify *v,
    struct dk_verify *dv, struct dkc_results *out)
{
	int r = dkim_verify_header(v, h);
	if (r == 0)
		r = dk_verify_header(dv, h);
	if (r == 0)
		r = feed_body(v, dv, msg + body, len - body);
	if (r == 0)
		r = dkim_verify_finish(v);
	if (r == 0)
		r = dk_verify_finish(dv);
	for (size_t i = 0; r == 0 && i < dkim_verify_count(v); i++)
		collect(out, dkim_verify_result(v, i));
	for (size_t i = 0; r == 0 && i < dk_verify_count(dv); i++)
		collect(out, dk_verify_result(dv, i));
	return r;
}

int
dkc_verify(const char *msg, size_t len, struct dns_resolver *r, const struct dkc_profile *p,
           struct dkc_results *out)
{
	struct rfc5322_header h;
	struct rfc5322_reader rd;
	struct dkim_verify *v = NULL;
	struct dk_verify *dv = NULL;
	size_t used = 0;
	out->n = 0;
	rfc5322_header_init(&h, 0, 0);
	rfc5322_reader_init(&rd, &h);
	int e = rfc5322_reader_feed(&rd, msg, len, &used);
	if (e == 0)
		e = rfc5322_reader_end(&rd);
	if (e >= 0)
		e = dkim_verify_new(&p->dkim, r, &v);
	if (e >= 0)
		e = dk_verify_new(&p->dk, r, &dv);
	if (e >= 0)
		e = run(msg, len, &h, used, v, dv, out);
	dkim_verify_free(v);
	dk_verify_free(dv);
	rfc5322_reader_free(&rd);
	rfc5322_header_free(&h);
	return e < 0 ? e : 0;
}

enum dkim_result
dkc_best(const struct dkc_results *res)
{
	if (res->n == 0)
		return DKIM_RESULT_NONE;
	for (size_t i = 0; i < res->n; i++)
		if (res->r[i].result == DKIM_RESULT_PASS)
			return DKIM_RESULT_PASS;
	return res->r[0].result;
}

void
dkc_print(const struct dkc_results *res)
{
	for (size_t i = 0; i < res->n; i++) {
		_cleanup_buf_ struct buf b = BUF_INIT(4096);
		if (dkim_result_format(&res->r[i], &b) == 0)
			printf("    %s\n", b.data);
	}
}

const char *
dkc_testdata(int argc, char **argv)
{
	if (argc > 1)
		return argv[1];
	const char *t = getenv("TESTDATA");
	return t ? t : "../shared/testdata";
}
