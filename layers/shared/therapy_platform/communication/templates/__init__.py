"""Jinja2 templates shipped with the layer (email/: the German emails, see
therapy_platform.communication.rendering.renderer)."""
