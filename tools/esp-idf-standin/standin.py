#!/usr/bin/env python3
# A stand-in for Espressif's toolchain, so that ESP-IDF's own CMake configure and compile command lines
# run on a machine with only Debian's cross compilers (tools/esp-idf-check.ts makes the links to it).
# It answers to Espressif's names (riscv32-esp-elf-, xtensa-esp32-elf-, xtensa-esp32s3-elf-,
# xtensa-esp-elf- followed by gcc, g++, ar, ...) and calls Debian's compiler with the same command line:
#   - RISC-V: riscv64-unknown-elf-gcc for rv32imc/ilp32 (int32_t is already `long` there, as Espressif's);
#   - Xtensa: xtensa-lx106-elf-gcc (ESP8266's core) with the windowed ABI's and the hard float's macros,
#     and int32_t as `long`, Espressif's type model; compile only (no ESP32 code comes out of it).
# Flags GCC 12 lacks are left out; `-std=gnu23` is `-std=gnu2x`. C library headers: Debian's newlib
# (ESP-IDF v5.x) or picolibc (v6) headers, with the small fixes in shim/ (each file says why).
# CMake's compiler checks link test programs: a "link" writes the first object (or the compiled source)
# where the executable goes (check_type_size reads its strings); ar and ranlib write empty archives.
# Nothing here produces a runnable binary: tools/esp-idf-check.ts compiles with -S -o /dev/null.
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
SHIM = os.path.join(HERE, 'shim')
PICOLIBC_INCLUDE = '/usr/lib/picolibc/riscv64-unknown-elf/include'
PREFIXES = {'riscv32-esp-elf-': 'riscv', 'xtensa-esp32-elf-': 'xtensa', 'xtensa-esp32s3-elf-': 'xtensa', 'xtensa-esp-elf-': 'xtensa'}
DEBIAN = {'riscv': 'riscv64-unknown-elf-', 'xtensa': 'xtensa-lx106-elf-'}
# flags Debian's GCC 12 does not know: Espressif's tuning, errata workarounds and dynamic core config
DROP_PREFIXES = ('-mtune=esp', '-mdisable-hardware-atomics', '-mno-relax-zcmp', '-mdynconfig', '-mfix-esp32-psram-cache')
XTENSA_DEFS = ['-U__XTENSA_CALL0_ABI__', '-D__XTENSA_WINDOWED_ABI__=1', '-D__XTENSA_HARD_FLOAT__=1',
               '-U__INT32_TYPE__', '-D__INT32_TYPE__=long int', '-U__UINT32_TYPE__', '-D__UINT32_TYPE__=long unsigned int',
               '-U__INT_LEAST32_TYPE__', '-D__INT_LEAST32_TYPE__=long int', '-U__UINT_LEAST32_TYPE__', '-D__UINT_LEAST32_TYPE__=long unsigned int']


def expand(args):
    """gcc's @file arguments (ESP-IDF v6 writes its flags into response files), expanded."""
    out = []
    for a in args:
        if a.startswith('@') and os.path.isfile(a[1:]):
            with open(a[1:]) as f:
                out.extend(expand(shlex.split(f.read())))
        else:
            out.append(a)
    return out


def compile_args(arch, args):
    picolibc = any(a.startswith('-specs=') and 'picolibc' in a for a in args) or any('picolibc' in a and a.startswith('--specs') for a in args)
    out = []
    for a in args:
        if a.startswith(DROP_PREFIXES):
            continue
        if a == '-std=gnu23':
            a = '-std=gnu2x'
        elif a == '-std=gnu++23':
            a = '-std=gnu++2b'
        elif a == '-std=gnu++26':
            a = '-std=gnu++2c'
        if arch == 'xtensa' and (a.startswith('-specs=') or a.startswith('--specs')):
            continue   # picolibc's specs are Debian's RISC-V ones: Xtensa takes the headers alone (below)
        out.append(a)
    if arch == 'riscv':
        if not any(a.startswith('-march=') for a in out):
            out.insert(0, '-march=rv32imc_zicsr_zifencei')
        if not any(a.startswith('-mabi=') for a in out):
            out.insert(0, '-mabi=ilp32')
    else:
        out = XTENSA_DEFS + out
    if picolibc:
        if arch == 'xtensa':
            out += ['-isystem', PICOLIBC_INCLUDE, '-ftls-model=local-exec']
        out += ['-I', os.path.join(SHIM, 'picolibc')]
    else:
        out += ['-isystem', os.path.join(SHIM, 'newlib'), '-isystem', '/usr/include/newlib']
    return out


def main():
    name = os.path.basename(sys.argv[0])
    prefix = next((p for p in PREFIXES if name.startswith(p)), None)
    if prefix is None:
        sys.stderr.write(f'esp-idf stand-in: called as {name}, which is no Espressif tool name\n')
        return 2
    arch, tool = PREFIXES[prefix], name[len(prefix):]
    debian = DEBIAN[arch]
    args = expand(sys.argv[1:])
    if tool in ('gcc', 'g++', 'cc', 'c++', 'cpp'):
        # -dumpmachine answers Debian's name: ESP-IDF's tools.json does not know it, which is a warning
        # ("Can not get version for tool"), where Espressif's name with GCC 12's version is an error
        if not args or any(a.startswith(('-print', '--print', '-dump', '--version')) or a == '-v' for a in args):
            return subprocess.call([debian + tool] + args)
        cargs = compile_args(arch, args)
        if tool != 'cpp' and not any(a in ('-c', '-S', '-E', '-M', '-MM') for a in cargs):
            return link(debian + tool, cargs)
        return subprocess.call([debian + tool] + cargs)
    if tool in ('ar', 'gcc-ar'):
        return empty_archive(args)
    if tool in ('ranlib', 'gcc-ranlib'):
        return 0
    return subprocess.call([debian + tool] + args)


def link(compiler, args):
    """A link: the object file (or the one source, compiled) written where the executable goes."""
    out, inputs, rest, i = None, [], [], 0
    while i < len(args):
        a = args[i]
        if a == '-o':
            out = args[i + 1]
            i += 2
            continue
        if not a.startswith('-') and os.path.splitext(a)[1] in ('.o', '.obj', '.c', '.cpp', '.cc', '.cxx', '.S', '.s'):
            inputs.append(a)
        elif a.startswith(('-l', '-L', '-Wl,', '-T', '-nostartfiles', '-nostdlib', '-u')):
            pass
        else:
            rest.append(a)
        i += 1
    out = out or 'a.out'
    objs = [a for a in inputs if a.endswith(('.o', '.obj'))]
    if objs:
        with open(objs[0], 'rb') as f, open(out, 'wb') as g:
            g.write(f.read())
        return 0
    if inputs:
        return subprocess.call([compiler] + rest + ['-c', inputs[0], '-o', out])
    open(out, 'wb').close()
    return 0


def empty_archive(args):
    """ar: an empty file where the archive goes (nothing is linked)."""
    for a in args[1:]:
        if a.endswith('.a'):
            open(a, 'wb').close()
            return 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
