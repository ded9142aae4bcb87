#!/bin/sh
# The texts of docs/quantization.md's evaluation tables, made reproducibly from the demo corpus
# (tools/train/corpus.py: the King James Bible of Debian's bible-kjv-text, split by whole books):
#   data/eval/val20k.txt    the first 20,000 bytes of the validation split (Ruth, the start of Esther): `eval --text`
#   data/eval/train40k.txt  the first 40,000 bytes of the training split: `quantize --calib`
# Usage: sh tools/eval/texts.sh [DIR]   (DIR default data; the corpus goes to DIR/kjv)
set -eu
dir=${1:-data}
if [ ! -s "$dir/kjv/val.txt" ] || [ ! -s "$dir/kjv/train.txt" ]; then
  python3 "$(dirname "$0")/../train/corpus.py" --out "$dir/kjv" >&2
fi
mkdir -p "$dir/eval"
head -c 20000 "$dir/kjv/val.txt" > "$dir/eval/val20k.txt"
head -c 40000 "$dir/kjv/train.txt" > "$dir/eval/train40k.txt"
sha256sum "$dir/eval/val20k.txt" "$dir/eval/train40k.txt"
