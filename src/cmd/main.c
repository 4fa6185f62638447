#include "cmd.h"
#include "config.h"
#include "core/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Keep in the order `rampart help` shows them. */
const struct cmd_verb cmd_verbs[] = {
    {"help", cmd_help, "list verbs, or show how to use one",
     "usage: rampart help [VERB]\n"
     "       rampart VERB --help | -h\n"
     "       rampart --help | -h\n"
     "\n"
     "Without VERB, lists the verbs; with one, shows its usage and options. Options go after\n"
     "the verb: rampart up -c FILE. Exit 0, or 2 for an unknown verb.\n"},
    {"version", cmd_version, "print the version, the git commit and the libraries' versions",
     "usage: rampart version [--json]\n"
     "       rampart --version | -V [--json]\n"
     "\n"
     "Prints the version, the git commit it was built from (unknown outside a git checkout,\n"
     "e.g. from a tarball) and each library linked with its version: the library's own\n"
     "word at run time where it gives one, noting the version built against when that\n"
     "differs, otherwise the version at build time.\n"
     "      --json               print a JSON object instead: version, commit, libraries\n"
     "                           (name, version at run time or null, built)\n"},
    {"check-config", cmd_check_config, "validate a configuration file without starting anything",
     "usage: rampart check-config [-c FILE] [FILE | -]\n"
     "\n"
     "Reads FILE (default " RAMPART_CONFIG_PATH "; - for stdin) and reports every\n"
     "error in one run, each as FILE:LINE:COLUMN: message (a duplicate name or address at\n"
     "the duplicate). Only a regular file is read: a FIFO or a device is refused.\n"
     "Exit 0 when valid, 2 when not.\n"},
    {"up", cmd_up, "run every part enabled in the config in one foreground process",
     "usage: rampart up [-c FILE]\n"
     "\n"
     "Starts each part enabled in FILE (default " RAMPART_CONFIG_PATH ") and runs in the\n"
     "foreground until SIGTERM or SIGINT (exit 0). SIGHUP re-reads the file; a file with\n"
     "errors is reported and the running configuration is kept.\n"},
    {"port", cmd_port, "which process listens on a port (like fuser -vn tcp PORT)",
     "usage: rampart port [OPTIONS] [tcp|udp] [PORT | LO-HI | ADDRESS:PORT[-HI]]...\n"
     "       rampart port [OPTIONS] unix [PATH | @ABSTRACT]...\n"
     "\n"
     "Lists the listening sockets (TCP LISTEN, bound UDP) on each PORT or range (at most\n"
     "4096 ports), or on every port, with the processes that hold them. Default: both tcp\n"
     "and udp. ADDRESS is an IP address or localhost (127.0.0.1 and ::1); a port has no\n"
     "leading zeros. unix lists listening and bound unix sockets (a PATH alone means unix).\n"
     "\n"
     "  -a, --all          every socket on the local port, connected ones too\n"
     "  -v, --verbose      also the command line, executable and systemd unit or container\n"
     "  -H, --no-header    no header line\n"
     "      --pid PID      the sockets process PID holds, in every state\n"
     "      --pids         print only the PIDs, one per line\n"
     "      --json         print a JSON array of objects\n"
     "  -k, --kill[=SIG]   send SIG (default TERM) to the processes found\n"
     "      --all-netns    also look in every other network namespace\n"
     "\n"
     "Text escapes control bytes and bytes that are not UTF-8 as \\xHH (a backslash as\n"
     "\\\\); JSON shows them as U+FFFD and adds KEY_raw, the exact bytes in base64.\n"
     "Exit 0 when a socket was found, 1 when none (or, with --pids and --kill, no process\n"
     "could be seen), 2 for a usage error.\n"},
    {"dns", cmd_dns, "look a name up the way rampart does (zone file, resolver, DNSSEC)",
     "usage: rampart dns query NAME [TYPE] [OPTIONS]\n"
     "\n"
     "Looks NAME up as every part of rampart does: records from --dns-zone first, then the\n"
     "resolver (libunbound: cache, DNSSEC validation, the resolv.conf servers or --dns-server).\n"
     "TYPE is A (default), AAAA, MX, TXT, SPF, PTR, CNAME, NS, SOA, SRV, CAA, TLSA, DS or\n"
     "DNSKEY; with PTR, NAME may be an address. Prints a line status=STATUS secure=yes|no\n"
     "(STATUS: NOERROR, NODATA, NXDOMAIN, TIMEOUT, SERVFAIL), then one record per line in\n"
     "zone-file form, after the CNAME records that led to them (as dig shows them); a TXT\n"
     "record is its strings as rampart reads them, joined, re-split at 255 bytes (JSON: its\n"
     "\"text\" joined and its \"strings\" as received).\n"
     "\n"
     "      --json               print a JSON object instead\n"
     "      --dns-trust-anchor FILE  also trust these DS/DNSKEY records (a private signed\n"
     "                           zone)\n" CMD_DNS_USAGE "\n"
     "Exit 0 when records were found, 1 for NXDOMAIN or NODATA, 2 for a usage error or a\n"
     "zone file with errors, 3 for a timeout or a server failure.\n"
     "\n"
     "Diagnostics (the answer cache and the per-message budget of the daemons); each adds\n"
     "a line ;; query N source=hit|joined|miss|none status=STATUS per query and a last\n"
     "line ;; stats hits=H misses=M joined=J entries=E:\n"
     "      --repeat N           run the query N times in one process (1 to 1000)\n"
     "      --pause TIME         wait TIME between the repeated queries\n"
     "      --deadline TIME      give all the queries together at most TIME\n"
     "      --prefetch           start the lookup in the background first\n"
     "      --stats              the ;; lines for a single query\n"
     "The exit code follows the last query.\n"},
    {"dkim", cmd_dkim, "DKIM: generate and test keys, sign and verify messages",
     "usage: rampart dkim keygen --domain D --selector S [--type rsa|ed25519] [--bits N]\n"
     "                           [--out DIR] [--force] [RECORD OPTIONS]\n"
     "       rampart dkim sign --domain D --selector S --key FILE [OPTIONS] < MSG > SIGNED\n"
     "       rampart dkim verify [OPTIONS] < MSG\n"
     "       rampart dkim testkey --domain D --selector S --key FILE [DNS OPTIONS]\n"
     "\n"
     "keygen writes DIR/S.private (PEM, mode 0600) and DIR/S.txt, the zone-file record to\n"
     "publish (also printed): S._domainkey.D. IN TXT ( \"v=DKIM1; k=...; p=...\" ).\n"
     "D is taken in lower case, without a final dot.\n"
     "      --type TYPE          rsa (default) or ed25519\n"
     "      --bits N             RSA key size: 1024 to 4096, a multiple of 8 (default 2048)\n"
     "      --out DIR            where to write the files (default .)\n"
     "      --force              replace files that exist\n"
     "      --testing            t=y: the domain is testing DKIM\n"
     "      --service email      s=email: the key is for email only\n"
     "      --note TEXT          n=TEXT, a note for people (dkim-quoted-printable)\n"
     "      --relative           owner S._domainkey, relative to D's zone (opendkim-genkey)\n"
     "\n"
     "sign prints the message with DKIM-Signature fields on top, line ends as read. The\n"
     "algorithm follows the key: rsa-sha256 or ed25519-sha256. Repeat --selector and --key\n"
     "for more signatures (e.g. one RSA and one Ed25519). The input must be a message:\n"
     "header fields, From among them (else exit 2).\n"
     "      --canon H/B          simple or relaxed, header/body (default relaxed/relaxed);\n"
     "                           -c is refused: it means --config in other verbs\n"
     "      --headers LIST       fields to sign (default: RFC 6376 5.4.1, Message-ID, MIME)\n"
     "      --oversign LIST      fields signed once more than present (default from)\n"
     "      --identity ADDR      the i= tag: an address at the domain or under it\n"
     "      --length             the l= tag: the body length\n"
     "      --expire TIME        the x= tag: expiry TIME after signing (e.g. 30d)\n"
     "      --timestamp T        the t= tag, in Unix seconds (default now)\n"
     "\n"
     "verify prints one Authentication-Results line per signature (RFC 8601), e.g.\n"
     "  dkim=pass header.d=example.com header.s=s1 header.a=ed25519-sha256 header.b=...\n"
     "with a reason= for anything but pass; results are pass, fail, neutral, policy,\n"
     "temperror and permerror, and none without signatures. A pass whose body goes on\n"
     "past l= says reason=\"body extends past l=\" (JSON: body_extends_past_l).\n"
     "      --json               print a JSON array instead\n"
     "      --max-signatures N   check the first N signatures (default 8)\n"
     "      --time T             verify as of Unix time T\n" CMD_DNS_USAGE "\n"
     "verify exits 0 when a signature passes, 1 when none does, 3 when the only outcomes\n"
     "are temporary errors; every command exits 2 for a usage or input error.\n"
     "\n"
     "testkey checks that the record published at S._domainkey.D is the public half of the\n"
     "private key FILE, and says whether the answer was DNSSEC-validated (key secure / key\n"
     "not secure). It exits 0 for key OK, 1 for a key mismatch or no usable record, 3 when\n"
     "DNS fails, 4 for a revoked key (empty p=), 5 for a matching key with t=y (testing).\n"
     "      --dns-trust-anchor FILE  DS/DNSKEY records trusted besides the root's\n"},
    {"dk", cmd_dk, "DomainKeys: sign and verify messages",
     "usage: rampart dk sign --domain D --selector S --key FILE [OPTIONS] < MSG > SIGNED\n"
     "       rampart dk verify [OPTIONS] < MSG\n"
     "\n"
     "DomainKeys (RFC 4870) is DKIM's historic predecessor: rsa-sha1 over the fields below\n"
     "the signature and the body. The keys are DKIM's RSA keys (rampart dkim keygen).\n"
     "\n"
     "sign prints the message with a DomainKey-Signature field on top, line ends as read.\n"
     "The input must be a message: header fields, From among them (else exit 2).\n"
     "      --canon C            nofws (default) or simple (-c is refused: it is --config)\n"
     "      --headers LIST       fields to sign (default: all of them)\n"
     "\n"
     "verify prints one line per signature, e.g.\n"
     "  domainkeys=pass header.d=example.com header.from=a@example.com header.s=s1 ...\n"
     "      --json               print a JSON array instead\n"
     "      --max-signatures N   check the first N signatures (default 8)\n" CMD_DNS_USAGE "\n"
     "verify exits 0 when a signature passes, 1 when none does, 3 when the only outcomes\n"
     "are temporary errors; every command exits 2 for a usage or input error.\n"},
    {"spf", cmd_spf, "SPF: check a sender against a domain's policy",
     "usage: rampart spf check --ip IP --sender ADDR [--helo NAME] [OPTIONS]\n"
     "       rampart spf check --batch FILE|- [OPTIONS]\n"
     "\n"
     "Evaluates the SPF policy (RFC 7208) of the domain of ADDR for a client at IP, as an\n"
     "MTA does for MAIL FROM. An empty ADDR ('') checks the HELO name instead. Prints the\n"
     "result (pass, fail, softfail, neutral, none, temperror, permerror) and its explanation\n"
     "on the first line.\n"
     "\n"
     "      --batch FILE         one check per line of FILE (- for stdin), as spfquery -file:\n"
     "                           IP SENDER [HELO [RCPT-TO]] (<> the null sender; # comments);\n"
     "                           prints IP SENDER RESULT TEXT per check (--json: an object per\n"
     "                           line); one resolver and cache for all\n"
     "      --record TEXT        evaluate TEXT (v=spf1 ...) as the record of the sender's\n"
     "                           domain, instead of asking DNS for it\n"
     "      --trace              every term evaluated and every DNS query with its answer, as\n"
     "                           ';;' lines on stderr (--json: a \"trace\" list)\n"
     "      --ip IP              the SMTP client's address (IPv4 or IPv6)\n"
     "      --sender ADDR        the MAIL FROM address; '' for the null reverse-path\n"
     "      --helo NAME          the HELO/EHLO name (%{h}; checked when ADDR is '')\n"
     "      --receiver NAME      this MTA's name for %{r} and receiver= (default: hostname)\n"
     "      --received-spf       also print the Received-SPF header field\n"
     "      --authres            also print the spf= Authentication-Results method\n"
     "      --json               print a JSON object instead\n"
     "      --explanation TEXT   explanation of a fail when the domain gives none (macros\n"
     "                           allowed; default: domain of %{o} does not designate %{c}\n"
     "                           as permitted sender)\n"
     "      --time-limit TIME    budget for the whole check (default 20s)\n" CMD_DNS_USAGE "\n"
     "Exit 0 for pass, 1 for any other result, 3 for temperror, 2 for a usage error. With\n"
     "--batch: 2 when a line was bad (reported with its number), else 3 when a check was a\n"
     "temperror, else 0.\n"},
    {"senderid", cmd_senderid, "Sender ID: check a message's purported responsible address",
     "usage: rampart senderid check --ip IP --message FILE|- [--scope pra|mfrom] [OPTIONS]\n"
     "\n"
     "Sender ID (RFC 4406): finds the message's purported responsible address (RFC 4407:\n"
     "Resent-Sender, Resent-From, Sender or From) and evaluates its domain's spf2.0/pra\n"
     "record (v=spf1 as the fallback) for a client at IP. With --scope mfrom, checks the\n"
     "--sender address against spf2.0/mfrom instead. Prints the result and its explanation\n"
     "on the first line, then the PRA.\n"
     "\n"
     "      --ip IP              the SMTP client's address (IPv4 or IPv6)\n"
     "      --message FILE       the message (- for stdin); its header is enough\n"
     "      --scope pra|mfrom    what to check (default pra)\n"
     "      --sender ADDR        the MAIL FROM address (scope mfrom)\n"
     "      --helo NAME          the HELO/EHLO name (%{h})\n"
     "      --receiver NAME      this MTA's name for %{r} (default: hostname)\n"
     "      --authres            also print the sender-id= Authentication-Results method\n"
     "      --json               print a JSON object instead\n"
     "      --time-limit TIME    budget for the whole check (default 20s)\n" CMD_DNS_USAGE "\n"
     "Exit 0 for pass, 1 for any other result (a message without a PRA is a permerror),\n"
     "3 for temperror, 2 for a usage error.\n"},
    {"milter", cmd_milter, "Postfix milter: SPF, Sender ID, DKIM, DomainKeys, DMARC, signing",
     "usage: rampart milter [-c FILE]\n"
     "\n"
     "Runs the mail section of FILE (default " RAMPART_CONFIG_PATH ") in the foreground: a\n"
     "milter for Postfix (smtpd_milters = inet:8891@127.0.0.1 by default) that signs mail\n"
     "from internal networks and SASL-authenticated clients with the keys of its From\n"
     "domain (RSA and Ed25519), and verifies the rest: SPF (MAIL FROM and HELO), Sender ID,\n"
     "DKIM, DomainKeys and DMARC, recorded in one Authentication-Results field and\n"
     "Received-SPF. Authentication-Results fields claiming our authserv-id are removed.\n"
     "mail.actions decides what a failure does (header, reject, quarantine; DMARC policy;\n"
     "tempfail on DNS errors). SIGHUP reloads the file and the keys without dropping a\n"
     "connection; SIGTERM stops. See docs/postfix.md and rampart.yaml(5).\n"
     "\n"
     "Exit 1 when the listener cannot be opened or a key cannot be loaded, 2 for a usage\n"
     "or config error.\n"},
    {"mail", cmd_mail, "mail set-up: keys and DNS records, audit of a domain, open-relay test",
     "usage: rampart mail setup --domain D [--selector S] [--ip ADDR]... [--mx HOST]...\n"
     "                          [--type rsa|ed25519|both] [--softfail] [--rua ADDR] [--out DIR]\n"
     "       rampart mail check --domain D [--selector S]... [--ip ADDR] [--key FILE]\n"
     "                          [--json] [--time-limit T] [DNS OPTIONS]\n"
     "       rampart mail relaytest HOST[:PORT] [--from ADDR] [--to ADDR] [--helo NAME]\n"
     "                          [--domain NAME] [--no-tls] [--timeout T] [--time-limit T]\n"
     "                          [--json] [DNS OPTIONS]\n"
     "\n"
     "setup      generates the DKIM keys (or reuses those in DIR) and prints every record to\n"
     "           publish in zone-file syntax: SPF, Sender ID, DKIM, DomainKeys, DMARC; writes\n"
     "           DIR/rampart-mail.yaml and DIR/postfix-main.cf. A key is never overwritten.\n"
     "check      audits what the domain publishes (SPF, Sender ID, DKIM, DomainKeys, DMARC, MX,\n"
     "           reverse DNS): a table of checks, ok / warn / fail with the reason and the fix.\n"
     "           The default selector is setup's: rampart.\n"
     "relaytest  tries outside addresses and the classic relay tricks against an SMTP server\n"
     "           (never sends DATA) and says which recipients it accepted.\n"
     "\n"
     "Exit: setup 0, 3 when a key cannot be made; check 0 when nothing fails, 1 when a check\n"
     "fails, 3 on DNS trouble; relaytest 0 closed, 1 open, 3 could not tell; 2 for usage\n"
     "errors.\n"},
    {"lb", cmd_lb, "TCP and HTTP load balancer with health checks",
     "usage: rampart lb [-c FILE]\n"
     "       rampart lb ctl [-s SOCKET | -c FILE] COMMAND...\n"
     "\n"
     "Runs the lb section of FILE (default " RAMPART_CONFIG_PATH ") in the foreground:\n"
     "listeners in http or tcp mode in front of server pools, health checks, the ctl\n"
     "socket and the stats listener. SIGHUP re-reads the file without dropping a\n"
     "connection (listeners are kept, requests in flight finish on the old config); a\n"
     "file with errors is reported and the running configuration kept. SIGTERM stops.\n"
     "\n"
     "ctl talks to a running lb over its unix socket (lb.ctl-socket in FILE, or SOCKET):\n"
     "  -s, --socket SOCKET          the socket's path (FILE is then not read)\n"
     "  -c, --config FILE            read lb.ctl-socket from FILE\n"
     "  show servers [LISTENER]      servers with state and counters\n"
     "  show json | show prometheus  the same as JSON or Prometheus text\n"
     "  disable LISTENER/SERVER      maintenance: no new requests\n"
     "  enable LISTENER/SERVER       back in the pool\n"
     "  drain LISTENER/SERVER        no new clients; those in flight finish\n"
     "  weight LISTENER/SERVER N     0 to 256\n"
     "\n"
     "Exit 0 on success, 1 when the lb refused the command, 2 for a usage or config\n"
     "error, 3 when the socket cannot be reached.\n"},
    {"guard", cmd_guard, "SSH brute-force blocking with nftables",
     "usage: rampart guard [-c FILE]\n"
     "       rampart guard ban ADDR [--for DURATION | --permanent] [--reason TEXT] [--fleet]\n"
     "                         [-c FILE]\n"
     "       rampart guard unban ADDR [--fleet] [-c FILE]\n"
     "       rampart guard list [--json] [--fleet] [-c FILE]\n"
     "       rampart guard test-log FILE [-q] [-c FILE]\n"
     "\n"
     "Runs the guard section of FILE (default " RAMPART_CONFIG_PATH ") in the foreground:\n"
     "the rate rule (iptables -m recent --update --seconds S --hitcount H, exactly) in\n"
     "table inet rampart, authentication failures read from the journal and log files\n"
     "(OpenSSH, Dropbear; Postfix SASL and Dovecot optionally), scored per source and\n"
     "banned in nftables sets with escalating times, a permanent blocklist. Loopback, the\n"
     "host's own addresses, the whitelist and sources that logged in are never banned.\n"
     "Bans are kept in guard.state (SQLite) and in the table, which stays when guard stops.\n"
     "guard.mode observe logs \"would ban\" and leaves the firewall alone. SIGHUP reloads.\n"
     "\n"
     "ban       bans ADDR (an address: its ban prefix; or a CIDR) for DURATION, permanently,\n"
     "          or for the escalated ban time; a whitelisted address is refused\n"
     "unban     lifts the ban and forgets the source's ban count\n"
     "list      bans in force, with time left, count, origin (auto, manual, fleet:MACHINE)\n"
     "          and reason\n"
     "--fleet   with guard.share: ban or unban on every machine of the fleet (written to its\n"
     "          database at once), or list the fleet's bans of every machine\n"
     "test-log  a dry run of the matcher over FILE: each line that counts, for whom, with\n"
     "          what danger, and per source whether its danger reaches ban.threshold\n"
     "\n"
     "Exit 0 on success, 1 when a ban cannot be applied or ADDR was not banned, 2 for a\n"
     "usage or config error.\n"},
    {NULL, NULL, NULL, NULL},
};

