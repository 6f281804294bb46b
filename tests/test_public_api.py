"""The top-level API names are the documented functions, whatever was imported before them."""

from __future__ import annotations

import subprocess
import sys


def test_deidentify_is_the_function_even_after_its_module_was_imported() -> None:
    # A library user who imported privguard.batch (which loads the de-identifier module) before
    # `from privguard import deidentify` must still get the function: no submodule may share the
    # name of a lazily exported function.
    code = (
        "import privguard.batch\n"
        "from privguard import deidentify, deidentify_file, scrub\n"
        "assert callable(deidentify) and deidentify.__name__ == 'deidentify', deidentify\n"
        "assert deidentify_file.__name__ == 'deidentify_file'\n"
        "assert scrub.__name__ == 'scrub'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_no_lazy_export_shadows_a_submodule() -> None:
    import pkgutil

    import privguard

    submodules = {m.name for m in pkgutil.iter_modules(privguard.__path__)}
    shadowed = sorted(set(privguard._LAZY) & submodules)
    assert shadowed == [], shadowed
