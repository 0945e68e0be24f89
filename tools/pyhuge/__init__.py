"""pyhuge, the command: run stock CPython with its pymalloc arenas on 2 MiB huge pages.

One module per job: common (paths, the library, the kernel's accounts), elf
(what a binary is), check, reserve, run, ab (interleaved runs), stats and top
(a running process's stats page), fields (struct pyhuge_stats as the public
header declares it) and header (the parser that checks it), compare with
samples (reading operators' exports) and ranktest (Mann-Whitney, Hodges-Lehmann),
cli (the arguments). `tools/pyhuge.py` (installed as `pyhuge`) launches it.
"""
