"""What a binary is, read from its ELF headers without binutils: the
dynamic linker it names and the symbols it imports."""
import re
import struct
import subprocess


def elf_info(path):
    """Interpreter, whether dynamic, and the undefined dynamic symbols."""
    info = {"elf": False, "interp": None, "dynamic": False, "undefined": set()}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return info
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return info
    info["elf"] = True
    end = "<" if data[5] == 1 else ">"
    (e_phoff, e_shoff) = struct.unpack_from(end + "QQ", data, 0x20)
    (e_phentsize, e_phnum, e_shentsize, e_shnum) = struct.unpack_from(end + "HHHH", data, 0x36)
    for i in range(e_phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(end + "IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 3:  # PT_INTERP
            info["interp"] = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode(errors="replace")
        if p_type == 2:  # PT_DYNAMIC
            info["dynamic"] = True
    sections = []
    for i in range(e_shnum):
        sh = struct.unpack_from(end + "IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
        sections.append(sh)
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        s_off, sym_off, sym_size, entsize = strtab[4], sh[4], sh[5], sh[9] or 24
        for j in range(sym_size // entsize):
            st_name, st_info, _, st_shndx = struct.unpack_from(end + "IBBH", data, sym_off + j * entsize)
            if st_shndx == 0 and st_name:
                n = data[s_off + st_name:data.index(b"\0", s_off + st_name)].decode(errors="replace")
                info["undefined"].add(n.split("@")[0])
    return info


def libpython_of(exe):
    """The libpython a Python loads, or None when it is linked into the executable."""
    try:
        out = subprocess.run(["ldd", exe], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        m = re.search(r"(libpython[^ ]*) => (\S+)", line)
        if m:
            return m.group(2)
    return None

