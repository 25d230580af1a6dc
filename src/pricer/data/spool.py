"""Curated items spilled to disk as they come, so that `pricer data`'s memory does not grow with
its input: the texts go to an unnamed temporary file, and only what balancing, the split and the
report need stays in memory: price, category, token count and a 16-byte digest of the text,
~40 bytes an item instead of ~1.1 kB. Items are read back by number, in any order.

Two texts count as the same when their 128-bit BLAKE2 digests are (the split's duplicate check);
the chance that two different texts of a million share one is ~1e-27.
The file has no name (it is deleted on creation), so a killed run leaves nothing on disk.
"""

import hashlib
import os
import tempfile
from array import array

from pricer.data.report import Curated


class Spool:
    def __init__(self, folder=None):
        self.file = tempfile.TemporaryFile(dir=folder)  # unlinked: gone when closed or killed
        self.offsets = array("q", [0])   # item n's text is bytes offsets[n]:offsets[n + 1]
        self.prices = array("d")
        self.tokens = array("i")
        self.codes = array("i")          # category number: its place in self.numbers
        self.numbers: dict = {}          # category -> number
        self.digests = bytearray()       # 16 bytes an item: texts are compared by digest

    def __len__(self) -> int:
        return len(self.prices)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def extend(self, items) -> None:
        """Append curated items (objects with .text, .price, .category, .tokens)."""
        for item in items:
            text = item.text.encode()
            self.file.write(text)
            self.offsets.append(self.offsets[-1] + len(text))
            self.prices.append(item.price)
            self.tokens.append(item.tokens)
            self.codes.append(self.numbers.setdefault(item.category, len(self.numbers)))
            self.digests += hashlib.blake2b(text, digest_size=16).digest()

    def categories(self) -> list:
        names = list(self.numbers)
        return [names[c] for c in self.codes]

    def digest(self, n: int) -> bytes:
        return bytes(self.digests[16 * n:16 * n + 16])

    def items(self, numbers, texts: bool = True):
        """The items with these numbers, in that order (without texts: text is None)."""
        self.file.flush()
        fd, names = self.file.fileno(), list(self.numbers)
        for n in numbers:
            text = None
            if texts:
                start = self.offsets[n]
                text = os.pread(fd, self.offsets[n + 1] - start, start).decode()
            yield Curated(text, self.prices[n], names[self.codes[n]], self.tokens[n])
