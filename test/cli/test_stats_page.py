"""`pyhuge stats` reading stats pages: today's (v2, with the arm label),
older ones, newer ones and garbage, each said plainly; and the report shows
every field of struct pyhuge_stats."""
import contextlib
import io
import struct
import unittest

from pyhuge import fields, stats

V4 = [name for name, _ in fields.FIELDS]


def page_v2(arm=b"treatment", version=4, nfields=None):
    """A page laid out as include/pyhuge.h declares it (by hand here; the
    compiler's offsets are checked in test_fields.py)."""
    n = len(V4) if nfields is None else nfields
    values = [version] + [100 + i for i in range(1, n)]
    data = struct.pack("<16sQ64s%dQ" % n, b"pyhuge-stats-v2", 4242, arm, *values)
    return data + b"\0" * (4096 - len(data))


class StatsPage(unittest.TestCase):
    def test_v2_page_every_field_and_the_arm(self):
        p = stats.decode_page(page_v2())
        self.assertEqual(p["arm"], "treatment")
        self.assertEqual(p["pid"], 4242)
        self.assertEqual(p["fields"]["version"], 4)
        for i, name in enumerate(V4[1:], 1):
            self.assertEqual(p["fields"][name], 100 + i, name)
        self.assertFalse(p["newer_fields"])

    def test_report_shows_every_field(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            stats.print_counters(stats.decode_page(page_v2()))
        text = out.getvalue()
        for i, name in enumerate(V4[1:], 1):
            self.assertIn("\n  %-20s %d\n" % (name, 100 + i), text)
        self.assertIn('arm "treatment"', text)
        self.assertIn("stats page pyhuge-stats-v2", text)

    def test_unset_arm(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            stats.print_counters(stats.decode_page(page_v2(arm=b"")))
        self.assertIn("PYHUGE_ARM unset", out.getvalue())

    def test_version_3_library_has_no_arenas_unseen(self):
        data = bytearray(page_v2(version=3, nfields=len(V4) - 1))
        # whatever follows the struct of a version 3 library is not read
        struct.pack_into("<Q", data, 16 + 8 + 64 + 8 * (len(V4) - 1), 999)
        p = stats.decode_page(bytes(data))
        self.assertEqual(p["fields"]["arenas_unseen"], 0)
        self.assertEqual(p["fields"]["pages_forked"], 100 + V4.index("pages_forked"))

    def test_newer_library_is_said(self):
        p = stats.decode_page(page_v2(version=fields.STATS_VERSION + 1))
        self.assertTrue(p["newer_fields"])

    def test_older_v1_page_is_read_and_said(self):
        values = [1] + [10 + i for i in range(1, 15)]
        data = struct.pack("<16sQ15Q", b"pyhuge-stats-v1", 7, *values)
        p = stats.decode_page(data + b"\0" * (4096 - len(data)))
        self.assertIsNone(p["arm"])
        self.assertEqual(p["page"], "pyhuge-stats-v1")
        self.assertEqual(p["fields"]["fallback_backoff"], 10 + 14)
        self.assertEqual(p["fields"]["fallback_thp"], 0, "version 1 had five fallback reasons")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            stats.print_counters(p)
        self.assertIn("an older library: its page has no arm label", out.getvalue())

    def test_unknown_page_formats_are_said(self):
        data = page_v2().replace(b"pyhuge-stats-v2", b"pyhuge-stats-v9", 1)
        with self.assertRaisesRegex(stats.NoStats, "newer than the 'pyhuge-stats-v2' this pyhuge reads"):
            stats.decode_page(data)
        with self.assertRaisesRegex(stats.NoStats, "does not start with a pyhuge magic"):
            stats.decode_page(b"\x01" * 4096)
