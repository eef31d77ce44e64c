"""Training side of srl-swe (``srl-swe train``), on TRL: the validated config (``config``, ``config_rules``,
``coerce``), datasets for every mode (``data``), GRPO with the paper's dynamic sampling (``grpo``), outcome
rewards for RLVR (``outcome``), SWE RLVR with real tools in sandboxes (``exec_env``), the run itself and its
checkpoints (``run``, ``checkpoints``) and its plot (``plot``). Model loading and the tiny test model are
:mod:`srl_swe.models`' (evaluation loads models too).

Nothing is imported here so that ``import srl_swe.train`` stays cheap; torch and transformers are imported
by the modules that need them, never by this package.
"""
