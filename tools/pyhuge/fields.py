"""struct pyhuge_stats and its stats page, as include/pyhuge.h declares them.

Generated: python3 -m pyhuge.header include/pyhuge.h > tools/pyhuge/fields.py
(test/cli/test_fields.py fails when this file and the header differ).
"""

STATS_VERSION = 4

# (field, the stats version that added it), in the struct's order.
FIELDS = [
    ('version', 1),
    ('enabled', 1),
    ('arena_size', 1),
    ('arenas_huge', 1),
    ('arenas_fallback', 1),
    ('arenas_live', 1),
    ('pages_now', 1),
    ('pages_peak', 1),
    ('pages_cached', 1),
    ('pages_demoted', 1),
    ('fallback_pool', 1),
    ('fallback_fault', 1),
    ('fallback_cap', 1),
    ('fallback_space', 1),
    ('fallback_backoff', 1),
    ('fallback_thp', 1),
    ('arenas_thp', 2),
    ('pages_thp', 2),
    ('pages_thp_peak', 2),
    ('pages_forked', 3),
    ('arenas_unseen', 4),
]

# struct pyhuge_stats_page: (member, C type, count).
PAGE = [
    ('magic', 'char', 16),
    ('pid', 'uint64_t', 1),
    ('arm', 'char', 64),
    ('stats', 'struct pyhuge_stats', 1),
]
PAGE_MAGIC = b'pyhuge-stats-v2'
ARM_MAX = 64
