"""Widgets of the plugin, built in code (no compiled .ui files in the package)."""
