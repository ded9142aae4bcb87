// Writes a random-weight llama2.c checkpoint (legacy float32, run.c reads it) and a tokenizer.bin
// trained on a sample text, with this project's writers: the models docs/model-runtime.md's run.c comparison
// and the benchmark use.
//   npx tsx tools/random-model.ts OUT_DIR dim hidden layers heads kv_heads vocab seq_len [seed] [unshared]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeLlama2c } from '../host/formats/llama2c.ts';
import { writeTokenizerBin } from '../host/formats/tokenizer-bin.ts';
import { randomWeights, trainTokenizer } from '../host/model/synthetic.ts';

const [out, ...rest] = process.argv.slice(2);
const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, seed = 1] = rest.slice(0, 8).map(Number);
if (!out || !(seqLen > 0)) {
  process.stderr.write('usage: tsx tools/random-model.ts OUT_DIR dim hidden layers heads kv_heads vocab seq_len [seed] [unshared]\n');
  process.exit(2);
}
const config = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier: rest[8] !== 'unshared' };
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'model.bin'), writeLlama2c(randomWeights(config, seed), 0));
writeFileSync(join(out, 'tokenizer.bin'), writeTokenizerBin(trainTokenizer(vocabSize)));
process.stderr.write(`wrote ${join(out, 'model.bin')} and tokenizer.bin (${JSON.stringify(config)})\n`);
