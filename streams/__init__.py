"""Overseer runtime: Kafka topics, the Faust app and agents, the ClickHouse
sink, kill-switch issuing, local infrastructure and the CLI."""
