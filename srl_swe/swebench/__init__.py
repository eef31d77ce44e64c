"""SWE-bench tasks: typed instances and predictions, task sandboxes on any runtime, grading by the real harness.

* :mod:`~srl_swe.swebench.instance`: ``SWEInstance``, one dataset record.
* :mod:`~srl_swe.swebench.datasets`: ``load_instances`` from a JSONL/JSON file, a ``local_tasks`` folder, a
  ``srl-swe tasks make`` folder (``tasks.jsonl``, by split) or a Hugging Face dataset name.
* :mod:`~srl_swe.swebench.specs`: environment specs, per (repo, version) or carried by a generated task's record
  (``find_spec``: its ``env_spec``, checked field by field); ``harness_record`` fills the fields swebench >= 5
  needs (image, eval_script, log_parser, eval_type).
* :mod:`~srl_swe.swebench.local_env`: cached task sources (PyPI sdist committed as a git repo; a generated task's
  base: its ``setup_patch`` committed on top) and venvs; ``prepare_local`` for the local runtime.
* :mod:`~srl_swe.swebench.images`: ``ensure_image``, task images named as the harness expects, built once;
  ``ensure_env_image``, one package version's image, which generated tasks' images extend by one layer.
* :mod:`~srl_swe.swebench.runtimes`: ``task_runtime``, a task's sandbox on a backend of
  :data:`srl_swe.runtime.RUNTIMES` (the image or the repository prepared first, one line per backend).
* :mod:`~srl_swe.swebench.prediction`: ``Prediction``, the record the harness grades, built by
  ``make_prediction`` and read by ``read_prediction``.
* :mod:`~srl_swe.swebench.grading`: ``grade_with_harness`` (``swebench.harness.run_evaluation`` in a
  subprocess), ``grade_in_runtime`` (one patch in a fresh sandbox, graded by swebench's own functions) and
  ``grade_patch`` (one prediction by either, ``default_grader`` choosing).
* :mod:`~srl_swe.swebench.verdicts`: ``InstanceResult`` and the statuses (``infra_error``, the environment's
  failure, apart from the patch's), and ``earlier_verdict``: what a harness log folder of the same run id still
  says about a prediction (reused only for the very patch it graded).

Nothing here imports docker or swebench at module level; they are imported where they are used.
"""