const struct cmd_verb *
cmd_verb_find(const char *name)
{
	for (const struct cmd_verb *v = cmd_verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

const char *
cmd_default_config(void)
{
	return RAMPART_CONFIG_PATH;
}

static void __attribute__((format(printf, 2, 0)))
cmd_verror(const char *verb, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "rampart: %s: %s\n", verb, msg);
}

void
cmd_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmd_verror(verb, fmt, ap);
	va_end(ap);
}

int
cmd_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmd_verror(verb, fmt, ap);
	va_end(ap);
	/* "guard ban": help is per verb */
	fprintf(stderr, "Try 'rampart help %.*s'.\n", (int)strcspn(verb, " "), verb);
	return CMD_EXIT_USAGE;
}

int
cmd_print_usage(const char *verb)
{
	const struct cmd_verb *v = cmd_verb_find(verb);
	if (v && v->usage)
		fputs(v->usage, stdout);
	else if (v)
		printf("%s: %s (not yet available in this build)\n", v->name, v->summary);
	return CMD_EXIT_OK;
}

int
cmd_bad_option(const char *verb, int argc, char **argv, int ret)
{
	/* optind has moved past the offending word */
	const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	bool is_long = strncmp(word, "--", 2) == 0;
	int len = is_long ? (int)strcspn(word, "=") : 2;

	if (ret == ':')
		return cmd_usage_error(verb, "option '%.*s' needs a value", len, word);
	if (!is_long && optopt)
		return cmd_usage_error(verb, "unknown option '-%c'", optopt);
	return cmd_usage_error(verb, "unknown option '%.*s'", len, word);
}

