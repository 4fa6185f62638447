#include "spf_result.h"

#include <errno.h>
#include <stddef.h>
#include <strings.h>

static const char *const names[] = {
    [SPF_NONE] = "none",           [SPF_NEUTRAL] = "neutral",   [SPF_PASS] = "pass",
    [SPF_FAIL] = "fail",           [SPF_SOFTFAIL] = "softfail", [SPF_TEMPERROR] = "temperror",
    [SPF_PERMERROR] = "permerror",
};

static const char *const titles[] = {
    [SPF_NONE] = "None",           [SPF_NEUTRAL] = "Neutral",   [SPF_PASS] = "Pass",
    [SPF_FAIL] = "Fail",           [SPF_SOFTFAIL] = "SoftFail", [SPF_TEMPERROR] = "TempError",
    [SPF_PERMERROR] = "PermError",
};

const char *
spf_result_name(enum spf_result r)
{
	return (unsigned)r <= SPF_PERMERROR ? names[r] : "permerror";
}

const char *
spf_result_title(enum spf_result r)
{
	return (unsigned)r <= SPF_PERMERROR ? titles[r] : "PermError";
}

int
spf_result_parse(const char *name, enum spf_result *out)
{
	for (unsigned i = 0; i <= SPF_PERMERROR; i++) {
		if (strcasecmp(name, names[i]) == 0) {
			*out = (enum spf_result)i;
			return 0;
		}
	}
	return -EINVAL;
}
