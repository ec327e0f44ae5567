"""The hot path, batch-first: decode → evaluate → store, one batch at a time.

Nothing here imports Faust: the Faust agents in `streams.app` hand batches
of raw records to these functions, so the same code runs in tests, in the
benchmark and in `overseer backtest`.
"""
