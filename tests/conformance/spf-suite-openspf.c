/*
 * The openspf YAML format: documents of `tests:` (helo, host, mailfrom, result [one or a list
 * of acceptable results], explanation, receiver + header for Received-SPF) and `zonedata:`
 * (name -> list of {A, AAAA, MX: [pref, host], PTR, TXT, SPF, CNAME} or the word TIMEOUT).
 */
#include "spf-suite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct ydoc {
	yaml_document_t *doc;
	const char *file;
};

static yaml_node_t *
node(const struct ydoc *d, yaml_node_item_t i)
{
	return yaml_document_get_node(d->doc, i);
}

static const char *
scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static size_t
scalar_len(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? n->data.scalar.length : 0;
}

static yaml_node_t *
map_get(const struct ydoc *d, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const char *k = scalar(node(d, p->key));
		if (k && strcmp(k, key) == 0)
			return node(d, p->value);
	}
	return NULL;
}

/* TXT or SPF data: one string, or a list of strings glued together (RFC 7208 §3.3). */
static int
add_txt(struct dns_zone *z, const struct ydoc *d, const char *name, const yaml_node_t *v)
{
	char data[DNS_TXT_MAX];
	size_t len = 0;
	if (v->type == YAML_SCALAR_NODE) {
		if (strcmp(scalar(v), "NONE") == 0)
			return 0;
		return dns_zone_add_txt(z, name, scalar(v), scalar_len(v));
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return -EINVAL;
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
	     i++) {
		const yaml_node_t *s = node(d, *i);
		if (!scalar(s) || len + scalar_len(s) >= sizeof(data))
			return -EINVAL;
		memcpy(data + len, scalar(s), scalar_len(s));
		len += scalar_len(s);
	}
	return dns_zone_add_txt(z, name, data, len);
}

static int
add_mx(struct dns_zone *z, const struct ydoc *d, const char *name, const yaml_node_t *v)
{
	char rdata[DNS_NAME_MAX + 16];
	if (v->type != YAML_SEQUENCE_NODE ||
	    v->data.sequence.items.top - v->data.sequence.items.start != 2)
		return -EINVAL;
	const char *pref = scalar(node(d, v->data.sequence.items.start[0]));
	const char *host = scalar(node(d, v->data.sequence.items.start[1]));
	if (!pref || !host)
		return -EINVAL;
	snprintf(rdata, sizeof(rdata), "%s %s", pref, *host ? host : ".");
	return dns_zone_add(z, name, DNS_T_MX, rdata);
}

static const struct {
	const char *name;
	enum dns_type type;
} rr_types[] = {
    {"A", DNS_T_A},
    {"AAAA", DNS_T_AAAA},
    {"PTR", DNS_T_PTR},
    {"CNAME", DNS_T_CNAME},
};

/* One {TYPE: value} item of a name; spf_as_txt copies SPF data to TXT. */
static int
add_item(struct dns_zone *z, const struct ydoc *d, const char *name, const yaml_node_t *item,
         bool spf_as_txt)
{
	const yaml_node_pair_t *p = item->data.mapping.pairs.start;
	const char *type = scalar(node(d, p->key));
	const yaml_node_t *v = node(d, p->value);
	if (!type || !v)
		return -EINVAL;
	if (strcmp(type, "TXT") == 0 || (strcmp(type, "SPF") == 0 && spf_as_txt))
		return add_txt(z, d, name, v);
	if (strcmp(type, "SPF") == 0)
		return 0;
	if (strcmp(type, "MX") == 0)
		return add_mx(z, d, name, v);
	for (size_t i = 0; i < ARRAY_SIZE(rr_types); i++)
		if (strcmp(type, rr_types[i].name) == 0 && scalar(v))
			return dns_zone_add(z, name, rr_types[i].type,
			                    *scalar(v) ? scalar(v) : ".");
	return -EINVAL;
}

static bool
is_item(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE &&
	       n->data.mapping.pairs.top - n->data.mapping.pairs.start == 1;
}

/* The type of a {TYPE: value} item, or the word TIMEOUT. */
static const char *
item_type(const struct ydoc *d, const yaml_node_t *n)
{
	if (n->type == YAML_SCALAR_NODE)
		return scalar(n);
	if (!is_item(n))
		return "";
	return scalar(node(d, n->data.mapping.pairs.start->key));
}

/* Does item put data under TXT? SPF data does when the name lists no TXT itself. */
static bool
gives_txt(const struct ydoc *d, const yaml_node_t *item, bool has_txt)
{
	const char *t = item_type(d, item);
	if (strcmp(t, "SPF") == 0)
		return !has_txt;
	if (strcmp(t, "TXT") != 0)
		return false;
	const char *v = scalar(node(d, item->data.mapping.pairs.start->value));
	return !v || strcmp(v, "NONE") != 0;
}

/*
 * A name's records. TIMEOUT makes every query for the name time out unless TXT data came
 * first (spftimeout: the TXT answer arrives, the SPF query hangs; only TXT is asked here).
 */