/* "rampart -c x.yaml up": options belong to a verb; show the line the right way round. */
static int
cmd_option_before_verb(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		if (!cmd_verb_find(argv[i]))
			continue;
		fprintf(stderr, "rampart: options go after the verb: rampart %s", argv[i]);
		for (int j = 1; j < argc; j++)
			if (j != i)
				fprintf(stderr, " %s", argv[j]);
		fprintf(stderr, "\nTry 'rampart help %s'.\n", argv[i]);
		return CMD_EXIT_USAGE;
	}
	fprintf(stderr,
	        "rampart: unknown option '%s': options go after the verb (rampart VERB "
	        "[OPTIONS], e.g. rampart up -c FILE)\nTry 'rampart help'.\n",
	        argv[1]);
	return CMD_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	log_detect_journal();
	if (argc < 2) {
		cmd_help_list(stderr);
		return CMD_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		return cmd_help(1, argv);
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	if (name[0] == '-' && name[1])
		return cmd_option_before_verb(argc, argv);

	const struct cmd_verb *v = cmd_verb_find(name);
	if (!v) {
		fprintf(stderr, "rampart: unknown verb '%s'\nTry 'rampart help'.\n", name);
		return CMD_EXIT_USAGE;
	}
	if (!v->run) {
		cmd_error(name, "not yet available in this build");
		return CMD_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return cmd_print_usage(name);
	}
	return v->run(argc - 1, argv + 1);
}
