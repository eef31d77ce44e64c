"""Task generation (issue 12): executable SWE tasks from bugs injected into real packages.

``sources`` / ``pack`` (SRC -> EnvSpec), ``mutations`` / ``families`` (procedural bugs, libcst), ``validate`` (real
test runs decide what is kept), ``run`` (the resumable job of ``srl-swe tasks make``), ``instances`` / ``statement``
(SWE-bench records, splits, issue texts), ``expert`` / ``expert_policy`` / ``expert_patch`` (scripted experts).
"""
