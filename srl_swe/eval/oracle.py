"""Oracle-file SWE-bench evaluation, the paper's main SWE setting.

The model is given the issue and the full content of the files the gold patch touches (the "oracle"
retrieval of SWE-bench), and answers with search/replace edits (:mod:`srl_swe.eval.patches`), which are applied
to those files and turned into the ``model_patch`` of a SWE-bench prediction. Grading is the harness's job
(:mod:`srl_swe.swebench.grading`); this module only produces predictions, and never raises for a bad answer:
an answer that cannot be parsed or applied gives an empty patch and an ``error`` field.

A prompt (the issue and the whole files) that, with ``max_new_tokens``, does not fit the model's context
(:mod:`srl_swe.models.context`) is not generated for: its prediction has an empty patch, ``error`` saying by how
many tokens it is over (``prompt is N tokens + M new > C context by K: not generated; ...``) and
``prompt_tokens``; the other instances of the batch are generated as usual. The files are not cut to fit: the
setting is the whole files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from srl_swe.errors import ActionParseError, ContextLengthError
from srl_swe.eval.patches import EditError, apply_edits, edits_from_patch, make_patch, parse_edits, render_edits
from srl_swe.models.context import generate_fitting
from srl_swe.models.generation import Generator, Messages
from srl_swe.swebench.instance import SWEInstance
from srl_swe.swebench.prediction import Prediction, make_prediction

MODE = "oracle-file"
DEFAULT_MAX_NEW_TOKENS = 4096

SYSTEM_PROMPT = """\
You are an expert software engineer. You are given an issue from a GitHub repository and the full content of \
the source files that need to change to resolve it. Fix the issue by editing these files.

First reason about the issue and the code inside <think> … </think>. Then write your changes as one or more \
*SEARCH/REPLACE* edits, each in exactly this format:

```python
### path/to/file.py
<<<<<<< SEARCH
exact lines to find in the current file
=======
the lines to put in their place
>>>>>>> REPLACE
```

