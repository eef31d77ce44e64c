"""Evaluation: ``srl_swe.eval.math`` (the paper's math protocol: greedy accuracy and avg@k on AMC23, AIME24,
AIME25, Minerva Math, MATH500, GSM8K), ``srl_swe.eval.steps`` (step rewards) and ``srl_swe.eval.swebench``
(resolved rate under the SWE-bench harness). Generation backends are :mod:`srl_swe.models.generation`'s.
Importing this package imports neither torch nor math-verify; the modules load them when used."""
