#!/usr/bin/env bash
# The version has one source, meson.build's project(version:); every other
# place that states it is generated from it or checked here. Prints TAP,
# one case per place.
#   test_version.sh SOURCE_ROOT PROJECT_VERSION CONFIGURED_PYHUGE
set -u
src=${1:?source root}
want=${2:?project version}
built=${3:?the pyhuge command meson configured}
python=/usr/bin/python3
[ -x "$python" ] || python=python3
n=0
fails=0
# same WHAT FOUND: one case, passing when FOUND is the project version.
same() {
    n=$((n + 1))
    if [ "$2" = "$want" ]; then
        echo "ok $n - $1: $2"
    else
        fails=$((fails + 1))
        echo "not ok $n - $1 says '${2}', meson.build says $want"
    fi
}

echo "TAP version 13"
echo "1..7"
# The top entry's version, without a Debian revision (0.1.0-1 -> 0.1.0).
same "debian/changelog, top entry" \
    "$(sed -n '1s/^pyhuge (\([^)]*\)).*/\1/p' "$src/debian/changelog" | sed 's/-[^-]*$//')"
h="$src/include/pyhuge.h"
same "include/pyhuge.h, PYHUGE_VERSION_MAJOR.MINOR.PATCH" "$(
    for part in MAJOR MINOR PATCH; do
        sed -n "s/^#define PYHUGE_VERSION_$part \([0-9]*\)\$/\1/p" "$h"
    done | paste -sd.)"
same "doc/pyhuge.1, .TH footer" "$(sed -n '1s/^\.TH .* "pyhuge \([^"]*\)".*/\1/p' "$src/doc/pyhuge.1")"
same "doc/libpyhuge.7, .TH footer" "$(sed -n '1s/^\.TH .* "pyhuge \([^"]*\)".*/\1/p' "$src/doc/libpyhuge.7")"
# Every mention of a package file name in the README (pyhuge_X.Y.Z_*.deb),
# if it names one.
readme=$(grep -o 'pyhuge_[0-9][0-9.]*_' "$src/README.md" | sort -u | sed 's/^pyhuge_\(.*\)_$/\1/' | paste -sd' ')
same "README.md, Debian package name" "${readme:-$want}"
# The command: from a checkout it reads meson.build; the copy meson
# configures (and installs) has the version written in.
same "tools/pyhuge.py --version, run from the checkout" \
    "$("$python" "$src/tools/pyhuge.py" --version 2>&1 | sed 's/^pyhuge //')"
same "pyhuge --version, the configured command ($built)" \
    "$("$python" "$built" --version 2>&1 | sed 's/^pyhuge //')"
exit $((fails > 0))
