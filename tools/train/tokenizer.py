"""BPE tokenizer trained on the train split (sentencepiece), exported to llama2.c's tokenizer.bin.

    python3 tools/train/tokenizer.py --data data/kjv --vocab 512 --out models/tok512
      -> tok512.model (sentencepiece), tokenizer.bin (llama2.c), and train/val/test.u16 token files
    python3 tools/train/tokenizer.py --data data/kjv --model models/tokenizers/tok4096.model --out data/tok4096
      -> the same files from the committed tokenizer, without training one (so a new model's token ids
         are the committed models' and perplexities compare)

tokenizer.bin (llama2.c run.c's reader): int32 max_token_length, then for each id: float32 score,
int32 byte length, the bytes. Pieces are sentencepiece's with '\u2581' as a space; byte-fallback
pieces stay '<0xXX>' (run.c decodes them); BOS is id 1 written as '\\n<s>\\n', EOS id 2 '\\n</s>\\n'.
Every line of the corpus is one sequence: BOS, the verse's tokens, (the next verse follows).
"""
import argparse
import array
import os
import shutil
import struct


def write_tokenizer_bin(path: str, pieces: "list[tuple[str, float]]", bos: int = 1, eos: int = 2) -> None:
    tokens = []
    for i, (piece, score) in enumerate(pieces):
        if i == bos:
            piece = "\n<s>\n"
        elif i == eos:
            piece = "\n</s>\n"
        tokens.append((piece.replace("\u2581", " ").encode("utf-8"), score))
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(b) for b, _ in tokens)))
        for b, score in tokens:
            f.write(struct.pack("<fi", score, len(b)))
            f.write(b)


def read_tokenizer_bin(path: str, vocab_size: int) -> "tuple[int, list[tuple[bytes, float]]]":
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, out = 4, []
    for _ in range(vocab_size):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        out.append((data[off:off + n], score))
        off += n
    if off != len(data):
        raise ValueError(f"{path}: {len(data) - off} trailing bytes after {vocab_size} tokens")
    return max_len, out


def train_bpe(text: str, prefix: str, vocab: int) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="bpe", vocab_size=vocab,
        self_test_sample_size=0, input_format="text", character_coverage=1.0, num_threads=1, split_digits=True,
        allow_whitespace_only_pieces=True, byte_fallback=True, unk_surface=r" \342\201\207 ", normalization_rule_name="identity",
        pad_id=-1, unk_id=0, bos_id=1, eos_id=2, minloglevel=2)


def main() -> None:
    import sentencepiece as spm

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/kjv")
    ap.add_argument("--vocab", type=int, help="train a tokenizer of this many pieces on the train split")
    ap.add_argument("--model", help="use this sentencepiece .model (e.g. models/tokenizers/tok4096.model) instead of training one")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if (args.vocab is None) == (args.model is None):
        ap.error("give --vocab N (train a tokenizer) or --model FILE (use a trained one), one of the two")
    os.makedirs(args.out, exist_ok=True)
    if args.model:
        args.vocab = spm.SentencePieceProcessor(model_file=args.model).vocab_size()
        prefix = os.path.join(args.out, f"tok{args.vocab}")
        if os.path.abspath(args.model) != os.path.abspath(prefix + ".model"):
            shutil.copyfile(args.model, prefix + ".model")
    else:
        prefix = os.path.join(args.out, f"tok{args.vocab}")
        train_bpe(os.path.join(args.data, "train.txt"), prefix, args.vocab)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    write_tokenizer_bin(os.path.join(args.out, "tokenizer.bin"), [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.vocab_size())])
    for part in ("train", "val", "test"):
        ids = array.array("H")
        with open(os.path.join(args.data, f"{part}.txt")) as f:
            for line in f:
                ids.append(1)
                ids.extend(sp.encode(line.rstrip("\n")))
        with open(os.path.join(args.out, f"{part}.u16"), "wb") as f:
            ids.tofile(f)
        print(f"tokenizer: vocab {args.vocab}: {part} {len(ids)} tokens")


if __name__ == "__main__":
    main()
