"""`overseer report`: one self-contained HTML file per model and period (data → plots → page)."""

from streams.audit.report.build import build_report

__all__ = ["build_report"]
