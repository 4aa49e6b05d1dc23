#!/bin/sh
# Every section reference (§N or §N.M) in the given files and folders must name a heading
# of the specification (a Markdown heading "#... §N.M title" in docs/spec.md).
# Usage: tests/check_refs.sh SPEC PATH...   Prints one line per unresolved reference and
# exits 1 if there is any; otherwise prints how many references it checked.
export LC_ALL=C
spec=$1; shift
[ -r "$spec" ] || { echo "check-refs: cannot read $spec"; exit 1; }
heads=$(grep -E '^#+ +§[0-9]+(\.[0-9]+)*( |$)' "$spec" | grep -oE '§[0-9]+(\.[0-9]+)*' | sort -u)
[ -n "$heads" ] || { echo "check-refs: no § headings in $spec"; exit 1; }
refs=$(grep -rIHonE '§[0-9]+(\.[0-9]+)*' "$@") || true
n=0; bad=0
for line in $refs; do
    n=$((n + 1))
    ref=${line##*:}
    if ! printf '%s\n' "$heads" | grep -qxF "$ref"; then
        echo "check-refs: ${line%:*}: $ref has no heading in $spec"
        bad=$((bad + 1))
    fi
done
if [ "$bad" -ne 0 ]; then echo "check-refs: $bad of $n references unresolved"; exit 1; fi
[ "$n" -gt 0 ] || { echo "check-refs: no references found in $*"; exit 1; }
echo "check-refs: $n references, all resolve to headings of $spec"
