"""privguard's command-line front end (console script ``privguard``).

A thin layer: each command parses its options, calls one library function and
renders the result. DICOM logic lives in the ``privguard`` library.
"""
