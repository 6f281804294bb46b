"""``privguard serve`` that SIGKILLs itself right after the Nth receive-journal append.

Used by tests/node/test_journal.py: the instance is on disk (synced) but its
C-STORE was never acknowledged. Usage: ``python crash_after_journal.py N serve --config FILE``.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from privguard.node.journal import ReceiveJournal, Record


def main() -> None:
    limit = int(sys.argv[1])
    done = 0
    append = ReceiveJournal.append

    def crashing(self: ReceiveJournal, *args: Any) -> Record:
        nonlocal done
        record = append(self, *args)
        done += 1
        if done >= limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return record

    ReceiveJournal.append = crashing  # type: ignore[method-assign,assignment]
    from privguard_cli.main import main as cli

    sys.argv = ["privguard", *sys.argv[2:]]
    cli()


if __name__ == "__main__":
    main()
