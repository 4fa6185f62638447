#!/bin/sh
# Fails when a source file calls a function the house rules ban (DESIGN.md: Ownership).
top=${1:-.}
hits=$(grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|gets)[[:space:]]*\(' \
	"$top/src" "$top/tests/unit" "$top/tests/fuzz" --include='*.c' --include='*.h' 2>/dev/null)
if [ -n "$hits" ]; then
	printf 'banned functions used:\n%s\n' "$hits"
	exit 1
fi
exit 0