static int
add_name(struct dns_zone *z, const struct ydoc *d, const char *name, const yaml_node_t *list)
{
	bool has_txt = false, txt_first = false, timeout = false;
	yaml_node_item_t *i;
	if (list->type != YAML_SEQUENCE_NODE)
		return -EINVAL;
	for (i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++)
		has_txt |= strcmp(item_type(d, node(d, *i)), "TXT") == 0;
	for (i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
		const yaml_node_t *n = node(d, *i);
		if (strcmp(item_type(d, n), "TIMEOUT") == 0)
			timeout = true;
		else if (!timeout && is_item(n) && gives_txt(d, n, has_txt))
			txt_first = true;
	}
	if (timeout && !txt_first)
		return dns_zone_add_failure(z, name, DNS_TIMEOUT);
	for (i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
		const yaml_node_t *n = node(d, *i);
		if (!is_item(n))
			continue;
		int r = add_item(z, d, name, n, !has_txt);
		if (r < 0 && verbose)
			printf("note: %s: %s: a record not taken (%s)\n", d->file, name,
			       strerror(-r));
	}
	return 0;
}

static int
build_zone(const struct ydoc *d, const yaml_node_t *zonedata, struct dns_zone **out)
{
	struct dns_zone *z;
	int r = dns_zone_new(&z);
	if (r < 0)
		return r;
	for (yaml_node_pair_t *p = zonedata ? zonedata->data.mapping.pairs.start : NULL;
	     p && p < zonedata->data.mapping.pairs.top; p++) {
		const char *name = scalar(node(d, p->key));
		if (name && (r = add_name(z, d, name, node(d, p->value))) < 0 && verbose)
			printf("note: %s: %s: not taken (%s)\n", d->file, name, strerror(-r));
	}
	*out = z;
	return 0;
}

static bool
result_ok(const struct ydoc *d, const yaml_node_t *want, enum spf_result got)
{
	if (scalar(want))
		return strcmp(scalar(want), spf_result_name(got)) == 0;
	if (!want || want->type != YAML_SEQUENCE_NODE)
		return false;
	for (yaml_node_item_t *i = want->data.sequence.items.start;
	     i < want->data.sequence.items.top; i++)
		if (scalar(node(d, *i)) && strcmp(scalar(node(d, *i)), spf_result_name(got)) == 0)
			return true;
	return false;
}

static void
check_header(const struct ydoc *d, const yaml_node_t *test, const char *name,
             const struct spf_request *req, const struct spf_outcome *out, struct tally *t,
             bool *ok)
{
	const char *want = scalar(map_get(d, test, "header"));
	char got[SPF_HEADER_MAX];
	if (!want)
		return;
	if (spf_header_received(req, out, req->receiver, got, sizeof(got)) < 0 ||
	    strcmp(want, got) != 0) {
		report(t, d->file, name, "Received-SPF\n   want %s\n    got %s", want, got);
		*ok = false;
	}
}

static void
run_test(const struct ydoc *d, const yaml_node_t *zonedata, const char *name,
         const yaml_node_t *test, enum spf_scope scope, struct tally *t)
{
	struct spf_request req = {.sender = scalar(map_get(d, test, "mailfrom")),
	                          .helo = scalar(map_get(d, test, "helo")),
	                          .receiver = scalar(map_get(d, test, "receiver")),
	                          .scope = scope,
	                          .default_exp = "DEFAULT"};
	const yaml_node_t *want = map_get(d, test, "result");
	const char *exp = scalar(map_get(d, test, "explanation"));
	const char *host = scalar(map_get(d, test, "host"));
	struct spf_outcome out;
	struct dns_zone *z;
	bool ok = true;

	if (!host || net_addr_parse(host, NET_PORT_NONE, &req.ip) < 0 ||
	    build_zone(d, zonedata, &z) < 0 || run_check(z, &req, &out) < 0) {
		report(t, d->file, name, "cannot run (host %s)", host ? host : "missing");
		return;
	}
	if (!result_ok(d, want, out.result)) {
		report(t, d->file, name, "result %s, want %s (%s%s%s)", spf_result_name(out.result),
		       scalar(want) ? scalar(want) : "one of a list", out.reason ? out.reason : "",
		       out.problem[0] ? ": " : "", out.problem);
		ok = false;
	} else if (exp && out.result == SPF_FAIL && strcmp(exp, out.explanation) != 0) {
		report(t, d->file, name, "explanation '%s', want '%s'", out.explanation, exp);
		ok = false;
	}
	check_header(d, test, name, &req, &out, t, &ok);
	if (ok) {
		t->pass++;
		if (verbose)
			printf("ok %s: %s: %s\n", d->file, name, spf_result_name(out.result));
	}
}

static void
run_document(const struct ydoc *d, enum spf_scope scope, struct tally *t)
{
	const yaml_node_t *root = yaml_document_get_root_node(d->doc);
	const yaml_node_t *tests = map_get(d, root, "tests");
	const yaml_node_t *zonedata = map_get(d, root, "zonedata");
	if (!tests || tests->type != YAML_MAPPING_NODE)
		return;
	for (yaml_node_pair_t *p = tests->data.mapping.pairs.start;
	     p < tests->data.mapping.pairs.top; p++) {
		const char *name = scalar(node(d, p->key));
		run_test(d, zonedata, name ? name : "?", node(d, p->value), scope, t);
	}
}

int
openspf_file(const char *path, enum spf_scope scope, struct tally *t)
{
	_cleanup_fclose_ FILE *f = fopen(path, "rb");
	yaml_parser_t parser;
	int r = 0;
	if (!f)
		return -errno;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, f);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			fprintf(stderr, "%s: YAML error: %s\n", path, parser.problem);
			r = -EINVAL;
			break;
		}
		struct ydoc d = {.doc = &doc, .file = path};
		bool end = yaml_document_get_root_node(&doc) == NULL;
		if (!end)
			run_document(&d, scope, t);
		yaml_document_delete(&doc);
		if (end)
			break;
	}
	yaml_parser_delete(&parser);
	return r;
}
