"""Shipped data folder (installed as ``graphtag.bundled``)."""
