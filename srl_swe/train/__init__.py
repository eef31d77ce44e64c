"""Training side of srl-swe: model loading (``srl_swe.train.models``) and a tiny test model (``srl_swe.train.tiny``).

Nothing is imported here so that ``import srl_swe.train`` stays cheap; torch and transformers are imported
inside the functions that need them.
"""
