"""Alerts: detections grouped by rule and scope, with a lifecycle."""
