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


def test_compliance_names_load_on_first_use() -> None:
    # The audit log needs privguard.compliance.canonical; that must not load the policy engine,
    # its tables and cryptography into every `scrub` (start-up time).
    code = (
        "import sys\n"
        "import privguard.compliance.canonical\n"
        "assert 'privguard.compliance.engine' not in sys.modules\n"
        "assert 'privguard.compliance.approval' not in sys.modules\n"
        "import privguard.compliance as c\n"
        "assert set(c.__all__) == set(c._LAZY)\n"
        "for name in c.__all__:\n"
        "    assert getattr(c, name) is not None, name\n"
        "assert c.check.__module__ == 'privguard.compliance.engine'\n"
        "from privguard.compliance import SigningKey, verify_approval\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_an_unknown_compliance_name_is_an_attribute_error() -> None:
    import pytest

    import privguard.compliance as c

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        c.nope  # noqa: B018
