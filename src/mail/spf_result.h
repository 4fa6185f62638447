/* SPF and Sender ID results (RFC 7208 §2.6, RFC 4406 §3) and their names. */
#pragma once

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* "pass", "softfail", ...: the form used in Authentication-Results and on the command line. */
const char *spf_result_name(enum spf_result r);
/* "Pass", "SoftFail", "PermError", ...: the form pyspf and most MTAs put in Received-SPF. */
const char *spf_result_title(enum spf_result r);
/* Case-insensitive name to result; -EINVAL for anything else. */
int spf_result_parse(const char *name, enum spf_result *out);
