"""Detection: the rule language, windows and sequences, statistical detectors and policies.

Plain Python over batches of event dicts — no Faust, no Kafka — so the same
code runs live in the worker and offline in `overseer rules test` and
`overseer backtest`. `rules` never imports `streams`.
"""
