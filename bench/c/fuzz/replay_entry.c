/* replay.c with an entry point for the fuzz harness (parsers.c): each entry of an
 * installed table is matched against its own recorded call, which reads every byte the
 * table says the entry has. */
#include "replay.c"

void fuzz_replay_walk(void) {
  for (uint32_t s = 0; R.blob && s < R.nseq; s++)
    for (uint32_t i = 0; i < R.seqs[s].n; i++) {
      const struct entry *e = &R.seqs[s].e[i];
      size_t len = e->kind == KIND_INPUT ? e->var_len : e->key_len;
      if (!matches(e, e->op, e->args, e->nargs, e->key, len) && e->kind != KIND_INPUT) abort();
    }
}
