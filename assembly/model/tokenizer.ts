// The BPE tokenizer on the device: reserved here, filled in by the tokenizer work.
export function tokenizerReserve(desc: usize): bool {
  return true;
}
