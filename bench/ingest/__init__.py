"""Benchmark of image ingest (``python -m bench.ingest``), and the synthetic inputs it shares with tests."""
