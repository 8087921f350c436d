"""Compose bootable Linux OS images from YAML templates, with verified, reusable caches."""
