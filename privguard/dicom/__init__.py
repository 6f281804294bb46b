"""Byte-level DICOM: the strict scanner every input and every output goes through."""
