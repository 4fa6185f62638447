#include "milter_config.h"

#include "authres.h"
#include "core/net.h"

#include <stddef.h>
#include <string.h>

static const char *const milter_actions[] = {"header", "reject", "quarantine", NULL};
static const char *const milter_temp_actions[] = {"header", "tempfail", NULL};
static const char *const milter_on_errors[] = {"accept", "tempfail", NULL};

static const struct cfg_field milter_listen_fields[] = {
    {.key = "listen",
     .type = CFG_STRING,
     .offset = offsetof(struct milter_listen_cfg, listen),
     .help = "inet:PORT@HOST, inet6:PORT@HOST or unix:PATH (Postfix's smtpd_milters form)"},
    {.key = "timeout",
     .type = CFG_DURATION,
     .offset = offsetof(struct milter_listen_cfg, timeout_ms),
     .def = "2m",
     .min = 1000,
     .max = 3600 * 1000,
     .help = "an MTA that says nothing for this long is disconnected"},
    {0},
};

static void
milter_config_check_listen(void *obj, struct cfg_check *chk)
{
	const struct milter_listen_cfg *l = obj;
	static const char *const kinds[] = {"inet:", "inet6:", "unix:", "local:", NULL};
	if (!l->listen)
		return;
	for (const char *const *k = kinds; *k; k++)
		if (!strncmp(l->listen, *k, strlen(*k)) && l->listen[strlen(*k)])
			return;
	cfg_check_error(chk, "listen", "expected inet:PORT@HOST, inet6:PORT@HOST or unix:PATH");
}

static const struct cfg_schema milter_listen_schema = {
    .name = "milter",
    .size = sizeof(struct milter_listen_cfg),
    .fields = milter_listen_fields,
    .check = milter_config_check_listen,
};

static const struct cfg_field milter_sign_fields[] = {
    {.key = "domain",
     .type = CFG_STRING,
     .offset = offsetof(struct milter_sign_cfg, domain),
     .flags = CFG_F_REQUIRED,
     .help = "From domain signed for; also d="},
    {.key = "selector",
     .type = CFG_STRING,
     .offset = offsetof(struct milter_sign_cfg, selector),
     .flags = CFG_F_REQUIRED,
     .help = "s=: the key is published at SELECTOR._domainkey.DOMAIN"},
    {.key = "key",
     .type = CFG_STRING,
     .offset = offsetof(struct milter_sign_cfg, key),
     .flags = CFG_F_REQUIRED,
     .help = "PEM private key file, RSA or Ed25519 (rampart dkim keygen)"},
    {0},
};

static const struct cfg_schema milter_sign_schema = {
    .name = "sign",
    .size = sizeof(struct milter_sign_cfg),
    .fields = milter_sign_fields,
};

static const struct cfg_field milter_opendkim_fields[] = {
    {.key = "keytable",
     .type = CFG_STRING,
     .offset = offsetof(struct milter_opendkim_cfg, keytable),
     .help = "OpenDKIM KeyTable file"},
    {.key = "signingtable",
     .type = CFG_STRING,
     .offset = offsetof(struct milter_opendkim_cfg, signingtable),
     .help = "OpenDKIM SigningTable file (refile: form, wildcards)"},
    {0},
};

static void
milter_config_check_opendkim(void *obj, struct cfg_check *chk)
{
	const struct milter_opendkim_cfg *o = obj;
	if (!o->keytable != !o->signingtable)
		cfg_check_error(chk, o->keytable ? "signingtable" : "keytable",
		                "keytable and signingtable go together");
}

static const struct cfg_schema milter_opendkim_schema = {
    .name = "sign-from-opendkim",
    .size = sizeof(struct milter_opendkim_cfg),
    .fields = milter_opendkim_fields,
    .check = milter_config_check_opendkim,
};

#define ACT(k, member, choices_, def_, help_)                                                      \
	{                                                                                          \
		.key = k, .type = CFG_ENUM, .offset = offsetof(struct milter_actions_cfg, member), \
		.def = def_, .choices = choices_, .help = help_                                    \
	}

static const struct cfg_field milter_actions_fields[] = {
    ACT("spf", spf, milter_actions, "header", "on spf=fail: header, reject or quarantine"),
    ACT("sender-id", senderid, milter_actions, "header", "on sender-id=fail"),
    ACT("dkim", dkim, milter_actions, "header", "when no DKIM signature passes"),
    ACT("domainkeys", domainkeys, milter_actions, "header", "when no DomainKeys signature passes"),
    ACT("dmarc", dmarc, milter_actions, "header", "on dmarc=fail (dmarc-policy: false)"),
    {.key = "dmarc-policy",
     .type = CFG_BOOL,
     .offset = offsetof(struct milter_actions_cfg, dmarc_policy),
     .def = "false",
     .help = "dmarc=fail follows the domain's p=/sp= (after pct=): reject or quarantine"},
    ACT("temperror", temperror, milter_temp_actions, "header",
        "a temporary DNS error: header (accept) or tempfail (4xx)"),
    ACT("on-error", on_error, milter_on_errors, "accept",
        "an internal error: accept the message or tempfail it"),
    {0},
};

static const struct cfg_schema milter_actions_schema = {
    .name = "actions",
    .size = sizeof(struct milter_actions_cfg),
    .fields = milter_actions_fields,
};

#define FLD(k, t, member) .key = k, .type = t, .offset = offsetof(struct milter_cfg, member)

static const struct cfg_field milter_fields[] = {
    {FLD("milter", CFG_SECTION, milter), .schema = &milter_listen_schema},
    {FLD("authserv-id", CFG_STRING, authserv_id),
     .help = "the name in Authentication-Results; default: the host name"},
    {FLD("internal-networks", CFG_LIST, internal_networks), .elem = CFG_CIDR,
     .def = "[127.0.0.1/32, '::1/128']", .help = "clients whose mail is signed, not verified"},
    {FLD("sign", CFG_LIST, sign), .elem = CFG_SECTION, .schema = &milter_sign_schema,
     .help = "keys: mail from DOMAIN by an internal or authenticated client is signed"},
    {FLD("sign-from-opendkim", CFG_SECTION, sign_from_opendkim), .schema = &milter_opendkim_schema,
     .help = "OpenDKIM's KeyTable and SigningTable"},
    {FLD("actions", CFG_SECTION, actions), .schema = &milter_actions_schema},
    {FLD("dns-budget", CFG_DURATION, budget_ms), .def = "10s", .min = 100, .max = 300 * 1000,
     .help = "DNS time one message may take, all methods together"},
    {FLD("received-spf", CFG_BOOL, received_spf), .def = "true",
     .help = "add Received-SPF besides Authentication-Results"},
    {FLD("verify-internal", CFG_BOOL, verify_internal), .def = "false",
     .help = "verify mail from internal and authenticated clients as well"},
    {FLD("public-suffix-list", CFG_STRING, public_suffix_list),
     .def = "/usr/share/publicsuffix/public_suffix_list.dat",
     .help = "DMARC organisational domains (Debian package publicsuffix)"},
    {0},
};

static void
milter_config_check(void *obj, struct cfg_check *chk)
{
	struct milter_cfg *c = obj;
	c->enabled = c->milter.listen != NULL;
	if (c->authserv_id && !authres_valid_id(c->authserv_id))
		cfg_check_error(chk, "authserv-id",
		                "expected a host name or token of 1 to 255 characters, no spaces");
}

const struct cfg_schema milter_config_schema = {
    .name = "mail",
    .size = sizeof(struct milter_cfg),
    .fields = milter_fields,
    .check = milter_config_check,
};
