#!/usr/bin/env bash
# The Debian package: builds from a copy of the tree with
# `dpkg-buildpackage -b -us -uc`, installs, works, and removes cleanly.
# Prints TAP. Needs root and debhelper/dpkg-dev (scripts/install-deps.sh test).
#   test_deb.sh SOURCE_ROOT
set -u
src=${1:?source root}
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { local what=$1; shift; if "$@" >/tmp/pyhuge-deb-step.log 2>&1; then ok "$what"; else not_ok "$what"; sed 's/^/# /' /tmp/pyhuge-deb-step.log | tail -20; fi; }

# The version has one source: meson.build's project().
version=$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -1)

echo "TAP version 13"
echo "1..9"
if ! command -v dpkg-buildpackage >/dev/null || ! dpkg-query -W debhelper >/dev/null 2>&1; then
    for i in 1 2 3 4 5 6 7 8 9; do skip "package step $i" "no dpkg-buildpackage/debhelper (apt-get install dpkg-dev debhelper)"; done
    exit 0
fi
work=$(mktemp -d /tmp/pyhuge-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
tree="$work/pyhuge-$version"
mkdir -p "$tree"
# What git tracks (as it is in the working tree); every file, outside git.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    ( cd "$src" && git ls-files -z | xargs -0 tar cf - ) | tar xf - -C "$tree"
else
    ( cd "$src" && tar cf - --exclude='./build*' . ) | tar xf - -C "$tree"
fi
check "dpkg-buildpackage -b -us -uc builds the package" \
    bash -c "cd '$tree' && dpkg-buildpackage -b -us -uc"
deb=$(ls "$work"/pyhuge_"$version"_*.deb 2>/dev/null | head -1)

steps=("the package installs" "pyhuge --version is the packaged one ($version)"
       "pkg-config finds the library ($version) and header"
       "man pages pyhuge(1) and libpyhuge(7) are installed"
       "nm -D exports the API and only the hooks besides"
       "the installed command finds the installed library (pyhuge check)"
       "the installed command runs Python with the installed library"
       "the package removes cleanly")
if [ -z "$deb" ]; then
    for s in "${steps[@]}"; do not_ok "$s: no pyhuge_${version}_*.deb was built"; done
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    for s in "${steps[@]}"; do skip "$s" "needs root"; done
    exit $((fails > 0))
fi
if dpkg-query -W -f='${Status}' pyhuge 2>/dev/null | grep -q "ok installed"; then
    for s in "${steps[@]}"; do skip "$s" "pyhuge is already installed here; not touching it"; done
    exit $((fails > 0))
fi
export version
check "${steps[0]}" dpkg -i "$deb"
check "${steps[1]}" bash -c '/usr/bin/pyhuge --version | grep -qx "pyhuge $version"'
check "${steps[2]}" bash -c \
    'test "$(pkg-config --modversion pyhuge)" = "$version" && test -f /usr/include/pyhuge.h'
check "${steps[3]}" \
    test -f /usr/share/man/man1/pyhuge.1.gz -a -f /usr/share/man/man7/libpyhuge.7.gz
check "${steps[4]}" bash -c \
    'lib=$(ls /usr/lib/*/libpyhuge.so.0) && syms=$(nm -D --defined-only "$lib" | awk "{print \$3}") &&
     echo "$syms" | grep -qx pyhuge_get_stats && echo "$syms" | grep -qx pyhuge_version &&
     [ "$(echo "$syms" | grep -v -E "^(mmap|mmap64|munmap|mremap|mprotect|pkey_mprotect|madvise|posix_madvise|mlock|mlock2|munlock|prctl|pyhuge_get_stats|pyhuge_version)$" | wc -l)" = 0 ]'
check "${steps[5]}" bash -c \
    'env -u PYHUGE_LIB /usr/bin/pyhuge check /usr/bin/python3 | grep -E "^ +install libdir +/usr/lib/.*/libpyhuge.so.0: found$"'
check "${steps[6]}" bash -c \
    'env -u PYHUGE_LIB /usr/bin/pyhuge run --stats -- /usr/bin/python3 -c "x = [(i,) for i in range(200000)]" 2>&1 | grep -q "stats: arenas huge="'
check "${steps[7]}" bash -c \
    'dpkg-query -W pyhuge && dpkg -P pyhuge && ! test -e /usr/bin/pyhuge && ! ls /usr/lib/*/libpyhuge* 2>/dev/null'
exit $((fails > 0))
