"""Reads struct pyhuge_stats and the stats page layout out of the public
header, include/pyhuge.h, so that fields.py can be checked against it (a
test does, test/cli/test_fields.py) and rewritten from it:

    python3 -m pyhuge.header include/pyhuge.h > tools/pyhuge/fields.py
"""
import re
import sys


class HeaderError(Exception):
    pass


def _strip_comments_keeping_versions(body):
    """The struct body as (field declaration or 'VERSION n') items, in order:
    a comment that opens with 'Version N:' starts the fields of version N."""
    items = []
    for m in re.finditer(r"/\*(.*?)\*/|([^;/]+;)", body, re.S):
        comment, decl = m.group(1), m.group(2)
        if comment is not None:
            v = re.match(r"\s*Version (\d+)\s*:", comment)
            if v:
                items.append(("VERSION", int(v.group(1))))
        elif decl.strip():
            items.append(("DECL", " ".join(decl.split())))
    return items


def _define(text, name):
    m = re.search(r"^#define\s+%s\s+(.+?)\s*$" % name, text, re.M)
    if not m:
        raise HeaderError("no #define %s" % name)
    return m.group(1)


def _struct_body(text, name):
    m = re.search(r"struct\s+%s\s*\{(.*?)\n\};" % name, text, re.S)
    if not m:
        raise HeaderError("no struct %s" % name)
    return m.group(1)


def parse(text):
    """{'stats_version', 'fields': [(name, version)], 'magic', 'arm_max',
    'page': [(name, kind, count)]} from the header's text."""
    enum = re.search(r"enum\s+pyhuge_fallback\s*\{(.*?)\};", text, re.S)
    if not enum:
        raise HeaderError("no enum pyhuge_fallback")
    members = [m for m in re.findall(r"^\s*PYHUGE_FALLBACK_(\w+)", re.sub(r"/\*.*?\*/", "", enum.group(1), flags=re.S), re.M)
               if m != "COUNT"]
    fields, version = [], 1
    for kind, item in _strip_comments_keeping_versions(_struct_body(text, "pyhuge_stats")):
        if kind == "VERSION":
            version = item
            continue
        m = re.fullmatch(r"uint64_t (\w+)(?:\[(\w+)\])?;", item)
        if not m:
            raise HeaderError("struct pyhuge_stats: a field that is not uint64_t: %r" % item)
        if m.group(2):
            if m.group(2) != "PYHUGE_FALLBACK_COUNT":
                raise HeaderError("struct pyhuge_stats: an array of unknown length: %r" % item)
            # fallbacks[PYHUGE_FALLBACK_COUNT], one per enum pyhuge_fallback member
            base = m.group(1).rstrip("s")
            fields += [("%s_%s" % (base, e.lower()), version) for e in members]
        else:
            fields.append((m.group(1), version))
    page = []
    for kind, item in _strip_comments_keeping_versions(_struct_body(text, "pyhuge_stats_page")):
        if kind != "DECL":
            continue
        m = re.fullmatch(r"(char|uint64_t|struct pyhuge_stats) (\w+)(?:\[(\w+)\])?;", item)
        if not m:
            raise HeaderError("struct pyhuge_stats_page: unexpected %r" % item)
        count = m.group(3)
        if count and not count.isdigit():
            count = _define(text, count)
        page.append((m.group(2), m.group(1), int(count) if count else 1))
    magic = _define(text, "PYHUGE_STATS_PAGE_MAGIC")
    return {"stats_version": int(_define(text, "PYHUGE_STATS_VERSION")), "fields": fields,
            "magic": magic.strip('"'), "arm_max": int(_define(text, "PYHUGE_ARM_MAX")),
            "page": page}


def render(h):
    """fields.py's text for a parsed header."""
    lines = ['"""struct pyhuge_stats and its stats page, as include/pyhuge.h declares them.',
             "",
             "Generated: python3 -m pyhuge.header include/pyhuge.h > tools/pyhuge/fields.py",
             "(test/cli/test_fields.py fails when this file and the header differ).",
             '"""',
             "",
             "STATS_VERSION = %d" % h["stats_version"],
             "",
             "# (field, the stats version that added it), in the struct's order.",
             "FIELDS = ["]
    lines += ["    (%r, %d)," % f for f in h["fields"]]
    lines += ["]",
              "",
              "# struct pyhuge_stats_page: (member, C type, count).",
              "PAGE = ["]
    lines += ["    (%r, %r, %d)," % p for p in h["page"]]
    lines += ["]",
              "PAGE_MAGIC = %r" % h["magic"].encode(),
              "ARM_MAX = %d" % h["arm_max"],
              ""]
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2:
        print("usage: python3 -m pyhuge.header include/pyhuge.h", file=sys.stderr)
        return 64
    try:
        with open(argv[1]) as f:
            sys.stdout.write(render(parse(f.read())))
    except (OSError, HeaderError) as e:
        print("pyhuge.header: %s: %s" % (argv[1], e), file=sys.stderr)
        return 65
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
