// The app's exports: the one list. tools/gen-dispatch.ts generates assembly/index.ts from it (plus
// every kernel of the format table); `runtime` marks what the model runtime calls
// (host/model/runtime.ts), which an image's app must export to run (host/image/app.ts).
export interface AppExport {
  name: string;
  from: string;       // the assembly/ module that defines it ('' for the memory)
  runtime: boolean;   // the model runtime calls it: an app without it cannot run
}

const x = (from: string, runtime: boolean, ...names: string[]): AppExport[] => names.map((name) => ({ name, from, runtime }));

export const APP_EXPORT_TABLE: readonly AppExport[] = [
  ...x('', true, 'memory'),
  ...x('./arena', true, 'arena_reset', 'arena_top', 'arena_alloc'),
  ...x('./kernels/act', false, 'quantize_act', 'sparsify_topk'),
  ...x('./model/llama', true, 'model_init', 'model_memory', 'model_tokens', 'model_forward', 'model_logits', 'model_step'),
  ...x('./model/sampler', true, 'sampler_init', 'sampler_sample'),
  ...x('./model/sampler', false, 'sampler_state'),
  ...x('./model/tokenizer', false, 'tok_text', 'tok_tokens', 'tok_piece', 'tok_encode', 'tok_decode'),
  // generate and chat turns in the app (assembly/model/chat.ts): `run` and a board drive these
  ...x('./model/chat', true, 'chat_reset', 'chat_turn', 'chat_next', 'chat_pos', 'gen_begin', 'gen_next', 'gen_token'),
  ...x('./model/chat', false, 'chat_token'),
  ...x('./tables.gen', true, 'tables_hash'),
];

export const APP_EXPORTS: readonly string[] = APP_EXPORT_TABLE.filter((e) => e.runtime).map((e) => e.name);
