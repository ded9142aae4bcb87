"""The training corpus: the King James Bible from Debian's `bible-kjv-text` package, printed by the
`bible` command of `bible-kjv`, split by whole books into train / validation / test. Deterministic.

    python3 tools/train/corpus.py --out data/kjv        # writes train.txt, val.txt, test.txt, books.json

One verse per line, without chapter and verse numbers. Installs the Debian packages when missing
(as root, with apt-get); no data is downloaded from anywhere else.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

# Held-out books: whole books, so no verse of a held-out book is ever seen in training.
VAL_BOOKS = ["Ruth", "Esther", "Jonah", "Mark", "Philippians"]
TEST_BOOKS = ["Daniel", "Hebrews", "James"]

HEADER = re.compile(r"^([1-3]?\s?[A-Z][A-Za-z ]*?) (\d+)$")
VERSE = re.compile(r"^\s+(\d+) (.*)$")


def ensure_bible() -> str:
    exe = shutil.which("bible")
    if exe:
        return exe
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "bible-kjv", "bible-kjv-text"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        exe = shutil.which("bible")
    if not exe:
        sys.exit("corpus: the `bible` command is missing: install Debian's bible-kjv and bible-kjv-text")
    return exe


def parse(text: str) -> "dict[str, list[str]]":
    """Book name -> verses in order. The `bible` output has 'Book N' chapter headers and indented verses."""
    books: "dict[str, list[str]]" = {}
    book = None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            book = m.group(1)
            books.setdefault(book, [])
            continue
        v = VERSE.match(line)
        if v and book is not None:
            books[book].append(v.group(2).strip())
    return books


def split(books: "dict[str, list[str]]") -> "dict[str, list[str]]":
    out = {"train": [], "val": [], "test": []}
    for name, verses in books.items():
        part = "val" if name in VAL_BOOKS else "test" if name in TEST_BOOKS else "train"
        out[part].extend(verses)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/kjv")
    args = ap.parse_args()
    text = subprocess.run([ensure_bible(), "-l100000", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    books = parse(text)
    if len(books) != 66:
        sys.exit(f"corpus: expected the 66 books of the KJV, parsed {len(books)}")
    missing = [b for b in VAL_BOOKS + TEST_BOOKS if b not in books]
    if missing:
        sys.exit(f"corpus: held-out books not found: {missing}")
    parts = split(books)
    os.makedirs(args.out, exist_ok=True)
    for name, verses in parts.items():
        with open(os.path.join(args.out, f"{name}.txt"), "w") as f:
            f.write("\n".join(verses) + "\n")
    manifest = {name: {"verses": len(v), "chars": sum(len(x) + 1 for x in v)} for name, v in parts.items()}
    manifest["val_books"], manifest["test_books"] = VAL_BOOKS, TEST_BOOKS
    with open(os.path.join(args.out, "books.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
