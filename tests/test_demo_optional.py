"""The demo is an optional part of the package (the extra `demo`: Pythia, FastJet, SciPy): without them every
module imports and every stage's command line starts; only the demo's simulation needs them, when it runs."""

import subprocess
import sys

WITHOUT_THE_DEMOS_DEPENDENCIES = '''
import contextlib, importlib, importlib.abc, io, pkgutil, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pythia8mc", "fastjet", "scipy"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
import gnnjec
from gnnjec import cli

names = sorted(m.name for m in pkgutil.walk_packages(gnnjec.__path__, "gnnjec.") if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
for stage in cli.STAGES:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main([stage, "--help"])
        except SystemExit as exit:
            assert exit.code == 0, stage
print(len(names), len(cli.STAGES))
'''


def test_the_package_and_its_command_line_need_no_demo_dependencies():
    proc = subprocess.run([sys.executable, "-c", WITHOUT_THE_DEMOS_DEPENDENCIES], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules, stages = map(int, proc.stdout.split())
    assert modules > 30 and stages > 10  # gnnjec.demo and its modules among them