Rules:
1. The `### ` line names one of the files shown, with its path exactly as written there.
2. The SEARCH part is a contiguous run of whole lines copied character for character from that file, \
indentation, comments and blank lines included. It must occur exactly once in the file: include enough \
surrounding lines to make it unique.
3. The REPLACE part is what those lines become, with proper indentation. Leave it empty to delete the lines; \
to add code, repeat a nearby line in SEARCH and write it with the new lines in REPLACE.
4. A file marked as not existing yet is created by an edit with an empty SEARCH part.
5. Use several blocks for several changes, in the order they appear in the file; they may touch several files. \
Only the files shown can be edited.
"""


def oracle_files(instance: SWEInstance, *, include_new: bool = True) -> list[str]:
    """The repository paths the gold patch touches, in patch order: modified and deleted files, and (unless
    ``include_new=False``) the files it creates."""
    from unidiff import PatchSet
    from unidiff.errors import UnidiffParseError

    if not instance.patch.strip():
        raise ValueError(f"{instance.instance_id}: no gold patch, so there are no oracle files (oracle-file mode "
                         f"needs the dataset's 'patch' field)")
    try:
        parsed = PatchSet(instance.patch)
    except UnidiffParseError as exc:
        raise ValueError(f"{instance.instance_id}: the gold patch is not a unified diff ({exc})") from None
    paths: list[str] = []
    for pf in parsed:
        if pf.is_added_file and not include_new:
            continue
        # A rename shows the file under its old name (the one that exists at the base commit).
        path = pf.source_file[2:] if pf.is_rename and pf.source_file.startswith("a/") else pf.path
        if path not in paths:
            paths.append(path)
    return paths


def read_oracle_files(instance: SWEInstance, read_file: Callable[[str], str]) -> dict[str, str | None]:
    """Contents of the oracle files at the base commit; None for a file that does not exist there yet."""
    files: dict[str, str | None] = {}
    for path in oracle_files(instance):
        try:
            files[path] = read_file(path)
        except FileNotFoundError:
            files[path] = None
    return files


def build_prompt(instance: SWEInstance, files: Mapping[str, str | None]) -> Messages:
    """Chat messages for one instance: the task and edit format (system), the issue and the files (user).

    Files are shown without line numbers, as Agentless does for its SEARCH/REPLACE format: an edit is located by
    the text it quotes, not by a line number, and numbered lines invite the model to copy the numbers into its
    SEARCH part, which then matches nothing. The hints (``hints_text``) are left out, as in SWE-bench's own
    prompts: they are discussion written after the issue, not part of it.
    """
    parts = [f"We are solving the following issue in the repository {instance.repo}.",
             f"--- BEGIN ISSUE ---\n{instance.problem_statement.strip()}\n--- END ISSUE ---",
             "Below is the full content of the files to edit."]
    for path, content in files.items():
        if content is None:
            parts.append(f"--- BEGIN FILE ---\n### {path}\n(this file does not exist yet)\n--- END FILE ---")
        else:
            body = content if content.endswith("\n") or not content else content + "\n"
            parts.append(f"--- BEGIN FILE ---\n### {path}\n{body}--- END FILE ---")
    parts.append("Fix the issue with *SEARCH/REPLACE* edits to these files, in the format described above.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


def expert_answer(instance: SWEInstance, files: Mapping[str, str | None]) -> str:
    """The gold patch written as the answer a model should give (SFT/SRL targets, tests)."""
    return render_edits(edits_from_patch(instance.patch, files))


def prediction_from_output(instance: SWEInstance, files: Mapping[str, str | None], output: str,
                           model_name: str) -> Prediction:
    """A SWE-bench prediction from a model's answer, with ``extra`` fields ``mode``, ``files``, ``n_edits``,
    ``error`` and ``raw_output``. Parse and apply failures give an empty ``model_patch`` and an ``error``
    saying what went wrong, so one bad answer never stops an evaluation run."""
    patch, n_edits, error = "", 0, None
    try:
        edits = parse_edits(output)
        n_edits = len(edits)
        patch = make_patch(files, apply_edits(files, edits))
    except (ActionParseError, EditError) as exc:
        patch, error = "", f"{type(exc).__name__}: {exc}"
    else:
        if not edits:
            error = "no SEARCH/REPLACE edits in the output"
        elif not patch:
            error = "the edits change nothing"
    return make_prediction(instance.instance_id, patch, model_name, mode=MODE, files=list(files), n_edits=n_edits,
                           error=error, raw_output=output)


def generator_name(generator: Generator) -> str:
    return str(getattr(generator, "name", None) or type(generator).__name__)


def oracle_predict_batch(instances: Sequence[SWEInstance], files: Sequence[Mapping[str, str | None]],
                         generator: Generator, *, temperature: float = 0.0,
                         max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, seed: int = 0,
                         model_name: str | None = None) -> list[Prediction]:
    """Predictions for several instances (``files[i]`` are instance i's oracle files) in one generate call,
    so a batching backend (vLLM) sees every prompt at once."""
    if len(instances) != len(files):
        raise ValueError(f"got {len(instances)} instances but {len(files)} file sets")
    prompts = [build_prompt(inst, f) for inst, f in zip(instances, files, strict=True)]
    outputs = generate_fitting(generator, prompts, n=1, temperature=temperature, max_new_tokens=max_new_tokens,
                               seed=seed, advice=CONTEXT_ADVICE)
    name = model_name or generator_name(generator)
    return [_too_long(inst, f, out, name) if isinstance(out, ContextLengthError)
            else prediction_from_output(inst, f, out[0], name)
            for inst, f, out in zip(instances, files, outputs, strict=True)]


CONTEXT_ADVICE = ("not generated; the issue and the whole oracle files do not fit: use a model with a longer "
                  "context, or lower --max-new-tokens if the prompt alone fits")


def _too_long(instance: SWEInstance, files: Mapping[str, str | None], err: ContextLengthError,
              model_name: str) -> Prediction:
    """The prediction of an instance whose prompt does not fit: an empty patch and the error (by how much)."""
    return make_prediction(instance.instance_id, "", model_name, mode=MODE, files=list(files), n_edits=0,
                           error=str(err), prompt_tokens=err.prompt_tokens, raw_output="")


def oracle_predict(instance: SWEInstance, generator: Generator, *, read_file: Callable[[str], str],
                   temperature: float = 0.0, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, seed: int = 0,
                   model_name: str | None = None) -> Prediction:
    """One instance's prediction (extra fields ``mode``, ``files``, ``n_edits``, ``error``, ``raw_output``).
    ``read_file(path)`` returns a repository file at the base commit (paths relative to the repository root,
    e.g. a runtime's ``read_file``) and raises FileNotFoundError for a missing one."""
    files = read_oracle_files(instance, read_file)
    return oracle_predict_batch([instance], [files], generator, temperature=temperature,
                                max_new_tokens=max_new_tokens, seed=seed, model_name=model_name)[0]
