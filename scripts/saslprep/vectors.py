#!/usr/bin/env python3
"""Writes testdata/nfkc.txt: strings and their NFKC by Python's unicodedata
(Unicode 14.0), one per line as code points in hex: input TAB expected.
Every code point with a decomposition alone, every composite's canonical
decomposition, then random mixes of starters, combining marks of several
classes, Hangul jamo and syllables and compatibility characters."""
import random
import unicodedata as u

def line(s):
    h = lambda t: ' '.join('%04X' % ord(c) for c in t)
    return h(s) + '\t' + h(u.normalize('NFKC', s))

random.seed(27)
out = []
pool = []
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3 and cp % 97:
        continue  # one Hangul syllable in 97: the arithmetic is the same
    c = chr(cp)
    if u.normalize('NFKD', c) != c:
        out.append(line(c))
        pool.append(c)
        if len(u.normalize('NFD', c)) > 1:
            out.append(line(u.normalize('NFD', c)))
    elif u.combining(c):
        pool.append(c)
pool += list('aeiouAEIOUnsz') + [chr(c) for c in range(0x1100, 0x1113)] + [chr(c) for c in range(0x1161, 0x1176)] + \
    [chr(c) for c in range(0x11A8, 0x11C3)] + [chr(c) for c in (0xAC00, 0xAC01, 0xD7A3, 0x0300, 0x0301, 0x0323, 0x0327, 0x031B, 0x05B0, 0x3099)]
for _ in range(3000):
    out.append(line(''.join(random.choice(pool) for _ in range(random.randint(2, 7)))))
print('\n'.join(out))
