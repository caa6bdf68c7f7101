"""``python -m bench.encoders``: provision ingest with each encoder runtime and precision (see run.py)."""
