"""Does an answer sentence answer the question asked? The checks the pipeline runs on each claim, by stage:

- `lexicon`: the Vietnamese (and English) word lists, as data: places, family names, roles, organisations,
  units, qualifiers, stop words;
- `question`: what a question asks for (its kind: who / where / when / which year / how many / yes-no)
  and its own terms;
- `spans`: candidate answers of a kind in a text (years, dates, numbers) and how strongly each is tied
  to the question's terms;
- `entities`: places, people and organisations in a claim or its evidence;
- `extract`: an answer taken from the evidence itself (a when / how-many question's one clear candidate);
- `yesno`: a yes/no question decided by the evidence sentence;
- `checks`: the named rules that reject a claim, each a function of one `ClaimContext`, in one ordered
  registry (`CHECKS`) with the question kinds it applies to; `RAG_DISABLED_CHECKS` switches them off;
- `verifier`: the `Verifier` the pipeline feeds answer sentences to (is the claim in its sources, does
  it answer the question), which records every `Rejection` for the Answer's trace.

This package imports nothing from it at the top level: import the stage you need
(`from rag.answer.verify import checks`), so `rag.answer.ground` may use `rag.answer.verify.lexicon` without a cycle.
"""
