"""Jinja2 templates shipped with the layer (email/: German emails, see therapy_platform.rendering)."""
