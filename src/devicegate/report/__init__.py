"""Human-readable reports: `render_report` writes the audit's self-contained report.html."""

from devicegate.report.html import render_report

__all__ = ["render_report"]
