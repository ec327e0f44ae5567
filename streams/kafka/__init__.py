"""Kafka: topic definitions, clients and the local broker launcher."""
