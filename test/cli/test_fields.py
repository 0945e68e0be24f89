"""The CLI's copy of struct pyhuge_stats (tools/pyhuge/fields.py) against the
public header, include/pyhuge.h: the same fields in the same order, the same
stats page layout, and the offsets a C compiler gives them."""
import os
import shutil
import subprocess
import tempfile
import unittest

from pyhuge import fields, header

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = os.path.join(ROOT, "include", "pyhuge.h")
FIELDS_PY = os.path.join(ROOT, "tools", "pyhuge", "fields.py")


def header_text():
    with open(HEADER) as f:
        return f.read()


class FieldsMatchTheHeader(unittest.TestCase):
    def test_fields_py_is_what_the_header_generates(self):
        with open(FIELDS_PY) as f:
            have = f.read()
        want = header.render(header.parse(header_text()))
        self.assertEqual(have, want, "tools/pyhuge/fields.py differs from include/pyhuge.h: run "
                         "python3 -m pyhuge.header include/pyhuge.h > tools/pyhuge/fields.py")

    def test_every_field_of_struct_pyhuge_stats_in_order(self):
        h = header.parse(header_text())
        self.assertEqual(fields.FIELDS, h["fields"])
        self.assertEqual(fields.STATS_VERSION, h["stats_version"])
        self.assertIn(("pages_forked", 3), fields.FIELDS)  # the field the old hand copy lacked
        self.assertEqual(fields.FIELDS[-1][1], fields.STATS_VERSION,
                         "the newest field belongs to the header's PYHUGE_STATS_VERSION")

    def test_stats_page_layout(self):
        h = header.parse(header_text())
        self.assertEqual(fields.PAGE, h["page"])
        self.assertEqual(fields.PAGE_MAGIC, b"pyhuge-stats-v2")
        self.assertEqual(fields.ARM_MAX, 64)

    def test_a_field_appended_to_the_header_is_seen(self):
        text = header_text().replace(
            "};\n\n/* Where tools find",
            "    /* Version 5: a test. */\n    uint64_t arenas_new;  /* what it counts */\n"
            "};\n\n/* Where tools find", 1)
        self.assertNotEqual(text, header_text())
        h = header.parse(text)
        self.assertEqual(h["fields"][-1], ("arenas_new", 5))
        self.assertNotEqual(h["fields"], fields.FIELDS, "the check would fail on this drift")

    def test_a_field_of_another_type_is_an_error(self):
        text = header_text().replace("uint64_t pages_forked;", "uint32_t pages_forked;")
        with self.assertRaises(header.HeaderError):
            header.parse(text)


class OffsetsMatchTheCompiler(unittest.TestCase):
    """What a C compiler makes of the header: each field's offset is 8 times
    its index in fields.FIELDS; the page's members sit where fields.PAGE
    says."""

    def test_offsets(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("no C compiler")
        lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "pyhuge.h"',
                 "int main(void) {"]
        fallbacks = [n for n, _ in fields.FIELDS if n.startswith("fallback_")]
        for name, _ in fields.FIELDS:
            member = ("fallbacks[%d]" % fallbacks.index(name)) if name in fallbacks else name
            lines.append('printf("%s %%zu\\n", offsetof(struct pyhuge_stats, %s));' % (name, member))
        lines.append('printf("sizeof %zu\\n", sizeof(struct pyhuge_stats));')
        for name, _, _ in fields.PAGE:
            lines.append('printf("page.%s %%zu\\n", offsetof(struct pyhuge_stats_page, %s));'
                         % (name, name))
        lines.append("return 0; }")
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "o.c"), os.path.join(d, "o")
            with open(src, "w") as f:
                f.write("\n".join(lines))
            subprocess.run([cc, "-std=c11", "-I", os.path.dirname(HEADER), src, "-o", exe], check=True)
            out = subprocess.run([exe], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
        got = dict(line.split() for line in out.splitlines())
        for i, (name, _) in enumerate(fields.FIELDS):
            self.assertEqual(int(got[name]), 8 * i, name)
        self.assertEqual(int(got["sizeof"]), 8 * len(fields.FIELDS))
        offset = 0
        for name, ctype, count in fields.PAGE:
            self.assertEqual(int(got["page." + name]), offset, name)
            offset += count * (1 if ctype == "char" else 8)
