"""Ingest: turn sources (RadGenome, CT-RATE, folders of CTs, the synthetic demo) into snapshot rows and arrays."""
