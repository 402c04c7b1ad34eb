"""Renderings of the export bundles (`domain.evidence`, `domain.soc2`, `domain.debrief`)."""
