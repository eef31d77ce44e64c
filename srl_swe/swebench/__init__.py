"""SWE-bench tasks: typed instances, task environments built without a registry, grading by the real harness.

* :mod:`~srl_swe.swebench.instance`: ``SWEInstance``, one dataset record.
* :mod:`~srl_swe.swebench.datasets`: ``load_instances`` from a JSONL/JSON file, a ``local_tasks`` folder or a
  Hugging Face dataset name.
* :mod:`~srl_swe.swebench.specs`: per (repo, version) environment specs; ``harness_record`` fills the fields
  swebench >= 5 needs (image, eval_script, log_parser, eval_type).
* :mod:`~srl_swe.swebench.local_env`: cached task sources (PyPI sdist committed as a git repo) and venvs;
  ``prepare_local`` for the local runtime.
* :mod:`~srl_swe.swebench.images`: ``ensure_image``, task images named as the harness expects, built once.
* :mod:`~srl_swe.swebench.grading`: ``grade_with_harness`` (``swebench.harness.run_evaluation`` in a
  subprocess) and ``grade_in_runtime`` (one patch in a fresh sandbox, graded by swebench's own functions).

Nothing here imports docker or swebench at module level; they are imported where they are used.
"""
