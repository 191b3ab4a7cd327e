"""Figures and tables for people: PNG overviews, pseudomask grids, markdown reports."""
